"""The outbox relay: follows an event store's notification log and publishes each new event to
Kafka, recording how far it got only after Kafka committed. Built once; every service runs it.

No dual writes: a request only saves events; this relay is the one writer to Kafka. A crash
re-sends a tail (consumers are idempotent) and never skips one. One relay is active per event
store: a PostgreSQL advisory lock elects it, others stand by; because a paused old relay can
outlive its lock, Kafka fences it too — one fixed `transactional.id` per store, each batch one
transaction, so a newer relay's `init` makes the old one's commits fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeAlias

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client import Counter as CounterMetric

from contracts.topics import max_message_bytes
from servicekit.config import ServiceSettings
from servicekit.faults import is_transient
from servicekit.kafka_connections import (
    RememberingPartitioner,
    retry_concurrent_transactions_sooner,
)
from servicekit.message_context import CORRELATION_ID, EVENT_ID
from servicekit.outbox_message import OutboxMessage
from servicekit.stored_context import read_with_context
from servicekit.table_setup import creating_tables
from servicekit.tracing import links_to, tracer

log = logging.getLogger(__name__)

# The most bytes the relay puts in one record batch of a partition. With aiokafka's default
# (16 KB) a transaction of 500 snapshot-sized events went out as several produce requests one
# after another per partition (one batch in flight each, idempotence); with 1 MiB it is one
# request. Measured (`make bench`, relay): 2,600 → 4,900 events/s.
RELAY_MAX_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class NotificationBatch:
    """Notifications in order, each with its message (None for one that is not published).
    `more`: the log held more after them than the read could take (read again at once)."""

    items: Sequence[tuple[int, OutboxMessage | None]]
    more: bool

    @classmethod
    def read(
        cls, items: Sequence[tuple[int, OutboxMessage | None]], taken: int, limit: int
    ) -> NotificationBatch:
        """`items`, of the `taken` notifications a read of at most `limit` found: there is
        more behind them when the limit was reached or the byte budget left some out."""
        return cls(items, more=taken == limit or len(items) < taken)


# Where a log may read: the relay's lock connection (tests read with a pool too).
Queryable: TypeAlias = asyncpg.Connection | asyncpg.Pool


class NotificationLog(Protocol):
    """An event store's notifications in order; ids grow but may have gaps."""

    async def fetch_after(
        self, connection: Queryable, position: int, limit: int, max_bytes: int
    ) -> NotificationBatch:
        """Up to `limit` notifications with id > `position`, stopping once their stored state
        reaches `max_bytes` (so one at least, and one at most past the budget). Answered only
        after a query on `connection` did: the relay passes its advisory lock's connection, and
        that query is its leadership check."""
        ...

    def last_id(self) -> int: ...

    @property
    def channel(self) -> str | None:
        """The PostgreSQL channel its writers NOTIFY when they commit, if they do."""
        ...


class EventsourcingLog:
    """`NotificationLog` over an eventsourcing application.

    On PostgreSQL `fetch_after` reads the rows with asyncpg on the event loop (on the relay's
    advisory lock connection), and only their decoding goes to a thread: eventsourcing's
    `select_notifications` (psycopg, a dict per row, in a worker thread) was a tenth of the
    relay's CPU; the query is the same (cut to a byte budget), so are the notifications. Other
    stores (in memory) are read with `read_after`, in a thread, after a `SELECT 1` on the
    connection.

    Each notification becomes a record through its domain event: the application's mapper
    decodes it, with the context it was stored with, and `to_message` maps the event. A store
    whose stored events map to records field for field can skip the domain event:
    `of_stored_events`."""

    def __init__(
        self,
        application: Any,
        to_message: Callable[[Any], OutboxMessage | None],
        *,
        record: Callable[[Notification], OutboxMessage | None] | None = None,
    ) -> None:
        """`record`, given, makes each record from the notification itself (`of_stored_events`);
        else `to_message` maps its domain event."""
        self.application = application
        self._to_message = to_message
        self._record = record or self._via_domain_event
        recorder = application.recorder
        self._select: str | None = None
        if isinstance(recorder, PostgresApplicationRecorder):
            table = f"{_quoted(recorder.datastore.schema)}.{_quoted(recorder.events_table_name)}"
            # eventsourcing's query for the next `limit` notifications, then cut where the
            # stored bytes before a row reach `max_bytes` (the first row always stays): sizes
            # come from the values' headers (`octet_length` does not detoast), and `taken`
            # says how many the limit took, so a batch cut short is known to have more after it.
            self._select = (
                "SELECT notification_id, originator_id, originator_version, topic, state, taken"
                " FROM (SELECT *, count(*) OVER () AS taken, sum(octet_length(state))"
                " OVER (ORDER BY notification_id) - octet_length(state) AS before"
                " FROM (SELECT notification_id, originator_id, originator_version, topic, state"
                f" FROM {table} WHERE notification_id > $1 ORDER BY notification_id LIMIT $2)"
                " AS tail) AS sized WHERE before < $3 ORDER BY notification_id"
            )

    def read_after(
        self, position: int, limit: int, max_bytes: int | None = None
    ) -> NotificationBatch:
        """Through eventsourcing's recorder (synchronous: call from a thread)."""
        notifications = self.application.recorder.select_notifications(
            start=position, limit=limit, inclusive_of_start=False
        )
        taken = len(notifications)
        if max_bytes is not None:
            notifications = _within(notifications, max_bytes)
        return NotificationBatch.read(
            [(n.id, self._record(n)) for n in notifications], taken, limit
        )

    async def fetch_after(
        self, connection: Queryable, position: int, limit: int, max_bytes: int
    ) -> NotificationBatch:
        """What `read_after` gives, read with asyncpg on `connection` where the store is on
        PostgreSQL (the same database)."""
        if self._select is None:
            await connection.fetchval("SELECT 1")  # the connection answers, as the contract says
            return await asyncio.to_thread(self.read_after, position, limit, max_bytes)
        rows = await connection.fetch(self._select, position, limit, max_bytes)
        taken = rows[0]["taken"] if rows else 0
        items = await asyncio.to_thread(self._decode, rows)
        return NotificationBatch.read(items, taken, limit)

    def _decode(self, rows: Sequence[asyncpg.Record]) -> list[tuple[int, OutboxMessage | None]]:
        return [
            (row[0], self._record(Notification(
                id=row[0], originator_id=row[1], originator_version=row[2], topic=row[3],
                state=row[4],
            )))
            for row in rows
        ]  # fmt: skip

    @classmethod
    def of_stored_events(
        cls, application: Any, to_message: Callable[[Notification], OutboxMessage | None]
    ) -> EventsourcingLog:
        """A log whose records `to_message` makes from the stored events themselves (id,
        version, topic, JSON state), context included: no domain event is decoded."""
        return cls(application, _no_domain_events, record=to_message)

    def _via_domain_event(self, notification: Notification) -> OutboxMessage | None:
        domain_event, context = read_with_context(self.application.mapper, notification)
        message = self._to_message(domain_event)
        return message if message is None or context is None else replace(message, context=context)

    def last_id(self) -> int:
        return int(self.application.recorder.max_notification_id() or 0)

    @property
    def channel(self) -> str | None:
        """eventsourcing's PostgreSQL recorder NOTIFYs this channel in every inserting
        transaction (`OneTripRecorder` too); the in-memory recorder has none."""
        name = getattr(self.application.recorder, "channel_name", None)
        return name if isinstance(name, str) else None


# At most one save of a relay's position this often (the first after a pause at once).
POSITION_SAVE_INTERVAL = 0.05


class PositionSaves:
    """A relay's position saved beside its work rather than in its way: a batch's position is
    saved while the next batches are read and sent, one save at a time, at most one every
    `interval` — each a durable commit, and at 100 creates/s batches came eighty a second.
    Always the latest position, so saves stay in order; a crash before one lands re-sends a
    longer tail (at most `interval` more), never skips one. A failed save is raised by the
    next `offer`: it stops the relay, as a failed save always did."""

    def __init__(self, save: Callable[[int], Awaitable[None]], interval: float) -> None:
        self._save = save
        self._interval = interval
        self._unsaved: int | None = None
        self._saving: asyncio.Task[None] | None = None

    def offer(self, position: int) -> None:
        if self._saving is not None and self._saving.done():
            self._saving.result()
        self._unsaved = position
        if self._saving is None or self._saving.done():
            self._saving = asyncio.create_task(self._save_unsaved())

    async def settled(self) -> None:
        """Once every position offered is saved (or a save failed: raised)."""
        if self._saving is not None:
            await self._saving

    async def _save_unsaved(self) -> None:
        loop = asyncio.get_running_loop()
        while self._unsaved is not None:
            position, self._unsaved = self._unsaved, None
            started = loop.time()
            await self._save(position)
            await asyncio.sleep(max(0.0, started + self._interval - loop.time()))


class LostLeadership(Exception):
    """The advisory lock's connection is gone: another relay may be active now."""


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.published = CounterMetric(
            "outbox_events_published_total",
            "Events the relay published",
            ["relay", "topic"],
            registry=registry,
        )
        self.position = Gauge(
            "outbox_relay_position",
            "Last notification id published and committed",
            ["relay"],
            registry=registry,
        )
        self.lag = Gauge(
            "outbox_relay_lag_events",
            "Notifications stored but not yet published",
            ["relay"],
            registry=registry,
        )
        self.active = Gauge(
            "outbox_relay_active",
            "1 while this process is the active relay",
            ["relay"],
            registry=registry,
        )


@dataclass
class RelayConfig:
    name: str  # one per event store: names the lock, the position row and the transactional.id
    schema: str  # where the position table lives (the service's own schema)
    # One transaction a batch: up to `batch_size` events and `batch_bytes` of stored state,
    # whichever comes first (one event at least, whatever its size). A transaction's round
    # trips (adding partitions, committing, the markers) are spread over its events: 2,000
    # rather than 500 was 15-20 % more events/s in the relay benchmark. The bytes bound is
    # for memory: 500 snapshots of the 2 MiB limit read at once were 1 GB, in a workers pod
    # limited to 768 MiB (deploy/k8s) — a relay that could never get past them.
    batch_size: int = 2_000
    batch_bytes: int = 8 * 1024 * 1024
    # At most one transaction this often (start to start), unless a backlog fills whole
    # batches: what is stored meanwhile goes out in the next one. Each transaction costs the
    # broker the same whatever it carries (partitions added, a prepare and a commit in its
    # transaction log, a marker on every partition it wrote, and the consumers' fetches that
    # follow), so under load it is the broker's largest cost per event; Kafka Streams commits
    # its exactly-once transactions every 100 ms for the same reason. 20 ms, in the command
    # benchmark at ~1,300 commands/s: 17 → 43 events a transaction, the broker's CPU per command
    # 0.28-0.33 → 0.19 ms, the workers' 0.36 → 0.30. It adds at most that much to an event's
    # way out, and only to events stored within it of the last transaction: freshness at 100
    # creates/s went 5.5 → 17.6 ms (median; target 50), at 5 creates/s unchanged.
    transaction_interval: float = 0.02
    # How often an idle relay reads the log anyway: often for a store that sends no NOTIFY; for
    # one that does, only as a safety net — the wakeup comes on the lock's own connection, and
    # losing that connection loses the lock too. (A 20 ms poll under a working NOTIFY was ~50
    # empty reads a second, each a thread hop and a query, for nothing.)
    poll_interval: float = 0.02
    listening_poll_interval: float = 1.0
    standby_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.batch_bytes < 1:
            raise ValueError("a relay batch takes at least one event and one byte")
        if self.transaction_interval < 0:
            raise ValueError("the relay's transaction interval cannot be negative")

    def transactional_id(self, topic_prefix: str = "") -> str:
        """One per event store in a cluster; the deployment's topic prefix keeps the stacks that
        share a cluster apart (else each one's new relay fences the other's active one)."""
        return f"{topic_prefix}chatshare-outbox-{self.name}"


class OutboxRelay:
    def __init__(
        self,
        config: RelayConfig,
        notifications: NotificationLog,
        pool: asyncpg.Pool,
        settings: ServiceSettings,
        metrics: RelayMetrics,
    ) -> None:
        self.config = config
        self.notifications = notifications
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.wakeup = asyncio.Event()
        self.is_active = False

    def notify(self, *_: object) -> None:
        """A save was committed: publish now rather than at the next poll. Called after a local
        save, and by the event store's NOTIFY for saves in any process (the API's commands,
        when the relay runs in a workers process)."""
        self.wakeup.set()

    async def run(self) -> None:
        """Stand by until elected, publish while elected, and stand by again when fenced. The
        relay is the only way stored events reach Kafka, so it never gives up: an outage of
        Kafka or PostgreSQL is waited out, however long, and any other error is logged with its
        traceback and the relay started again (its work is idempotent: a tail is re-sent)."""
        await self.prepare()
        while True:
            lock = await self._acquire_lock()
            if lock is None:
                await asyncio.sleep(self.config.standby_interval)
                continue
            producer = self._new_producer()
            try:
                await producer.start()  # init_transactions: fences any older relay of this store
                self._set_active(True)
                await self.publish_while_leader(lock, producer)
            except (ProducerFenced, LostLeadership) as error:
                log.warning("relay %s stands down: %s", self.config.name, error)
            except Exception as error:
                if is_transient(error):
                    log.warning(
                        "relay %s: Kafka or PostgreSQL unreachable, restarting the relay: %r",
                        self.config.name, error,
                    )  # fmt: skip
                else:
                    log.exception("relay %s failed, restarting it: %r", self.config.name, error)
                await asyncio.sleep(self.config.standby_interval)
            finally:
                self._set_active(False)
                await _quietly(producer.stop())
                await _quietly(lock.close())

    async def publish_while_leader(
        self, lock: asyncpg.Connection, producer: AIOKafkaProducer
    ) -> None:
        position = await self.load_position()
        poll = self.config.poll_interval
        if self.notifications.channel is not None:  # on the lock's own connection
            await lock.add_listener(self.notifications.channel, self.notify)
            poll = self.config.listening_poll_interval
        # While a batch that has more behind it is published, the next one is read (reading is
        # pure: a batch read ahead and never published is simply read again after a restart).
        ahead: asyncio.Task[NotificationBatch] | None = None
        saves = PositionSaves(self.save_position, POSITION_SAVE_INTERVAL)
        loop = asyncio.get_running_loop()
        next_at = 0.0  # no transaction starts before this (`transaction_interval`)
        try:
            while True:
                if ahead is None:
                    if (delay := next_at - loop.time()) > 0:
                        await asyncio.sleep(delay)
                    self.wakeup.clear()  # before reading: a save after this read sets it
                    batch = await self._read_after(lock, position)
                else:  # the wakeup was left set: at worst one read more before waiting
                    batch, ahead = await ahead, None
                if not batch.items:
                    self.metrics.lag.labels(self.config.name).set(0)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), poll)
                    continue
                position_after = batch.items[-1][0]
                messages = [(nid, msg) for nid, msg in batch.items if msg is not None]
                if messages:  # a transaction starts
                    next_at = loop.time() + self.config.transaction_interval
                if batch.more:
                    ahead = asyncio.create_task(self._read_after(lock, position_after))
                await self.publish_batch(producer, messages)
                position = position_after
                saves.offer(position)  # a failed save stops the relay, as it always did
                if batch.more:  # say by how much
                    last = await asyncio.to_thread(self.notifications.last_id)
                    self.metrics.lag.labels(self.config.name).set(max(0, last - position))
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.gather(ahead, return_exceptions=True)
            # A position published is worth saving, even on the way out.
            await asyncio.gather(saves.settled(), return_exceptions=True)

    async def _read_after(self, lock: asyncpg.Connection, position: int) -> NotificationBatch:
        """The next batch, read on the advisory lock's own connection: the lock is re-checked
        before every batch (DESIGN.md), and an answer there comes from the very session that
        holds it — one round trip, where a check beside a read on the pool made two (one of
        the six requests each batch made, three to PostgreSQL and three to Kafka). No batch
        goes out unchecked: LostLeadership, and this relay stands down before publishing it."""
        try:
            return await self.notifications.fetch_after(
                lock, position, self.config.batch_size, self.config.batch_bytes
            )
        except Exception as error:
            if lock.is_closed():
                raise LostLeadership(f"the advisory lock's connection failed: {error!r}") from error
            raise

    async def publish_batch(
        self, producer: AIOKafkaProducer, messages: Sequence[tuple[int, OutboxMessage]]
    ) -> None:
        """One Kafka transaction: all of the batch becomes visible, or none of it."""
        if not messages:
            return
        with relay_span(self.config.name, messages):
            await self._send_in_transaction(producer, messages)
        for topic, count in Counter(message.topic for _, message in messages).items():
            self.metrics.published.labels(self.config.name, topic).inc(count)

    async def _send_in_transaction(
        self, producer: AIOKafkaProducer, messages: Sequence[tuple[int, OutboxMessage]]
    ) -> None:
        async with producer.transaction():
            sent = [
                await producer.send(
                    self.settings.topic(message.topic),
                    message.value,
                    key=message.key.encode(),
                    headers=record_headers(notification_id, message),
                )
                for notification_id, message in messages
            ]
            # One after the other, not `gather`: they complete together, a done one is awaited
            # at no cost, and gather's task and callback per record were 9 % of the relay's CPU.
            try:
                for delivery in sent:
                    await delivery
            except BaseException:
                for delivery in sent:  # the others' failures are this one's: seen, not logged
                    delivery.add_done_callback(_retrieve)
                raise

    def _new_producer(self) -> AIOKafkaProducer:
        # A batch is one record of the topic's `max.message.bytes` (the same bound): never more.
        message_bytes = max_message_bytes(self.settings.max_snapshot_bytes)
        retry_concurrent_transactions_sooner()  # its transactions come back to back
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            client_id=f"relay-{self.config.name}",
            transactional_id=self.config.transactional_id(self.settings.topic_prefix),
            enable_idempotence=True,
            acks="all",
            # A batch's records are all queued before the transaction's first request goes
            # out (queueing never waits): lingering would only delay each publication.
            linger_ms=0,
            max_batch_size=min(RELAY_MAX_BATCH_BYTES, message_bytes),
            partitioner=RememberingPartitioner(),
            max_request_size=message_bytes,
            transaction_timeout_ms=60_000,
        )

    def _set_active(self, active: bool) -> None:
        self.is_active = active
        self.metrics.active.labels(self.config.name).set(1 if active else 0)

    async def _acquire_lock(self) -> asyncpg.Connection | None:
        """The advisory lock's connection if this relay is elected; None if another relay holds
        the lock or PostgreSQL cannot be reached (both mean: try again later)."""
        connection: asyncpg.Connection | None = None
        try:
            connection = await asyncpg.connect(self.settings.database_dsn, timeout=10)
            lock = "SELECT pg_try_advisory_lock(hashtext($1))"
            if await connection.fetchval(lock, self._lock_key):
                return connection
        except Exception as error:
            if not is_transient(error) and not isinstance(error, asyncpg.PostgresError):
                raise
            log.warning("relay %s cannot reach PostgreSQL: %r", self.config.name, error)
        if connection is not None:
            await _quietly(connection.close())
        return None

    @property
    def _lock_key(self) -> str:
        return f"chatshare-outbox-relay:{self.config.name}"

    @property
    def _table(self) -> str:
        return f'"{self.config.schema}".outbox_relay_positions'

    async def prepare(self) -> None:
        async with creating_tables(self.pool), self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.config.schema}"')
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                " relay text PRIMARY KEY, notification_id bigint NOT NULL,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )

    async def load_position(self) -> int:
        value = await self.pool.fetchval(
            f"SELECT notification_id FROM {self._table} WHERE relay = $1", self.config.name
        )
        return int(value or 0)

    async def save_position(self, position: int) -> None:
        # GREATEST: a fenced relay that wakes up late can never move the position back.
        await self.pool.execute(
            f"INSERT INTO {self._table} (relay, notification_id) VALUES ($1, $2) "
            "ON CONFLICT (relay) DO UPDATE SET notification_id = "
            f"GREATEST({self._table}.notification_id, EXCLUDED.notification_id), updated_at = now()",
            self.config.name,
            position,
        )
        self.metrics.position.labels(self.config.name).set(position)


@contextlib.contextmanager
def relay_span(relay: str, messages: Sequence[tuple[int, OutboxMessage]]) -> Iterator[None]:
    """With tracing on, a span for one published batch, linked to the spans that stored it."""
    active = tracer()
    if active is None:
        yield
        return
    with active.start_as_current_span(
        f"publish {relay} outbox",
        links=links_to(m.context.traceparent for _, m in messages if m.context is not None),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(messages)},
    ):
        yield


def _no_domain_events(domain_event: Any) -> OutboxMessage | None:
    raise AssertionError("a log of stored events decodes no domain event")


def record_headers(notification_id: int, message: OutboxMessage) -> list[tuple[str, bytes]]:
    """`event_id`, `notification_id`, and the context the event was stored with; an event
    stored with none (before contexts were stored) starts its own chain: its correlation id is
    its event id, and it has no causation id."""
    event_id = str(message.event_id).encode()
    if message.context is None:
        return [
            (EVENT_ID, event_id),
            ("notification_id", str(notification_id).encode()),
            (CORRELATION_ID, event_id),
        ]
    headers = {
        EVENT_ID: event_id,
        "notification_id": str(notification_id).encode(),
        **{key: value.encode() for key, value in message.context.as_headers().items()},
    }
    return list(headers.items())


def _within(notifications: Sequence[Notification], max_bytes: int) -> Sequence[Notification]:
    """The first notifications, up to and including the one whose stored bytes take their sum
    to `max_bytes` or more (so the first is always kept): the query's cut, in Python."""
    total = 0
    for count, notification in enumerate(notifications):
        if count and total >= max_bytes:
            return notifications[:count]
        total += len(notification.state)
    return notifications


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _retrieve(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception as error:  # closing after a failure: report, don't mask the first error
        log.debug("while closing: %r", error)
