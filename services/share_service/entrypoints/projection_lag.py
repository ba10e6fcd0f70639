"""How far the share projection trails its topics, as Prometheus gauges: in events per partition
(the topic's end minus the position the store recorded) and in seconds (how old the last applied
event was when it was applied)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from servicekit.config import ServiceSettings
from servicekit.consumer import Delivery
from share_service.adapters.projection_progress import ProjectionProgress

log = logging.getLogger(__name__)

LAG_INTERVAL_SECONDS = 5.0


class ProjectionLag:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Gauge(
            "share_projection_lag_events",
            "Records on the topic not yet applied to the view store (a transaction's commit"
            " marker counts as one)",
            ["topic", "partition"],
            registry=registry,
        )
        self.seconds = Gauge(
            "share_projection_lag_seconds",
            "Age of the last applied event when it was applied: now minus its occurred_at",
            ["topic"],
            registry=registry,
        )

    def applied(self, deliveries: Sequence[Delivery[Any]]) -> None:
        now = time.time()
        last = {delivery.record.topic: delivery for delivery in deliveries}
        for topic, delivery in last.items():
            age = now - delivery.event.occurred_at.timestamp()
            self.seconds.labels(topic).set(max(0.0, age))


async def watch_lag(
    settings: ServiceSettings,
    progress: ProjectionProgress,
    group: str,
    topics: Sequence[str],
    lag: ProjectionLag,
    every: float = LAG_INTERVAL_SECONDS,
) -> None:
    """Every few seconds, compare the topics' ends with the store's recorded positions. A fault
    costs a measurement, never the watch: Kafka may be down when the service starts."""
    while True:
        try:
            await _watch(settings, progress, group, topics, lag, every)
        except (KafkaError, OSError) as error:
            log.warning("projection lag watch restarting after: %s", error)
            await asyncio.sleep(every)


async def _watch(
    settings: ServiceSettings,
    progress: ProjectionProgress,
    group: str,
    topics: Sequence[str],
    lag: ProjectionLag,
    every: float,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    probe = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        isolation_level="read_committed",  # ends at the last stable offset, as the group reads
    )
    try:
        await admin.start()
        await probe.start()
        while True:
            try:
                partitions = await partitions_of(admin, topics)
                await _measure(probe, partitions, await progress.positions(group), lag)
            except (KafkaError, OSError, asyncpg.PostgresError) as error:
                log.warning("projection lag not measured this round: %s", error)
            await asyncio.sleep(every)
    finally:
        await probe.stop()
        await admin.close()


async def partitions_of(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    described = await admin.describe_topics(list(topics))
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]


async def _measure(
    probe: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    positions: dict[tuple[str, int], int],
    lag: ProjectionLag,
) -> None:
    ends = await probe.end_offsets(partitions)
    for partition, end in ends.items():
        behind = end - positions.get((partition.topic, partition.partition), 0)
        lag.events.labels(partition.topic, str(partition.partition)).set(max(0, behind))
