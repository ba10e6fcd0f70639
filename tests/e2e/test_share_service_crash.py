"""share_service SIGKILLed in the middle of a burst of commands, and started again: every
command it acknowledged (2xx) reaches share.events — the relay re-sends a tail, loses none."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from contracts.topics import SHARE_EVENTS
from devstack import postgres
from devstack.kafka import KafkaNode
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.services import ServiceSpec, start_service, wait_ready
from devstack.topics import ensure_topics
from tests.chat_feed import ChatFeed, send
from tests.conftest import TEST_MAX_SNAPSHOT_BYTES
from tests.identities import bearer, make_token

pytestmark = pytest.mark.e2e

CHATS = 20
COMMANDS = 240
KILL_AFTER = 80


@pytest.fixture
def share_service_process(
    kafka_node: KafkaNode, postgres_node: postgres.PostgresNode
) -> Iterator[tuple[ServiceSpec, ManagedProcess, dict[str, str]]]:
    prefix = f"crash{uuid.uuid4().hex[:6]}."
    asyncio.run(ensure_topics(kafka_node.bootstrap_servers, TEST_MAX_SNAPSHOT_BYTES, prefix))
    database = f"crash_{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(postgres_node, database)
    env = {
        "CHATSHARE_ENV": "test",
        "CHATSHARE_TOPIC_PREFIX": prefix,
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": kafka_node.bootstrap_servers,
        "CHATSHARE_DATABASE_URL": f"postgresql://postgres:postgres@127.0.0.1:{postgres_node.port}/{database}",
        "CHATSHARE_MAX_SNAPSHOT_BYTES": str(TEST_MAX_SNAPSHOT_BYTES),
        "CHATSHARE_KAFKA_SESSION_TIMEOUT_MS": "6000",
    }
    spec = ServiceSpec(
        "share_service", "share_service.bootstrap:create_app", free_port(), "CHATSHARE_SHARE_PORT"
    )
    home = Path(tempfile.mkdtemp(prefix="chatshare-test-crash-"))
    process = start_service(spec, env, home / "run", home / "logs")
    try:
        wait_ready(spec, process, timeout=120)
        yield spec, process, env
    finally:
        process.stop(grace=10)
        shutil.rmtree(home, ignore_errors=True)


async def published_links(
    bootstrap: str, topic: str, wanted: set[tuple[str, int]]
) -> set[tuple[str, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    seen: set[tuple[str, int]] = set()
    try:
        async with asyncio.timeout(90):
            while not wanted <= seen:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        event = json.loads(record.value)
                        seen.add((event["share_id"], event["version"]))
    except TimeoutError:
        pass  # the assertion below says what is missing
    finally:
        await consumer.stop()
    return seen


async def test_every_acknowledged_command_reaches_kafka_across_a_sigkill(
    share_service_process: tuple[ServiceSpec, ManagedProcess, dict[str, str]],
) -> None:
    spec, process, env = share_service_process
    prefix, bootstrap = env["CHATSHARE_TOPIC_PREFIX"], env["CHATSHARE_KAFKA_BOOTSTRAP_SERVERS"]
    feeds = [ChatFeed(f"user-{i}") for i in range(CHATS)]
    await send(
        bootstrap, [e for feed in feeds for e in (feed.created(), feed.message("hello"))], prefix
    )
    acknowledged: set[tuple[str, int]] = set()
    killed = asyncio.Event()

    async def command(client: httpx.AsyncClient, n: int) -> None:
        feed = feeds[n % CHATS]
        headers = bearer(make_token(feed.owner_id))
        try:
            answer = await client.post(
                f"/api/v1/chats/{feed.chat_id}/share", json={"chat_version": 2}, headers=headers
            )
        except httpx.TransportError:
            return  # the process died under this request: not acknowledged
        if answer.is_success:
            acknowledged.add((answer.json()["share_id"], answer.json()["version"]))
            if len(acknowledged) >= KILL_AFTER and not killed.is_set():
                killed.set()
                process.kill()  # SIGKILL: mid-burst, relay and all

    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=spec.url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(command(client, n) for n in range(COMMANDS)))
    assert killed.is_set(), "the burst ended before the kill"
    restarted = start_service(spec, env, process.pid_file.parent, process.log_file.parent)
    wait_ready(spec, restarted, timeout=120)
    seen = await published_links(bootstrap, prefix + SHARE_EVENTS, acknowledged)
    missing = acknowledged - seen
    assert not missing, f"{len(missing)} acknowledged commands never reached share.events"
