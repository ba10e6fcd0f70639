"""Wires share_service: its settings, the shared runtime (PostgreSQL, Kafka), its event store,
the chat mirror, the policy view, the outbox relay, the share projection and its routes.

The only place adapters are built; `create_app` is the uvicorn factory and tests call it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from contracts.topics import SHARE_SERVICE_POLICY_GROUP
from servicekit.event_store import eventsourcing_env
from servicekit.outbox import EventsourcingLog, OutboxRelay, RelayConfig, RelayMetrics
from servicekit.policy import follow_policy
from servicekit.runtime import ServiceRuntime, new_broker, new_service_app, open_runtime
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.projection_progress import ProjectionProgress
from share_service.adapters.share_events import to_outbox_message
from share_service.adapters.view_store import ShareViewStore
from share_service.application.group_commit import GroupCommitter, chat_key
from share_service.application.sharing import SharingApplication
from share_service.config import ShareServiceSettings
from share_service.entrypoints.chat_mirror import ChatMirror, follow_chats
from share_service.entrypoints.hot_read import HotShareReads
from share_service.entrypoints.hot_share import HotShareCommands
from share_service.entrypoints.http_commands import router as command_routes
from share_service.entrypoints.http_errors import install_share_error_handlers
from share_service.entrypoints.http_queries import router as query_routes
from share_service.entrypoints.share_projection import follow_share_events
from share_service.entrypoints.shared_page import router as shared_page_routes
from share_service.entrypoints.wiring import Wiring

SERVICE_NAME = "share_service"
EVENT_STORE_SCHEMA = "share_service"


def open_sharing_application(settings: ShareServiceSettings) -> SharingApplication:
    """Blocking (connects, creates the schema and tables): call it from a worker thread."""
    return SharingApplication(
        env=eventsourcing_env(settings.database_dsn, EVENT_STORE_SCHEMA),
        max_snapshot_bytes=settings.max_snapshot_bytes,
    )


async def wire(
    runtime: ServiceRuntime, settings: ShareServiceSettings, sharing: SharingApplication
) -> Wiring:
    """Everything the routes and consumers use; call before `broker.start()`."""
    chats = ChatMirrorStore(runtime.pool, EVENT_STORE_SCHEMA, reads=runtime.reads)
    await chats.create_table()
    relay = OutboxRelay(
        RelayConfig(name=SERVICE_NAME, schema=EVENT_STORE_SCHEMA),
        EventsourcingLog.of_stored_events(sharing, to_outbox_message),
        runtime.pool,
        settings,
        RelayMetrics(runtime.registry),
    )
    policy = await follow_policy(runtime, SHARE_SERVICE_POLICY_GROUP, EVENT_STORE_SCHEMA)
    views = ShareViewStore(
        runtime.pool, EVENT_STORE_SCHEMA, policy_table=policy.table, reads=runtime.reads
    )
    progress = ProjectionProgress(runtime.pool, EVENT_STORE_SCHEMA)
    requests = CommunityRequestStore(runtime.pool, EVENT_STORE_SCHEMA)
    await views.create_table()
    if settings.runs("http"):  # wakes readers waiting for a version; workers have none
        runtime.run_in_background(
            "view-change listener", lambda: views.listen(settings.database_dsn)
        )
    await progress.create_table()
    await requests.create_table()
    wiring = Wiring(
        settings=settings,
        sharing=sharing,
        committer=GroupCommitter(sharing),
        chats=chats,
        policy=policy,
        relay=relay,
        views=views,
        community_requests=requests,
    )

    async def links_die_with_chat(chat_id: str) -> None:
        deleted = await wiring.committer.run(
            lambda: sharing.decide_delete_chat(chat_id), chat_key(chat_id)
        )
        await wiring.after_links_died(deleted)

    follow_chats(runtime, ChatMirror(chats, links_die_with_chat, runtime.registry))
    follow_share_events(runtime, views, progress, requests)
    runtime.start_relay(relay)
    return wiring


def create_app(settings: ShareServiceSettings | None = None) -> FastAPI:
    settings = settings or ShareServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = new_broker(settings, SERVICE_NAME)
        async with open_runtime(
            settings, SERVICE_NAME, app.state.registry, app.state.readiness, broker
        ) as runtime:
            app.state.runtime = runtime
            sharing = await to_thread.run_sync(open_sharing_application, settings)
            async with runtime.creating_tables():
                wiring = app.state.wiring = await wire(runtime, settings, sharing)
            try:
                await broker.start()
                yield
            finally:
                await wiring.committer.drain()
                await wiring.policy.close()
                await to_thread.run_sync(sharing.close)

    app = new_service_app(SERVICE_NAME, settings, lifespan)
    install_share_error_handlers(app)
    app.include_router(command_routes)
    app.include_router(query_routes)
    app.include_router(shared_page_routes)
    # Inside the shared edge (metrics and correlation ids still see the lean paths), in front of
    # FastAPI's middleware stack (servicekit.runtime.EdgeFirstApp).
    app.add_edge(HotShareReads)
    app.add_edge(HotShareCommands)
    return app
