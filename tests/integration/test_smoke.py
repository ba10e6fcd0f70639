"""The test session's own broker and database are real: a message round-trips through Kafka
and a row through PostgreSQL."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from contracts.topics import CHAT_EVENTS, all_topics

pytestmark = pytest.mark.integration


async def test_a_message_round_trips_through_the_real_broker(kafka_bootstrap: str) -> None:
    key = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(CHAT_EVENTS, b'{"hello": "kafka"}', key=key)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partition = TopicPartition(CHAT_EVENTS, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (key, b'{"hello": "kafka"}')


async def test_topics_exist_with_their_partition_counts_and_infinite_retention(
    kafka_bootstrap: str,
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([spec.name for spec in all_topics()])
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, CHAT_EVENTS)]
        )
    finally:
        await admin.close()
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    assert counts == {spec.name: spec.partitions for spec in all_topics()}
    entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
    assert entries["retention.ms"] == "-1"


async def test_a_row_round_trips_through_the_real_database(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TABLE probe (id int PRIMARY KEY, body text)")
        await connection.execute("INSERT INTO probe VALUES (1, 'postgres')")
        assert await connection.fetchval("SELECT body FROM probe WHERE id = 1") == "postgres"
        assert (await connection.fetchval("SHOW server_version")).startswith("18")
    finally:
        await connection.close()
