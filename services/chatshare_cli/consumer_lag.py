"""`chatshare lag`: how far each consumer group trails its topics, per partition — the records
between the group's committed offset and the partition's end (its last stable offset: what a
read_committed group can reach).

Offsets alone overstate it: every transaction the relays commit leaves a commit marker, an offset
that is no record, so a group that has read everything still sits one offset short of the end. A
gap of up to MARKER_CHECK offsets is therefore read and its records counted; a larger one is
given in offsets.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NotCoordinatorForGroupError,
)

from chatshare_cli.kafka_reads import admin_client, partitions_of, read_until, topic_reader
from contracts.topics import CONSUMER_GROUPS, GROUP_TOPICS

if TYPE_CHECKING:
    from servicekit.config import ServiceSettings

MARKER_CHECK = 100
# A group's coordinator is being elected or loaded (a fresh cluster, a broker restart): ask again.
COORDINATOR_SETTLING = (
    CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError, NotCoordinatorForGroupError,
)  # fmt: skip


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group has committed nothing here (it starts from earliest)
    end: int
    lag: int  # records behind (offsets, for a gap over MARKER_CHECK)

    @property
    def partition_key(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def start(self) -> int:
        return self.end - self.lag

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


async def consumer_lag(
    settings: ServiceSettings, groups: tuple[str, ...] = CONSUMER_GROUPS
) -> list[PartitionLag]:
    """Every partition of every group's topics (names as the deployment's prefix makes them)."""
    topics = sorted({settings.topic(t) for group in groups for t in GROUP_TOPICS[group]})
    partitions = await partitions_of(settings, topics)
    async with admin_client(settings) as admin:
        committed = {group: await _committed(admin, settings.group(group)) for group in groups}
    async with topic_reader(settings, topics) as (consumer, _):
        ends = await consumer.end_offsets(partitions)
        first = await consumer.beginning_offsets(partitions)
        lags = [
            _lag(settings.group(group), tp, committed[group].get(tp), first[tp], ends[tp])
            for group in groups
            for tp in partitions
            if tp.topic in {settings.topic(t) for t in GROUP_TOPICS[group]}
        ]
        return await _in_records(consumer, lags)


async def _committed(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    for _ in range(20):
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        except COORDINATOR_SETTLING:
            await asyncio.sleep(0.5)
            continue
        return {tp: found.offset for tp, found in offsets.items() if found.offset >= 0}
    offsets = await admin.list_consumer_group_offsets(group)  # the last try says why
    return {tp: found.offset for tp, found in offsets.items() if found.offset >= 0}


def _lag(
    group: str, tp: TopicPartition, committed: int | None, first: int, end: int
) -> PartitionLag:
    behind = max(0, end - (first if committed is None else committed))
    return PartitionLag(group, tp.topic, tp.partition, committed, end, behind)


async def _in_records(consumer: AIOKafkaConsumer, lags: list[PartitionLag]) -> list[PartitionLag]:
    """Small gaps counted in records: commit markers are no records to read."""
    small = [lag for lag in lags if 0 < lag.lag <= MARKER_CHECK]
    starts = {lag.partition_key: lag.start for lag in small}
    ends = {lag.partition_key: lag.end for lag in small}
    counted: Counter[tuple[TopicPartition, int]] = Counter()
    # Two groups can start one partition at different offsets: read from the lowest, count per start.
    lowest = {tp: min(lag.start for lag in small if lag.partition_key == tp) for tp in starts}
    async for batch, _ in read_until(consumer, lowest, ends):
        for record in batch:
            tp = TopicPartition(record.topic, record.partition)
            for start in {lag.start for lag in small if lag.partition_key == tp}:
                counted[(tp, start)] += record.offset >= start
    return [
        replace(lag, lag=counted[(lag.partition_key, lag.start)]) if lag in small else lag
        for lag in lags
    ]
