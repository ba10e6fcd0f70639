"""The test session's own Kafka broker and PostgreSQL server, on free ports in temporary folders,
so `make test` never touches a running `make up` stack. Started only when a test asks for them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.topics import max_message_bytes
from devstack import kafka, postgres
from devstack.ports import free_port
from devstack.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
TEST_MAX_SNAPSHOT_BYTES = 256 * 1024


@pytest.fixture(scope="session")
def kafka_node() -> Iterator[kafka.KafkaNode]:
    home = Path(tempfile.mkdtemp(prefix="chatshare-test-kafka-"))
    node = kafka.KafkaNode(
        home=home,
        port=free_port(),
        controller_port=free_port(),
        message_max_bytes=max_message_bytes(TEST_MAX_SNAPSHOT_BYTES),
    )
    kafka.start(node, kafka.ensure_jars(ROOT / ".cache" / "kafka-libs"))
    asyncio.run(ensure_topics(node.bootstrap_servers, TEST_MAX_SNAPSHOT_BYTES))
    yield node
    node.process.stop(grace=15.0)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_node: kafka.KafkaNode) -> str:
    return kafka_node.bootstrap_servers


@pytest.fixture(scope="session")
def postgres_node() -> Iterator[postgres.PostgresNode]:
    # Not under pytest's own tmp folder: that one is private to root, and the server runs as an
    # unprivileged user when the session is root.
    home = Path(tempfile.mkdtemp(prefix="chatshare-test-pg-"))
    node = postgres.PostgresNode(home=home, port=free_port())
    postgres.start(node)
    yield node
    postgres.stop(node)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database_url(postgres_node: postgres.PostgresNode) -> str:
    """A new, empty database for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.ensure_database(postgres_node, name)
    return f"postgresql://postgres:postgres@127.0.0.1:{postgres_node.port}/{name}"


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> str:
    """This test's own set of chatshare topics (`CHATSHARE_TOPIC_PREFIX`), so it sees no other
    test's events."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(kafka_bootstrap, TEST_MAX_SNAPSHOT_BYTES, prefix)
    return prefix
