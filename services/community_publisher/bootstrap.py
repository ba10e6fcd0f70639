"""Wires community_publisher: its settings, the shared runtime (PostgreSQL, Kafka), the policy
view, its event store of outcomes with the outbox relay to `community.events`, the community
site's client and the consumer of community requests.

The only place adapters are built; `create_app` is the uvicorn factory and tests call it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from community_publisher.adapters.community_events import to_outbox_message
from community_publisher.adapters.community_site import CommunitySiteClient, open_community_site
from community_publisher.application.metrics import PublisherMetrics
from community_publisher.application.publishing import CommunityPublisher
from community_publisher.application.upload_records import UploadRecords
from community_publisher.config import CommunityPublisherSettings
from community_publisher.domain.upload_attempts import Backoff
from community_publisher.entrypoints.share_requests import ShareRequests, follow_share_requests
from contracts.topics import COMMUNITY_PUBLISHER_POLICY_GROUP
from servicekit.event_store import eventsourcing_env
from servicekit.outbox import EventsourcingLog, OutboxRelay, RelayConfig, RelayMetrics
from servicekit.policy import PolicyView, follow_policy
from servicekit.runtime import ServiceRuntime, new_broker, new_service_app, open_runtime

SERVICE_NAME = "community_publisher"
EVENT_STORE_SCHEMA = "community_publisher"


def open_upload_records(database_url: str) -> UploadRecords:
    """Blocking (connects, creates the schema and tables): call it from a worker thread."""
    return UploadRecords(env=eventsourcing_env(database_url, EVENT_STORE_SCHEMA))


def new_publisher(
    settings: CommunityPublisherSettings,
    records: UploadRecords,
    policy: PolicyView,
    site: CommunitySiteClient,
    metrics: PublisherMetrics,
    after_record: Callable[[], None],
) -> CommunityPublisher:
    """The publisher as the community-publisher group runs it (and `chatshare dlq redrive`)."""
    return CommunityPublisher(
        records=records,
        policy=policy,
        site=site,
        backoff=Backoff(
            max_attempts=settings.upload_max_attempts,
            first_delay=settings.upload_backoff_seconds,
            max_delay=settings.upload_max_backoff_seconds,
        ),
        metrics=metrics,
        instance_id=settings.instance_id,
        policy_wait_seconds=settings.policy_wait_seconds,
        after_record=after_record,
    )


async def wire(
    runtime: ServiceRuntime,
    settings: CommunityPublisherSettings,
    records: UploadRecords,
    site: CommunitySiteClient,
) -> PolicyView:
    """The policy view, the relay and the consumer of requests; call before `broker.start()`."""
    policy = await follow_policy(runtime, COMMUNITY_PUBLISHER_POLICY_GROUP, EVENT_STORE_SCHEMA)
    relay = OutboxRelay(
        RelayConfig(name=SERVICE_NAME, schema=EVENT_STORE_SCHEMA),
        EventsourcingLog(records, to_outbox_message),
        runtime.pool,
        settings,
        RelayMetrics(runtime.registry),
    )
    metrics = PublisherMetrics(runtime.registry)
    publisher = new_publisher(settings, records, policy, site, metrics, relay.notify)
    follow_share_requests(runtime, settings, ShareRequests(publisher, settings.upload_concurrency))
    runtime.start_relay(relay)
    return policy


def create_app(settings: CommunityPublisherSettings | None = None) -> FastAPI:
    settings = settings or CommunityPublisherSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What the consumer uses is opened first and closed last: a request in flight at
        # shutdown must never meet a closed client or store (it would be dead-lettered).
        records = await to_thread.run_sync(open_upload_records, settings.database_dsn)
        try:
            async with open_community_site(settings) as site:
                broker = new_broker(settings, SERVICE_NAME)
                async with open_runtime(
                    settings, SERVICE_NAME, app.state.registry, app.state.readiness, broker
                ) as runtime:
                    app.state.runtime = runtime
                    async with runtime.creating_tables():
                        policy = await wire(runtime, settings, records, site)
                    app.state.policy = policy
                    try:
                        await broker.start()
                        yield
                    finally:
                        await broker.stop()  # lets in-flight batches finish (graceful_timeout)
                        await policy.close()
        finally:
            await to_thread.run_sync(records.close)

    return new_service_app(SERVICE_NAME, settings, lifespan)
