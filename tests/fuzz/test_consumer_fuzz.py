"""Garbage on every consumed topic, on the real broker: each consumer group dead-letters every
record it cannot use — once, on `dlq.<group>`, with `x-dlq-reason` — and goes on to apply the
valid events sent after it, on every partition. Nothing crashes, nothing is lost.

The services run with a small CHATSHARE_MAX_SNAPSHOT_BYTES while the topics are sized for the
test session's larger one, so the broker takes records larger than the services' own producers
may send (dead letters included).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI

import contracts
from community_publisher.bootstrap import create_app as create_publisher_app
from community_publisher.config import CommunityPublisherSettings
from contracts.topics import (
    CHAT_EVENTS,
    CHAT_MIRROR_GROUP,
    COMMUNITY_EVENTS,
    COMMUNITY_PUBLISHER_GROUP,
    COMMUNITY_PUBLISHER_POLICY_GROUP,
    EVENT_TOPICS,
    SETTINGS_EVENTS,
    SHARE_EVENTS,
    SHARE_PROJECTION_GROUP,
    SHARE_SERVICE_POLICY_GROUP,
    dead_letter_topic,
    max_message_bytes,
)
from devstack import postgres
from servicekit.consumer import DLQ_OMITTED
from servicekit.policy import Policy
from share_service.config import ShareServiceSettings
from tests.chat_feed import ChatFeed
from tests.fuzz.garbage import GarbageMaker, Headers, Record
from tests.identities import bearer, make_token
from tests.integration.share_service.share_harness import (
    LinkStory,
    ShareService,
    community_request,
    outcome,
    record_of,
    running_share_service,
)
from tests.running_services import new_database, new_topic_prefix

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CHATSHARE_FUZZ_SEED", "8"))
SERVICE_MAX_SNAPSHOT_BYTES = 16 * 1024  # the services' producers send at most 80 KiB
HUGE_BYTES = 200 * 1024  # above that, below the session's topics' 320 KiB
PER_KIND = 6  # garbage records of each kind, per topic
PARTITIONS = {spec.name: spec.partitions for spec in EVENT_TOPICS}
UNREADABLE_HEADERS: Headers = [("content-type", b"\xff\xfe"), ("x-null", None),
                               ("traceparent", b"\xff" * 8)]  # fmt: skip
READER = bearer(make_token("reader", "user"))


@dataclass(frozen=True)
class Sent:
    record: Record
    partition: int
    offset: int


@dataclass
class Consumers:
    """share_service (chat-mirror, share-projection, its policy group) and community_publisher
    (community-publisher, its policy group), sharing one set of topics."""

    share: ShareService
    publisher: FastAPI
    policy_version: int = 1

    @property
    def settings(self) -> ShareServiceSettings:
        return self.share.settings

    async def send(self, topic: str, records: Sequence[Record]) -> list[Sent]:
        """Round-robin over the topic's partitions, so every partition gets garbage."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            max_request_size=max_message_bytes(SERVICE_MAX_SNAPSHOT_BYTES) * 8,
        )
        await producer.start()
        sent = []
        try:
            for n, record in enumerate(records):
                partition = n % PARTITIONS[topic]
                metadata = await producer.send_and_wait(
                    self.settings.topic(topic), record.value, key=record.key,
                    partition=partition, headers=record.headers,
                )  # fmt: skip
                sent.append(Sent(record, metadata.partition, metadata.offset))
        finally:
            await producer.stop()
        return sent

    async def send_events(
        self, topic: str, events: Sequence[Any], headers: Sequence[tuple[str, bytes | None]] = ()
    ) -> None:
        """Valid events, one on each partition in turn (whatever their keys' partitions)."""
        records = []
        for event in events:
            _, key, value = record_of(event) if topic != CHAT_EVENTS else chat_record(event)
            records.append(Record("valid", key, value, list(headers)))
        await self.send(topic, records)

    async def policies(self) -> tuple[Policy, Policy]:
        """The policy as share_service and as community_publisher see it."""
        return (
            await self.share.app.state.wiring.policy.current(),
            await self.publisher.state.policy.current(),
        )

    async def projected(self, share_id: str) -> bool:
        async with asyncio.timeout(30):
            while True:
                path = f"/api/v1/shares/{share_id}?min_version=1"
                if (await self.share.client.get(path, headers=READER)).status_code == 200:
                    return True
                await asyncio.sleep(0.05)

    async def policies_reach(self, version: int, tts_enabled: bool) -> bool:
        """Both services' views reach the policy version (or tell what they saw instead)."""
        seen = await self.policies()
        try:
            async with asyncio.timeout(30):
                while {(p.policy_version, p.tts_enabled) for p in seen} != {(version, tts_enabled)}:
                    await asyncio.sleep(0.05)
                    seen = await self.policies()
        except TimeoutError:
            raise AssertionError(f"seed {SEED}: policy views stuck at {seen}") from None
        return True

    async def request_concluded(self, request_id: str) -> str:
        async with asyncio.timeout(30):
            while True:
                found = await self.share.app.state.wiring.community_requests.get(request_id)
                if found is not None and found.status != "pending":
                    return str(found.status)
                await asyncio.sleep(0.05)


def chat_record(event: Any) -> tuple[str, bytes, bytes]:
    return CHAT_EVENTS, event.chat_id.encode(), contracts.encode_event(event)


def policy_event(kind: type[Any], version: int) -> Any:
    """The admin's switch, as settings_service publishes it."""
    tts = kind in (contracts.TextToSpeechEnabled, contracts.TextToSpeechDisabled)
    on = kind in (contracts.TextToSpeechEnabled, contracts.CommunitySharingEnabled)
    at = datetime.now(UTC)
    return kind(
        event_id=uuid.uuid4(), occurred_at=at, setting="tts" if tts else "community_sharing",
        value=on, policy_version=version, changed_by="root", changed_at=at,
    )  # fmt: skip


@asynccontextmanager
async def running_publisher(settings: CommunityPublisherSettings) -> AsyncIterator[FastAPI]:
    app = create_publisher_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def consumers(
    postgres_node: postgres.PostgresNode, kafka_bootstrap: str
) -> AsyncIterator[Consumers]:
    common: dict[str, Any] = {
        "database_url": new_database(postgres_node),
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": await new_topic_prefix(kafka_bootstrap),
        "max_snapshot_bytes": SERVICE_MAX_SNAPSHOT_BYTES,
    }
    publisher_settings = CommunityPublisherSettings(
        **common, community_url="http://127.0.0.1:9", policy_wait_seconds=1.0
    )
    async with (
        running_share_service(ShareServiceSettings(**common)) as share,
        running_publisher(publisher_settings) as publisher,
    ):
        found = Consumers(share, publisher)
        # The admin's first word: community sharing off. Requests are then rejected, never
        # uploaded, and each rejection shows the publisher kept going.
        await found.send_events(
            SETTINGS_EVENTS, [policy_event(contracts.CommunitySharingDisabled, 1)]
        )
        yield found


def garbage(topic: str) -> list[Record]:
    return GarbageMaker(topic, SEED, HUGE_BYTES).make(PER_KIND)


async def dead_letters(
    consumers: Consumers, group: str, topic: str, sent: Sequence[Sent]
) -> list[ConsumerRecord[bytes, bytes]]:
    """The group's dead letters of records from `topic`: waits for one of each sent record,
    then a moment longer, so that any second letter shows too."""
    settings = consumers.settings
    reader = AIOKafkaConsumer(
        settings.topic(dead_letter_topic(group)),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
    )
    source = settings.topic(topic).encode()
    wanted = {(s.partition, s.offset) for s in sent}
    letters: list[ConsumerRecord[bytes, bytes]] = []
    await reader.start()
    try:
        async with asyncio.timeout(60):
            while not wanted <= {source_of(letter) for letter in letters}:
                letters += await letters_from(reader, source)
        letters += await letters_from(reader, source, wait_ms=1000)
    finally:
        await reader.stop()
    return letters


async def letters_from(
    reader: AIOKafkaConsumer, source: bytes, wait_ms: int = 300
) -> list[ConsumerRecord[bytes, bytes]]:
    batches = await reader.getmany(timeout_ms=wait_ms)
    return [
        letter
        for letters in batches.values()
        for letter in letters
        if dict(letter.headers)["x-dlq-source-topic"] == source
    ]


def source_of(letter: ConsumerRecord[bytes, bytes]) -> tuple[int, int]:
    headers = dict(letter.headers)
    return int(headers["x-dlq-source-partition"]), int(headers["x-dlq-source-offset"])


def check_letters(
    group: str, sent: Sequence[Sent], letters: Sequence[ConsumerRecord[bytes, bytes]]
) -> None:
    """Every garbage record dead-lettered exactly once, with its key, its bytes (or, when they
    are too large to copy, a pointer to where they stay) and why."""
    by_source = {(s.partition, s.offset): s.record for s in sent}
    counted, expected = Counter(map(source_of, letters)), Counter(by_source.keys())
    assert counted == expected, (
        f"seed {SEED}, {group}: extra {counted - expected}, missing {expected - counted}"
    )
    for letter in letters:
        record = by_source[source_of(letter)]
        headers = dict(letter.headers)
        assert headers["x-dlq-group"].decode().endswith(group)
        assert headers["x-dlq-reason"].strip(), record.kind
        assert letter.key == record.key, record.kind
        if DLQ_OMITTED in headers:
            assert len(record.value or b"") > max_message_bytes(SERVICE_MAX_SNAPSHOT_BYTES) // 2
            assert letter.value in (b"", None)
        else:
            assert (letter.value or b"") == (record.value or b""), record.kind


async def fuzz(consumers: Consumers, topic: str, extra: Sequence[Record] = ()) -> list[Sent]:
    return await consumers.send(topic, [*garbage(topic), *extra])


async def check_dead_letters(
    consumers: Consumers, topic: str, groups: Sequence[str], sent: Sequence[Sent]
) -> None:
    for group in groups:
        check_letters(group, sent, await dead_letters(consumers, group, topic, sent))


async def test_chat_events_garbage_is_dead_lettered_and_the_mirror_keeps_going(
    consumers: Consumers,
) -> None:
    misfiled = ChatFeed("fuzz").created()
    wrong_key = Record("key not its chat_id", b"someone-else", contracts.encode_event(misfiled))
    sent = await fuzz(consumers, CHAT_EVENTS, [wrong_key])
    feeds = [ChatFeed("fuzz") for _ in range(PARTITIONS[CHAT_EVENTS] + 1)]
    await consumers.send_events(CHAT_EVENTS, [feed.created() for feed in feeds[:-1]])
    await consumers.send_events(CHAT_EVENTS, [feeds[-1].created()], UNREADABLE_HEADERS)
    chats = consumers.share.app.state.wiring.chats
    for feed in feeds:
        assert await chats.wait_for_version(feed.chat_id, 1, 30), f"seed {SEED}: {feed.chat_id}"
    await check_dead_letters(consumers, CHAT_EVENTS, [CHAT_MIRROR_GROUP], sent)


async def test_share_events_garbage_is_dead_lettered_and_the_projection_and_publisher_keep_going(
    consumers: Consumers,
) -> None:
    groups = [SHARE_PROJECTION_GROUP, COMMUNITY_PUBLISHER_GROUP]
    sent = await fuzz(consumers, SHARE_EVENTS)
    stories = [LinkStory("fuzz") for _ in range(PARTITIONS[SHARE_EVENTS] + 1)]
    await consumers.send_events(SHARE_EVENTS, [story.created("hi") for story in stories[:-1]])
    await consumers.send_events(SHARE_EVENTS, [stories[-1].created("hi")], UNREADABLE_HEADERS)
    request = community_request("fuzz")
    await consumers.send_events(SHARE_EVENTS, [request])
    for story in stories:
        assert await consumers.projected(story.share_id), f"seed {SEED}: {story.share_id}"
    assert await consumers.request_concluded(request.request_id) == "rejected"
    await check_dead_letters(consumers, SHARE_EVENTS, groups, sent)


async def test_community_events_garbage_is_dead_lettered_and_the_projection_keeps_going(
    consumers: Consumers,
) -> None:
    misfiled = outcome(contracts.CommunityShareRejected, str(uuid.uuid4()), reason="off")
    wrong_key = Record("key not its request_id", b"someone-else", contracts.encode_event(misfiled))
    sent = await fuzz(consumers, COMMUNITY_EVENTS, [wrong_key])
    outcomes = [
        outcome(contracts.CommunityShareRejected, str(uuid.uuid4()), reason="sharing was off")
        for _ in range(PARTITIONS[COMMUNITY_EVENTS] + 1)
    ]
    await consumers.send_events(COMMUNITY_EVENTS, outcomes[:-1])
    await consumers.send_events(COMMUNITY_EVENTS, outcomes[-1:], UNREADABLE_HEADERS)
    for each in outcomes:
        assert await consumers.request_concluded(each.request_id) == "rejected", f"seed {SEED}"
    await check_dead_letters(consumers, COMMUNITY_EVENTS, [SHARE_PROJECTION_GROUP], sent)


async def test_settings_events_garbage_is_dead_lettered_and_the_policy_views_keep_going(
    consumers: Consumers,
) -> None:
    groups = [SHARE_SERVICE_POLICY_GROUP, COMMUNITY_PUBLISHER_POLICY_GROUP]
    sent = await fuzz(consumers, SETTINGS_EVENTS)
    consumers.policy_version += 1
    tts_on = policy_event(contracts.TextToSpeechEnabled, consumers.policy_version)
    await consumers.send_events(SETTINGS_EVENTS, [tts_on], UNREADABLE_HEADERS)
    assert await consumers.policies_reach(consumers.policy_version, tts_enabled=True)
    # Garbage is now the newest record of settings.events: the publisher's "is sharing still
    # on?" must still be answered, not waited on forever.
    sent += await consumers.send(SETTINGS_EVENTS, garbage(SETTINGS_EVENTS)[:5])
    request = community_request("fuzz")
    await consumers.send_events(SHARE_EVENTS, [request])
    assert await consumers.request_concluded(request.request_id) == "rejected", f"seed {SEED}"
    await check_dead_letters(consumers, SETTINGS_EVENTS, groups, sent)
