"""Kafka consumer groups done once for every service: at-least-once with per-partition commits,
retries with backoff, and dead letters for what a group cannot process at all.

Rules (DESIGN.md, faststream traps): the group's position is committed only after its handler
has stored what it did, and only for the partitions and offsets in the handled batch — never
faststream's `ACK_FIRST` nor a blanket `msg.ack()`. A transient fault (PostgreSQL or Kafka
unreachable) is retried until it heals; anything else is retried a few times, then the record
goes to `dlq.<group>` with headers saying why, and the group keeps going.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from prometheus_client import CollectorRegistry, Counter

from contracts.topics import dead_letter_topic
from servicekit.config import ServiceSettings

log = logging.getLogger(__name__)

E = TypeVar("E")


class Unprocessable(Exception):
    """Raised by a decoder or handler for a record that no retry can fix (bad bytes, bad event)."""


@dataclass(frozen=True)
class Delivery(Generic[E]):
    """One decoded record with where it came from."""

    event: E
    record: ConsumerRecord[bytes, bytes]

    @property
    def partition(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)


Decoder = Callable[[ConsumerRecord[bytes, bytes]], E]
BatchHandler = Callable[[Sequence[Delivery[E]]], Awaitable[None]]


def is_transient(error: BaseException) -> bool:
    """Faults of the infrastructure, not of the message: wait them out, never dead-letter."""
    import asyncpg
    import psycopg

    transient = (
        ConnectionError,
        TimeoutError,
        OSError,
        KafkaError,
        asyncpg.PostgresConnectionError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.SerializationError,
        asyncpg.DeadlockDetectedError,
        psycopg.OperationalError,
    )
    return isinstance(error, transient)


class AssignmentTracker(ConsumerRebalanceListener):  # type: ignore[misc]
    """Knows whether the consumer has joined its group (for `/readyz`)."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.joined = asyncio.Event()
        self.partitions: frozenset[TopicPartition] = frozenset()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.joined.clear()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.partitions = frozenset(assigned)
        self.joined.set()
        log.info("group %s holds %d partitions", self.group, len(assigned))


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.consumed = Counter(
            "kafka_events_consumed_total", "Records handled", ["group", "topic"], registry=registry
        )
        self.dead_lettered = Counter(
            "kafka_events_dead_lettered_total",
            "Records sent to the group's dead-letter topic",
            ["group", "topic"],
            registry=registry,
        )
        self.retries = Counter(
            "kafka_handler_retries_total", "Handler retries", ["group", "kind"], registry=registry
        )


@dataclass
class RetryPolicy:
    attempts: int = 3
    first_delay: float = 0.1
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.first_delay * 2**attempt)
        return float(base * random.uniform(0.5, 1.0))  # jitter: replicas don't retry in lockstep


class ConsumerGroup(Generic[E]):
    """One group on some topics: decode → handle a batch → commit the batch's offsets."""

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[str],
        decode: Decoder[E],
        handle: BatchHandler[E],
        broker: KafkaBroker,
        metrics: ConsumerMetrics,
        retry: RetryPolicy | None = None,
        dead_letters: str | None = None,
    ) -> None:
        self.group = group
        self.dead_letters = dead_letters or dead_letter_topic(group)
        self.topics = tuple(topics)
        self.decode = decode
        self.handle = handle
        self.broker = broker
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.tracker = AssignmentTracker(group)

    def subscribe(self, settings: ServiceSettings, max_records: int = 500) -> None:
        """Register with the broker; call before `broker.start()`."""
        subscriber = self.broker.subscriber(
            *self.topics,
            group_id=self.group,
            batch=True,
            max_records=max_records,
            ack_policy=AckPolicy.MANUAL,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the relays write in transactions
            listener=self.tracker,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        )
        subscriber(self.on_batch)

    async def readiness(self) -> str | None:
        return None if self.tracker.joined.is_set() else f"{self.group} has not joined its group"

    async def on_batch(self, message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        deliveries = [delivery for record in records if (delivery := await self._decode(record))]
        await self._handle_all(deliveries)
        await self._commit(message, records)

    async def _decode(self, record: ConsumerRecord[bytes, bytes]) -> Delivery[E] | None:
        try:
            return Delivery(self.decode(record), record)
        except Unprocessable as error:
            await self.dead_letter(record, f"undecodable: {error}")
            return None

    async def _handle_all(self, deliveries: list[Delivery[E]]) -> None:
        if not deliveries:
            return
        try:
            await self._with_retries(lambda: self.handle(deliveries))
        except Exception as batch_error:
            if len(deliveries) == 1:
                await self.dead_letter(deliveries[0].record, _reason(batch_error))
                return
            # Find the poison: one by one, so its neighbours are still applied.
            for delivery in deliveries:
                try:
                    await self._with_retries(lambda d=delivery: self.handle([d]))  # type: ignore[misc]
                except Exception as error:
                    await self.dead_letter(delivery.record, _reason(error))
        for delivery in deliveries:
            self.metrics.consumed.labels(self.group, delivery.record.topic).inc()

    async def _with_retries(self, attempt: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while True:
            try:
                await attempt()
                return
            except Unprocessable:
                raise  # no retry can fix it
            except Exception as error:
                if is_transient(error):
                    self.metrics.retries.labels(self.group, "transient").inc()
                    log.warning("group %s: transient fault, retrying: %s", self.group, error)
                    await asyncio.sleep(self.retry.delay(min(failures, 6)))
                    failures += 1
                    continue
                failures += 1
                if failures >= self.retry.attempts:
                    raise
                self.metrics.retries.labels(self.group, "handler").inc()
                log.warning(
                    "group %s: handler failed (attempt %d): %r", self.group, failures, error
                )
                await asyncio.sleep(self.retry.delay(failures))

    async def dead_letter(self, record: ConsumerRecord[bytes, bytes], reason: str) -> None:
        """Park the original bytes and key on `dlq.<group>`, saying where they came from and why."""
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        headers.update(
            {
                "x-dlq-source-topic": record.topic,
                "x-dlq-source-partition": str(record.partition),
                "x-dlq-source-offset": str(record.offset),
                "x-dlq-group": self.group,
                "x-dlq-reason": reason[:1000],
                "x-dlq-failed-at": datetime.now(UTC).isoformat(),
            }
        )
        while True:  # a dead letter that is not stored would be a lost message
            try:
                await self.broker.publish(
                    record.value or b"",
                    topic=self.dead_letters,
                    key=record.key,
                    headers=headers,
                )
                break
            except KafkaError as error:
                log.warning("group %s: dead-letter publish failed, retrying: %s", self.group, error)
                await asyncio.sleep(1.0)
        self.metrics.dead_lettered.labels(self.group, record.topic).inc()
        log.error(
            "group %s dead-lettered %s[%d]@%d: %s",
            self.group, record.topic, record.partition, record.offset, reason,
        )  # fmt: skip

    async def _commit(
        self, message: KafkaMessage, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        try:
            await message.consumer.commit(offsets)  # type: ignore[call-arg]
        except CommitFailedError as error:
            # The partitions moved to another member during a rebalance; it will redeliver from
            # the last commit and our idempotent handlers make the repeat harmless.
            log.warning("group %s: commit after rebalance refused: %s", self.group, error)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
