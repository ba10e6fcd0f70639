"""A stack of its own for the infrastructure-restart tests: a Kafka node and a PostgreSQL node
that these tests stop and start again (never the session's shared ones), and every service as
a process on them, as `make up` runs it.

Also what "settled" means after a fault: every relay has published its whole event store and
every consumer group has committed up to the end of its topics.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from chatshare_cli.consumer_lag import PartitionLag, consumer_lag

from contracts.topics import max_message_bytes
from devstack import kafka, postgres
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.services import ServiceSpec, default_services, start_service, wait_ready
from devstack.topics import ensure_topics
from servicekit.config import ServiceSettings
from tests.conftest import ROOT, TEST_MAX_SNAPSHOT_BYTES

HTTP_SERVICES = ("share_service", "settings_service", "community_publisher")
# (schema, event store table, relay name) of each service's outbox (servicekit.outbox).
OUTBOXES = (
    ("share_service", "share_events", "share_service"),
    ("settings_service", "settings_events", "settings_service"),
    ("community_publisher", "community_uploads_events", "community_publisher"),
)
DATABASE = "chatshare"


@dataclass
class InfraStack:
    kafka: kafka.KafkaNode
    postgres: postgres.PostgresNode
    services: dict[str, ServiceSpec]
    processes: dict[str, ManagedProcess]
    env: dict[str, str]

    def url(self, name: str) -> str:
        return self.services[name].url

    @property
    def database_url(self) -> str:
        return self.env["CHATSHARE_DATABASE_URL"]

    @property
    def settings(self) -> ServiceSettings:
        return ServiceSettings(
            kafka_bootstrap_servers=self.kafka.bootstrap_servers,
            database_url=self.database_url,
            topic_prefix="",
        )

    def crashed(self) -> list[str]:
        return [name for name, process in self.processes.items() if not process.alive()]

    async def stop_kafka(self, *, kill: bool) -> None:
        """SIGKILL (a crash: nothing flushed) or SIGTERM (a controlled shutdown)."""
        if kill:
            await asyncio.to_thread(self.kafka.process.kill)
        else:
            await asyncio.to_thread(kafka.stop, self.kafka)

    async def start_kafka(self) -> None:
        """Same ports, same data folder."""
        await asyncio.to_thread(kafka.start, self.kafka, kafka_libs())

    async def stop_postgres(self) -> None:
        await asyncio.to_thread(postgres.stop, self.postgres)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(postgres.start, self.postgres)


def kafka_libs() -> Path:
    return kafka.ensure_jars(ROOT / ".cache" / "kafka-libs")


@contextmanager
def own_kafka_and_postgres() -> Iterator[tuple[kafka.KafkaNode, postgres.PostgresNode]]:
    kafka_home = Path(tempfile.mkdtemp(prefix="chatshare-infra-kafka-"))
    pg_home = Path(tempfile.mkdtemp(prefix="chatshare-infra-pg-"))  # not private to root
    broker = kafka.KafkaNode(
        home=kafka_home,
        port=free_port(),
        controller_port=free_port(),
        message_max_bytes=max_message_bytes(TEST_MAX_SNAPSHOT_BYTES),
    )
    database = postgres.PostgresNode(home=pg_home, port=free_port(), database=DATABASE)
    try:
        kafka.start(broker, kafka_libs())
        asyncio.run(ensure_topics(broker.bootstrap_servers, TEST_MAX_SNAPSHOT_BYTES))
        postgres.start(database)
        yield broker, database
    finally:
        broker.process.stop(grace=15.0)
        postgres.stop(database)
        shutil.rmtree(kafka_home, ignore_errors=True)
        shutil.rmtree(pg_home, ignore_errors=True)


@contextmanager
def services_on(broker: kafka.KafkaNode, database: postgres.PostgresNode) -> Iterator[InfraStack]:
    standin_port = free_port()
    env = {
        "CHATSHARE_ENV": "test",
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CHATSHARE_DATABASE_URL": database.url,
        "CHATSHARE_MAX_SNAPSHOT_BYTES": str(TEST_MAX_SNAPSHOT_BYTES),
        "CHATSHARE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CHATSHARE_COMMUNITY_URL": f"http://127.0.0.1:{standin_port}",
        "CHATSHARE_STANDIN_PORT": str(standin_port),
        "CHATSHARE_SETTINGS_PORT": str(free_port()),
        "CHATSHARE_SHARE_PORT": str(free_port()),
        "CHATSHARE_PUBLISHER_PORT": str(free_port()),
    }
    env["CHATSHARE_PUBLIC_URL"] = f"http://127.0.0.1:{env['CHATSHARE_SHARE_PORT']}"
    home = Path(tempfile.mkdtemp(prefix="chatshare-infra-services-"))
    specs = {spec.name: spec for spec in default_services(env)}
    processes = {
        name: start_service(spec, env, home / "run", home / "logs") for name, spec in specs.items()
    }
    try:
        for name, spec in specs.items():
            wait_ready(spec, processes[name], timeout=120)
        yield InfraStack(broker, database, specs, processes, env)
    finally:
        for process in processes.values():
            process.stop(grace=10)
        # The services' logs stay where a failed run can be read (git-ignored).
        artifacts = ROOT / "test-artifacts" / "infrastructure-restart-logs"
        shutil.copytree(home / "logs", artifacts, dirs_exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)


async def readiness(stack: InfraStack) -> dict[str, tuple[int, dict[str, str]]]:
    """Each HTTP service's `/readyz`: its status and its checks."""
    answers = {}
    async with httpx.AsyncClient(timeout=5) as client:
        for name in HTTP_SERVICES:
            try:
                answer = await client.get(stack.url(name) + "/readyz")
                answers[name] = (answer.status_code, answer.json()["checks"])
            except httpx.TransportError as error:
                answers[name] = (0, {"transport": repr(error)})
    return answers


async def wait_until_ready(
    stack: InfraStack, within: float = 90
) -> dict[str, tuple[int, dict[str, str]]]:
    """The services' readiness once every one says ready, or as it was when `within` ran out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answers = await readiness(stack)
        if all(status == 200 for status, _ in answers.values()) or loop.time() > deadline:
            return answers
        await asyncio.sleep(0.5)


async def unpublished(stack: InfraStack) -> dict[str, int]:
    """Per outbox relay: stored notifications above its recorded position."""
    behind = {}
    connection = await asyncpg.connect(stack.database_url, timeout=5)
    try:
        for schema, table, relay in OUTBOXES:
            last = await connection.fetchval(
                f'SELECT coalesce(max(notification_id), 0) FROM "{schema}"."{table}"'
            )
            position = await connection.fetchval(
                f'SELECT coalesce(max(notification_id), 0) FROM "{schema}".outbox_relay_positions'
                " WHERE relay = $1",
                relay,
            )
            behind[relay] = max(0, int(last) - int(position))
    finally:
        await connection.close()
    return behind


async def wait_until_settled(
    stack: InfraStack, within: float = 120
) -> tuple[dict[str, int], list[PartitionLag]]:
    """Every relay has published everything stored, then every group has committed everything
    published. Answers what was still behind (nothing, once settled)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        relays = await unpublished(stack)
        lagging = (
            []
            if any(relays.values())
            else [lag for lag in await consumer_lag(stack.settings) if lag.lag]
        )
        if (not any(relays.values()) and not lagging) or loop.time() > deadline:
            return relays, lagging
        await asyncio.sleep(0.5)
