"""The benchmark run's own Kafka broker and PostgreSQL server, as the test session starts them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from contracts.topics import max_message_bytes
from devstack import kafka, postgres
from devstack.ports import free_port
from devstack.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class BenchInfrastructure:
    kafka: kafka.KafkaNode
    postgres: postgres.PostgresNode

    @property
    def bootstrap(self) -> str:
        return self.kafka.bootstrap_servers

    def new_database(self, name: str) -> str:
        postgres.ensure_database(self.postgres, name)
        return f"postgresql://postgres:postgres@127.0.0.1:{self.postgres.port}/{name}"


@contextmanager
def bench_infrastructure() -> Iterator[BenchInfrastructure]:
    kafka_home = Path(tempfile.mkdtemp(prefix="chatshare-bench-kafka-"))
    pg_home = Path(tempfile.mkdtemp(prefix="chatshare-bench-pg-"))
    node = kafka.KafkaNode(
        kafka_home, free_port(), free_port(), max_message_bytes(MAX_SNAPSHOT_BYTES)
    )
    database = postgres.PostgresNode(pg_home, free_port())
    try:
        kafka.start(node, kafka.ensure_jars(ROOT / ".cache" / "kafka-libs"))
        postgres.start(database)
        asyncio.run(ensure_topics(node.bootstrap_servers, MAX_SNAPSHOT_BYTES))
        yield BenchInfrastructure(node, database)
    finally:
        node.process.stop(grace=15)
        postgres.stop(database)
        shutil.rmtree(kafka_home, ignore_errors=True)
        shutil.rmtree(pg_home, ignore_errors=True)
