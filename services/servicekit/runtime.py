"""The I/O every service holds for its lifetime: a PostgreSQL pool, a faststream Kafka broker,
readiness checks and a metrics registry. Built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from contracts.topics import dead_letter_topic, max_message_bytes
from servicekit import heap
from servicekit.config import Role, ServiceSettings
from servicekit.consumer import BatchHandler, ConsumerGroup, ConsumerMetrics, Decoder
from servicekit.held_connections import HeldConnections
from servicekit.http import (
    Readiness,
    RequestMetrics,
    install_error_handlers,
    install_operational_routes,
)
from servicekit.kafka_connections import survive_closed_transports
from servicekit.outbox import OutboxRelay
from servicekit.request_context import RequestContext
from servicekit.structured_logging import BROKER_LOGGER, configure_logging
from servicekit.table_setup import creating_tables
from servicekit.tracing import configure_tracing

log = logging.getLogger(__name__)
E = TypeVar("E")


@dataclass
class ServiceRuntime:
    settings: ServiceSettings
    pool: asyncpg.Pool
    broker: KafkaBroker
    readiness: Readiness
    registry: CollectorRegistry
    consumer_metrics: ConsumerMetrics
    reads: HeldConnections  # for the hottest single-row reads; opened when first needed
    background: list[asyncio.Task[None]] = field(default_factory=list)

    def runs(self, role: Role) -> bool:
        """Whether this process has the role (`CHATSHARE_ROLES`)."""
        return self.settings.runs(role)

    def joins(self, group: str) -> bool:
        """Whether this process joins the consumer group of that contract name: it has the
        `consumers` role, and `CHATSHARE_CONSUMER_GROUPS` is empty or names the group."""
        return self.settings.joins(group)

    def add_consumer(self, group: ConsumerGroup[Any], max_records: int = 500) -> None:
        """Subscribe a consumer group (before `broker.start()`) and make readiness wait for it.
        Slow handlers take smaller batches: a batch must finish within max.poll.interval."""
        group.subscribe(self.settings, max_records=max_records)
        self.readiness.add(f"consumer:{group.group}", group.readiness)

    def follow(
        self,
        group: str,
        topics: Sequence[str],
        decode: Decoder[E],
        handle: BatchHandler[E],
        *,
        dead_letters_of: str | None = None,
        max_records: int = 500,
    ) -> ConsumerGroup[E]:
        """A consumer group by its contract names (INTERFACE.md §5), prefixed as configured,
        dead-lettering to `dlq.<group>` (or `dlq.<dead_letters_of>`), subscribed as
        `add_consumer` does — only in a process that `joins` it."""
        consumer = ConsumerGroup(
            group=self.settings.group(group),
            dead_letters=self.settings.topic(dead_letter_topic(dead_letters_of or group)),
            topics=[self.settings.topic(topic) for topic in topics],
            decode=decode,
            handle=handle,
            broker=self.broker,
            metrics=self.consumer_metrics,
        )
        if self.joins(group):
            self.add_consumer(consumer, max_records=max_records)
        elif self.runs("consumers"):
            log.info("not joining %s: CHATSHARE_CONSUMER_GROUPS leaves it to others", group)
        else:
            log.info("not joining %s: this process has no consumers role", group)
        return consumer

    def creating_tables(self) -> AbstractAsyncContextManager[None]:
        """Around the creation of the service's tables: one process of the database at a time
        (`table_setup`)."""
        return creating_tables(self.pool)

    def start_relay(self, relay: OutboxRelay) -> None:
        """Run the outbox relay, in a process with the `relay` role (others leave it to theirs:
        one relay is active per event store anyway)."""
        if not self.runs("relay"):
            log.info("not running relay %s: this process has no relay role", relay.config.name)
            return
        self.run_in_background("outbox-relay", relay.run)

    def run_in_background(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """A long-running loop (relay, consumer) that dies loudly rather than silently."""

        async def guarded() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task %s failed", name)
                raise

        self.background.append(asyncio.create_task(guarded(), name=name))


def new_broker(settings: ServiceSettings, client_id: str) -> KafkaBroker:
    survive_closed_transports()  # every Kafka client of the process, relays and probes too
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,  # forces acks=all: a publish is acknowledged only when durable
        max_request_size=max_message_bytes(settings.max_snapshot_bytes),
        allow_auto_create_topics=False,
        graceful_timeout=10.0,
        logger=logging.getLogger(BROKER_LOGGER),  # plain: its records become JSON lines
        # faststream's "Received"/"Processed" line for every message (batch) it hands over, at
        # this level: debugging only. At INFO they were 95 % of a worker's log, each line
        # without the message it names, and ~4 % of its CPU. Errors are logged at ERROR still.
        log_level=logging.DEBUG,
        # No dependency injection: every handler is `ConsumerGroup.on_batch`, called with the
        # batch's records (`received_batch`). fast_depends resolved that one argument per
        # batch in a worker thread (`anyio.to_thread`) and validated the call with pydantic:
        # ~250 µs of CPU a batch measured through faststream's test broker (555 → 307 µs), more
        # on a quiet consumer, where each record is a batch of its own.
        apply_types=False,
    )


@asynccontextmanager
async def open_runtime(
    settings: ServiceSettings,
    name: str,
    registry: CollectorRegistry,
    readiness: Readiness,
    broker: KafkaBroker,
) -> AsyncIterator[ServiceRuntime]:
    """Connect, yield, and close in reverse order; the caller registers subscribers before
    `broker.start()` is called by `start_runtime`."""
    pool = await asyncpg.create_pool(
        settings.database_dsn,
        min_size=1,
        max_size=settings.database_pool_size,
        timeout=10,
        reset=_reset_if_in_transaction,
    )
    reads = HeldConnections.to(settings.database_dsn, settings.database_read_connections)
    runtime = ServiceRuntime(
        settings, pool, broker, readiness, registry, ConsumerMetrics(registry), reads
    )
    readiness.add("postgresql", lambda: _postgres_ready(pool))
    readiness.add("kafka", lambda: _kafka_ready(broker))
    try:
        yield runtime
    finally:
        for task in runtime.background:
            task.cancel()
        await asyncio.gather(*runtime.background, return_exceptions=True)
        await broker.stop()
        await reads.close()
        await pool.close()


async def _reset_if_in_transaction(connection: asyncpg.Connection) -> None:
    """What a connection goes through on its way back to the pool. asyncpg's default resets the
    whole session (advisory locks, cursors, LISTEN, settings): one more round trip on every
    query of the hot paths. No code here leaves session state on a pooled connection (the
    relay's lock has its own connection, SET is only ever LOCAL), so only a transaction left
    open — by a cancelled task, say — needs undoing."""
    if connection.is_in_transaction():
        await connection.reset()


async def _postgres_ready(pool: asyncpg.Pool) -> str | None:
    async with pool.acquire(timeout=2) as connection:
        await connection.fetchval("SELECT 1")
    return None


async def _kafka_ready(broker: KafkaBroker) -> str | None:
    return None if await broker.ping(timeout=2) else "kafka unreachable"


NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


class EdgeFirstApp(FastAPI):
    """FastAPI with the shared edge — request context, metrics, then a service's lean paths
    (`add_edge`) — run in front of Starlette's middleware stack rather than inside it.

    A request a lean path answers (share_service's hot read and Copy Link) so skips the stack's
    four layers and their `send` wrappers, about 7 % of the API's CPU per hot read; every other
    request goes on through the stack as before, its errors answered by the same handlers. An
    exception nothing handled still becomes a plain 500 (from Starlette's outermost layer for
    the routes, from uvicorn for a lean path), counted by the metrics as before.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._edge: list[Callable[[ASGIApp], ASGIApp]] = []  # outermost first
        self._entry: ASGIApp | None = None

    def add_edge(self, layer: Callable[[ASGIApp], ASGIApp]) -> None:
        """Wrap the application inside the edge added before (so: add outermost first)."""
        if self._entry is not None:
            raise RuntimeError("the edge cannot change once the application has started")
        self._edge.append(layer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._entry is None:
            entry: ASGIApp = super().__call__
            for layer in reversed(self._edge):
                entry = layer(entry)
            self._entry = entry
        scope["app"] = self  # what Starlette sets, for the lean paths' `request.app`
        await self._entry(scope, receive, send)


def new_service_app(
    name: str,
    settings: ServiceSettings,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> EdgeFirstApp:
    """A FastAPI app with the shared edge installed (JSON logs, tracing if the environment asks
    for it, request context and metrics); the service adds its routes."""
    configure_logging(name, settings.log_level)
    tracer = configure_tracing(name)
    registry = CollectorRegistry()
    heap.tune()

    @asynccontextmanager
    async def started_then_settled(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            heap.settle()  # what start-up built lives as long as the process
            yield

    app = EdgeFirstApp(
        title=f"chatshare {name}",
        lifespan=started_then_settled,
        # FastAPI's own OpenTelemetry instrumentation (0.165) stays off: `RequestContext` makes
        # each request's server span and `RequestMetrics` its metrics. With both on, a traced
        # request was two SERVER spans, and every request paid FastAPI's provider checks.
        telemetry=NO_FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.readiness = Readiness()
    install_error_handlers(app)
    install_operational_routes(app, app.state.readiness, registry)
    app.add_edge(lambda inner: RequestContext(inner, tracer=tracer))  # errors logged in context
    app.add_edge(lambda inner: RequestMetrics(inner, registry=registry))
    return app
