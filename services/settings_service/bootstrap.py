"""Wires settings_service: its settings, the shared runtime (PostgreSQL, Kafka), its event store
and its routes.

The only place adapters are built; `create_app` is the uvicorn factory and tests call it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from servicekit.event_store import eventsourcing_env
from servicekit.outbox import EventsourcingLog, OutboxRelay, RelayConfig, RelayMetrics
from servicekit.runtime import new_broker, new_service_app, open_runtime
from settings_service.adapters.settings_events import to_outbox_message
from settings_service.application.settings_app import SettingsApplication
from settings_service.config import SettingsServiceSettings
from settings_service.entrypoints.http import install_settings_error_handlers, router

SERVICE_NAME = "settings_service"
EVENT_STORE_SCHEMA = "settings_service"


def open_settings_application(database_url: str) -> SettingsApplication:
    """Blocking (connects, creates the schema and tables): call it from a worker thread."""
    return SettingsApplication(env=eventsourcing_env(database_url, EVENT_STORE_SCHEMA))


def create_app(settings: SettingsServiceSettings | None = None) -> FastAPI:
    settings = settings or SettingsServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = new_broker(settings, SERVICE_NAME)
        async with open_runtime(
            settings, SERVICE_NAME, app.state.registry, app.state.readiness, broker
        ) as runtime:
            app.state.runtime = runtime
            settings_app = await to_thread.run_sync(
                open_settings_application, settings.database_dsn
            )
            app.state.settings_app = settings_app
            relay = OutboxRelay(
                RelayConfig(name=SERVICE_NAME, schema=EVENT_STORE_SCHEMA),
                EventsourcingLog(settings_app, to_outbox_message),
                runtime.pool,
                settings,
                RelayMetrics(app.state.registry),
            )
            runtime.start_relay(relay)
            try:
                await broker.start()
                yield
            finally:
                await to_thread.run_sync(settings_app.close)

    app = new_service_app(SERVICE_NAME, settings, lifespan)
    install_settings_error_handlers(app)
    app.include_router(router)
    return app
