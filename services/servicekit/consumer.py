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
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter

from contracts.topics import dead_letter_topic
from servicekit.config import ServiceSettings
from servicekit.faults import is_transient as is_transient  # re-exported: callers import it here
from servicekit.message_context import (
    CORRELATION_ID,
    TRACEPARENT,
    MessageContext,
    context_of_record,
    using_context,
)
from servicekit.tracing import current_traceparent, links_to, parent_of, tracer

log = logging.getLogger(__name__)

# How long one poll for records waits when none come (it returns as soon as any do).
IDLE_WAIT_MS = 1_000

# At most one offset commit per group this often (`PipelinedCommits`).
COMMIT_INTERVAL_SECONDS = 0.05

# On a dead letter parked without the original's bytes: how large they were, and why left out.
DLQ_OMITTED = "x-dlq-value-omitted"

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

    @property
    def context(self) -> MessageContext:
        """What handling this record belongs to: bind it (`using_context`) around work done for
        this record alone, so its logs and stored events carry the record's correlation id."""
        return context_of_record(self.record.headers)


Decoder = Callable[[ConsumerRecord[bytes, bytes]], E]
BatchHandler = Callable[[Sequence[Delivery[E]]], Awaitable[None]]


class PipelinedCommits:
    """A group's offsets committed beside its work rather than in its way.

    A commit is a Kafka round trip (3 ms on an idle machine here, far more under load); awaited
    after each batch, it held the next batch back by as much — a hop in every new link's way to
    its readers. Now each handled batch hands its offsets over and the group polls again at
    once; one commit is in flight at a time, at most one every `interval` (the first after a
    pause at once), and what batches hand over meanwhile goes out merged in the next: at 100
    creates/s the projection's batches came eighty a second, each with its commit. Still only
    offsets of batches whose work was stored; a crash before a commit lands redelivers those
    batches (at most `interval` more), which every handler applies idempotently — as after a
    crash between the store's commit and Kafka's before."""

    def __init__(self, group: str, interval: float = COMMIT_INTERVAL_SECONDS) -> None:
        self.group = group
        self.interval = interval
        self._pending: dict[TopicPartition, int] = {}
        self._committing: asyncio.Task[None] | None = None

    def add(self, consumer: Any, offsets: dict[TopicPartition, int]) -> None:
        for partition, offset in offsets.items():
            self._pending[partition] = max(self._pending.get(partition, 0), offset)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending(consumer))

    async def flush(self) -> None:
        """Wait for the commits handed over so far (before partitions move to another member)."""
        while self._committing is not None and not self._committing.done():
            await asyncio.gather(self._committing, return_exceptions=True)

    async def _commit_pending(self, consumer: Any) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            offsets, self._pending = self._pending, {}
            started = loop.time()
            try:
                await consumer.commit(offsets)
            except CommitFailedError as error:
                # The partitions moved to another member during a rebalance; it will redeliver
                # from the last commit and our idempotent handlers make the repeat harmless.
                log.warning("group %s: commit after rebalance refused: %s", self.group, error)
            except Exception as error:  # Kafka unreachable, the consumer stopping, …
                # Kept for the next batch's commit to carry; until then, a restart redelivers.
                for partition, offset in offsets.items():
                    self._pending[partition] = max(self._pending.get(partition, 0), offset)
                log.warning("group %s: offsets not committed yet: %r", self.group, error)
                return
            await asyncio.sleep(max(0.0, started + self.interval - loop.time()))


class AssignmentTracker(ConsumerRebalanceListener):  # type: ignore[misc]
    """Knows whether the consumer has joined its group (for `/readyz`), and lets the offsets
    handed over land before partitions move away."""

    def __init__(self, group: str, commits: PipelinedCommits | None = None) -> None:
        self.group = group
        self.joined = asyncio.Event()
        self.partitions: frozenset[TopicPartition] = frozenset()
        self.commits = commits

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.joined.clear()
        if self.commits is not None:
            await self.commits.flush()

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


def polling_without_blind_sleep(
    max_records: int, wait_ms: int = IDLE_WAIT_MS
) -> Callable[[Any], Coroutine[Any, Any, tuple[ConsumerRecord[bytes, bytes], ...]]]:
    """The batch subscriber's poll, minus a trap: faststream 0.7's own waits `batch_timeout_ms`
    (200 ms) for records and, when none came, *sleeps* as long again before polling once more —
    a record landing in that sleep waits it out. An idle projection so took up to 200 ms more to
    show a new link (freshness p99 183 ms at 5 creates/s, all of it between Kafka and the view),
    and no timeout fixes it: a shorter one only moves the sleep into busy traffic, where records
    come 10 ms apart (tried: 10 ms, and 100 creates/s got slower). This poll waits up to
    `wait_ms` and hands back whatever came, possibly nothing: faststream's loop polls again at
    once. Blocking in a poll counts as polling for aiokafka's `max.poll.interval`; stopping
    cancels it."""

    async def get_msg(consumer: Any) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        batches = await consumer.getmany(timeout_ms=wait_ms, max_records=max_records)
        return tuple(record for records in batches.values() for record in records)

    return get_msg


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
        self.commits = PipelinedCommits(group)
        self.tracker = AssignmentTracker(group, self.commits)

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
            parser=parse_leniently,
            decoder=received_batch,
        )
        subscriber(self.on_batch)
        subscriber.get_msg = polling_without_blind_sleep(max_records)  # type: ignore[method-assign,assignment]

    async def readiness(self) -> str | None:
        return None if self.tracker.joined.is_set() else f"{self.group} has not joined its group"

    async def on_batch(self, batch: ReceivedBatch) -> None:
        records = batch.records
        # A batch of one record is that record's work; a larger one belongs to no single chain
        # (handlers bind each delivery's context around what they do for it alone).
        batch_context = context_of_record(records[0].headers) if len(records) == 1 else None
        with consumer_span(self.group, records, batch_context) as context, using_context(context):
            deliveries = [d for record in records if (d := await self._decode(record))]
            await self._handle_all(deliveries)
            self._commit(batch.consumer, records)

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
                    with using_context(delivery.context):
                        await self._with_retries(lambda d=delivery: self.handle([d]))  # type: ignore[misc]
                except Exception as error:
                    await self.dead_letter(delivery.record, _reason(error))
        for delivery in deliveries:
            self.metrics.consumed.labels(self.group, delivery.record.topic).inc()

    async def _with_retries(self, attempt: Callable[[], Awaitable[None]]) -> None:
        # Two counts: waiting out an outage is not the handler failing, so it never uses up
        # the attempts that decide a dead letter (an outage must not park a valid event).
        failures = outage = 0
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
                    await asyncio.sleep(self.retry.delay(min(outage, 6)))
                    outage += 1
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
        """Park the original bytes and key on `dlq.<group>`, saying where they came from and why.

        A record too large to copy (the dead-letter topic takes no more than its source, and the
        letter adds headers; or this service's producer is sized for a smaller snapshot limit
        than the topics) is parked without its value and headers: they stay, kept forever, at
        the source offset the letter names. Retrying the copy would stall the group for good.
        """
        context = context_of_record(record.headers)
        where = {
            "x-dlq-source-topic": record.topic,
            "x-dlq-source-partition": str(record.partition),
            "x-dlq-source-offset": str(record.offset),
            "x-dlq-group": self.group,
            "x-dlq-reason": reason[:1000],
            "x-dlq-failed-at": datetime.now(UTC).isoformat(),
        }
        # A header's value may be null or any bytes: copied readably, never a reason to fail.
        copied = {
            key: (value or b"").decode(errors="replace") for key, value in record.headers or ()
        }
        correlation = {CORRELATION_ID: context.correlation_id}
        try:
            letter = {**correlation, **copied, **where}
            await self._publish_dead_letter(record.value or b"", record.key, letter)
        except MessageSizeTooLargeError:
            size = len(record.value or b"")
            omitted = f"{size} bytes and the headers, too large to copy: read them at the source"
            stub = {**correlation, **where, DLQ_OMITTED: omitted}
            await self._publish_dead_letter(b"", record.key, stub)
        self.metrics.dead_lettered.labels(self.group, record.topic).inc()
        with using_context(context):
            log.error(
                "group %s dead-lettered %s[%d]@%d: %s",
                self.group, record.topic, record.partition, record.offset, reason,
            )  # fmt: skip

    async def _publish_dead_letter(
        self, value: bytes, key: bytes | None, headers: dict[str, str]
    ) -> None:
        while True:  # a dead letter that is not stored would be a lost message
            try:
                await self.broker.publish(value, topic=self.dead_letters, key=key, headers=headers)
                return
            except MessageSizeTooLargeError:
                raise  # no retry makes it smaller
            except KafkaError as error:
                log.warning("group %s: dead-letter publish failed, retrying: %s", self.group, error)
                await asyncio.sleep(1.0)

    def _commit(self, consumer: Any, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for record in records:
            partition = TopicPartition(record.topic, record.partition)
            offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
        self.commits.add(consumer, offsets)


@contextmanager
def consumer_span(
    group: str, records: Sequence[ConsumerRecord[bytes, bytes]], context: MessageContext | None
) -> Iterator[MessageContext | None]:
    """With tracing on, a span for the batch: the child of its one record's producer, or linked
    to each record's; the context it yields carries the span on to what the handler stores."""
    active = tracer()
    if active is None:
        yield context
        return
    traceparents = [dict(r.headers or ()).get(TRACEPARENT) for r in records]
    decoded = [value.decode(errors="replace") if value else None for value in traceparents]
    with active.start_as_current_span(
        f"consume {group}",
        context=parent_of(decoded[0]) if len(records) == 1 else None,
        links=links_to(decoded) if len(records) > 1 else None,
        kind=SpanKind.CONSUMER,
        attributes={"messaging.system": "kafka", "messaging.consumer.group.name": group,
                    "messaging.batch.message_count": len(records)},
    ):  # fmt: skip
        yield None if context is None else replace(context, traceparent=current_traceparent())


Records = tuple[ConsumerRecord[bytes, bytes], ...]


async def parse_leniently(
    records: Records, parse_batch: Callable[[Records], Awaitable[StreamMessage[Any]]]
) -> StreamMessage[Any]:
    """faststream reads every header of a batch as UTF-8 before any handler runs: one stray byte
    or null header would fail the whole batch, which is then never handled nor dead-lettered,
    and the next batch's commit skips it. It parses copies with readable headers; the handler
    gets the records as they came."""
    message = await parse_batch(tuple(map(_with_readable_headers, records)))
    message.raw_message = records
    return message


@dataclass(frozen=True)
class ReceivedBatch:
    """What a group's handler gets for a batch: its records, undecoded, and the consumer that
    fetched them (whose offsets are committed)."""

    records: tuple[ConsumerRecord[bytes, bytes], ...]
    consumer: Any


async def received_batch(message: StreamMessage[Any]) -> ReceivedBatch:
    """The decoder of every group: the batch's records undecoded, with their consumer.

    Each record is decoded by the group's own decoder, with its topic's contract. faststream's
    JSON decoding of every body would be wasted work, and it fails the whole batch on a body
    nested too deep or not matching its `content-type` header. The broker injects nothing
    (`new_broker`: `apply_types=False`), so the handler is called with exactly this.

    Not the message itself: faststream keeps the decoded value on the message, and a message
    holding itself is a reference cycle — every batch, its records and their headers lived on
    until a collection found them, ~15,000 objects every two seconds in the share workers at
    1,200 commands/s, each collection pausing them 5-24 ms."""
    return ReceivedBatch(message.raw_message, message.consumer)  # type: ignore[attr-defined]


def _with_readable_headers(record: ConsumerRecord[bytes, bytes]) -> ConsumerRecord[bytes, bytes]:
    if not record.headers:
        return record
    readable = [
        (key, (value or b"").decode(errors="replace").encode()) for key, value in record.headers
    ]
    return record if readable == list(record.headers) else replace(record, headers=readable)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
