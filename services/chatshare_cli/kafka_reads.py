"""Plain Kafka reads for the operator: a consumer of no group (it commits nothing, so no group's
position moves), assigned every partition of some topics, reading committed records only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from chatshare_cli.errors import UnknownTopic

if TYPE_CHECKING:
    from servicekit.config import ServiceSettings


@asynccontextmanager
async def admin_client(settings: ServiceSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, client_id="chatshare-cli"
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def partitions_of(settings: ServiceSettings, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of the (prefixed) topics, in order."""
    async with admin_client(settings) as admin:
        described = await admin.describe_topics(list(topics))
    found = {topic["topic"]: topic for topic in described}
    partitions = []
    for name in topics:
        topic = found.get(name)
        if topic is None or topic["error_code"] or not topic["partitions"]:
            raise UnknownTopic(f"Kafka has no topic {name!r}")
        numbers = sorted(partition["partition"] for partition in topic["partitions"])
        partitions += [TopicPartition(name, number) for number in numbers]
    return partitions


STOP_SECONDS = 10.0  # for the consumer to leave


@asynccontextmanager
async def topic_reader(
    settings: ServiceSettings, topics: Sequence[str]
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A started consumer assigned every partition of `topics` (positions not yet chosen)."""
    partitions = await partitions_of(settings, topics)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id="chatshare-cli",
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",  # the relays write in transactions
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        yield consumer, partitions
    finally:
        async with asyncio.timeout(STOP_SECONDS):  # a broker gone away must not hang the CLI
            await consumer.stop()


def parse_since(text: str) -> int | datetime:
    """An offset (applied to every partition) or an ISO 8601 time (UTC when it names no zone)."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither an offset nor an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def start_offsets(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since: int | datetime | None
) -> dict[TopicPartition, int]:
    """Where each partition is read from: its first record, an offset (within what the partition
    holds), or the first record at or after a time (its end when there is none)."""
    first = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    if since is None:
        return dict(first)
    if isinstance(since, int):
        return {tp: min(max(since, first[tp]), ends[tp]) for tp in partitions}
    millis = int(since.timestamp() * 1000)
    found = await consumer.offsets_for_times({tp: millis for tp in partitions})
    return {tp: ends[tp] if found[tp] is None else found[tp].offset for tp in partitions}


def seek_all(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    for partition, offset in offsets.items():
        consumer.seek(partition, offset)


async def read_until(
    consumer: AIOKafkaConsumer,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
    max_records: int = 2_000,
) -> AsyncIterator[tuple[list[ConsumerRecord[bytes, bytes]], int]]:
    """Batches of the records from `starts` up to `ends` (not included), each with how far the
    reading got (offsets behind it, of all partitions; a transaction marker counts as one)."""
    seek_all(consumer, starts)
    remaining = {tp for tp in starts if starts[tp] < ends[tp]}
    while remaining:
        fetched = await consumer.getmany(*remaining, timeout_ms=1000, max_records=max_records)
        batch = [r for tp, rs in fetched.items() for r in rs if r.offset < ends[tp]]
        positions = {tp: min(await consumer.position(tp), ends[tp]) for tp in starts}
        remaining = {tp for tp in remaining if positions[tp] < ends[tp]}
        yield batch, sum(positions[tp] - starts[tp] for tp in starts)
