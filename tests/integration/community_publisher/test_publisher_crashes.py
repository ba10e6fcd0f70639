"""At most one publication per request, even when the publisher dies between the upload and its
offset commit; and what is not a share event at all goes to `dlq.community-publisher`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

import contracts
from community_publisher.config import CommunityPublisherSettings
from contracts.topics import (
    COMMUNITY_PUBLISHER_GROUP,
    EVENT_TOPICS,
    SHARE_EVENTS,
    dead_letter_topic,
)
from devstack.ports import free_port
from tests.community_requests import (
    community_request,
    outcomes,
    produce,
    read_topic,
    send_requests,
    set_policy,
)
from tests.integration.community_publisher.conftest import CommunitySite, running_publisher

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def publisher_process(
    settings: CommunityPublisherSettings, log: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The publisher as `make up` runs it, in a process of its own that the test can kill."""
    port = free_port()
    env = {
        **os.environ,
        "CHATSHARE_ENV": "test",
        "CHATSHARE_DATABASE_URL": settings.database_url,
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CHATSHARE_TOPIC_PREFIX": settings.topic_prefix,
        "CHATSHARE_COMMUNITY_URL": settings.community_url,
        "CHATSHARE_COMMUNITY_TOKEN": "",
        "CHATSHARE_INSTANCE_ID": settings.instance_id,
        "CHATSHARE_KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
    }
    command = [
        sys.executable, "-m", "uvicorn", "community_publisher.bootstrap:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            async with asyncio.timeout(60):
                while not await _ready(client):
                    assert process.poll() is None, why_it_stopped(log)
                    await asyncio.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def why_it_stopped(log: Path) -> str:
    return "the publisher stopped:\n" + log.read_text(errors="replace")[-4000:]


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_killed_after_the_site_took_the_upload_it_is_not_published_twice(
    settings: CommunityPublisherSettings, site: CommunitySite, tmp_path: Path
) -> None:
    """Publisher A sends the upload; the site holds its answer, and A is SIGKILLed before it
    hears it — so A recorded nothing and committed nothing, but the site has the chat. Publisher
    B gets the request again and sends it again, with the same Idempotency-Key: the site knows
    it, and the request is published once."""
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    await site.control(delay_ms=3000)
    request = community_request()
    async with publisher_process(settings, tmp_path / "publisher-a.log") as publisher_a:
        await send_requests(bootstrap, prefix, request)
        await site.wait_for("attempts", 1)  # the upload is at the site, its answer held back
        publisher_a.send_signal(signal.SIGKILL)
        publisher_a.wait(timeout=10)
    await site.wait_for("accepted", 1)  # the site took the chat after A died
    await site.control(delay_ms=0)
    async with running_publisher(settings):
        found = await outcomes(bootstrap, prefix, [request.request_id], linger=1.0)
    events = found[request.request_id]
    assert {event["type"] for event in events} == {"CommunitySharePublished"}
    assert len({event["event_id"] for event in events}) == 1
    (upload,) = await site.uploads()
    assert events[0]["community_id"] == upload["id"]
    assert await site.counters() == {"attempts": 2, "accepted": 1}


async def rewind(settings: CommunityPublisherSettings) -> None:
    """Put the group's committed position back to the start of share.events: as if the member
    had died after recording its outcomes and before committing its offsets."""
    topic = settings.topic(SHARE_EVENTS)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.group(COMMUNITY_PUBLISHER_GROUP),
        enable_auto_commit=False,
    )
    (spec,) = [spec for spec in EVENT_TOPICS if spec.name == SHARE_EVENTS]
    partitions = [TopicPartition(topic, partition) for partition in range(spec.partitions)]
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit({partition: 0 for partition in partitions})
    finally:
        await consumer.stop()


async def test_a_request_redelivered_after_its_outcome_was_recorded_sends_nothing(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    request = community_request()
    async with running_publisher(settings):
        await send_requests(bootstrap, prefix, request)
        await outcomes(bootstrap, prefix, [request.request_id])
    await rewind(settings)
    async with running_publisher(settings) as app:
        async with asyncio.timeout(60):
            while not app.state.registry.get_sample_value("community_requests_repeated_total"):
                await asyncio.sleep(0.05)
        found = await outcomes(bootstrap, prefix, [request.request_id], linger=1.0)
    assert await site.counters() == {"attempts": 1, "accepted": 1}  # not even an attempt
    events = found[request.request_id]
    assert len({event["event_id"] for event in events}) == 1  # the one outcome, nothing new


async def test_a_record_that_is_no_share_event_is_dead_lettered_and_the_group_goes_on(
    settings: CommunityPublisherSettings, site: CommunitySite
) -> None:
    bootstrap, prefix = settings.kafka_bootstrap_servers, settings.topic_prefix
    await set_policy(bootstrap, prefix, (True, 1))
    link_deleted = contracts.LinkDeleted(
        event_id=uuid.uuid4(), occurred_at=datetime.now(UTC), share_id="s" * 22, chat_id="chat-1",
        owner_id="alice", version=2, reason="owner", deleted_by="alice",
    )  # fmt: skip
    request = community_request()
    async with running_publisher(settings):
        await produce(
            bootstrap,
            prefix + SHARE_EVENTS,
            [(b"poison", b"\xff not an event"), (b"s" * 22, contracts.encode_event(link_deleted))],
        )
        await send_requests(bootstrap, prefix, request)
        found = await outcomes(bootstrap, prefix, [request.request_id])
        letters = await read_topic(
            bootstrap,
            prefix + dead_letter_topic(COMMUNITY_PUBLISHER_GROUP),
            lambda got: len(got) >= 1,
            linger=1.0,
        )
    assert found[request.request_id][0]["type"] == "CommunitySharePublished"
    (letter,) = (
        letters  # the poison only: a deleted link is simply none of the publisher's business
    )
    assert (letter.key, letter.value) == (b"poison", b"\xff not an event")
    headers = dict(letter.headers)
    assert headers["x-dlq-source-topic"] == (prefix + SHARE_EVENTS).encode()
    assert headers["x-dlq-reason"].startswith(b"undecodable: ")
    assert await site.counters() == {"attempts": 1, "accepted": 1}
