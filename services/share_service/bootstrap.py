"""Wires share_service: its settings, the shared runtime (PostgreSQL, Kafka) and its routes.

The only place adapters are built; `create_app` is the uvicorn factory and tests call it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from contracts.topics import SHARE_SERVICE_POLICY_GROUP
from servicekit.policy import follow_policy
from servicekit.runtime import new_broker, new_service_app, open_runtime
from share_service.config import ShareServiceSettings

SERVICE_NAME = "share_service"
EVENT_STORE_SCHEMA = "share_service"


def create_app(settings: ShareServiceSettings | None = None) -> FastAPI:
    settings = settings or ShareServiceSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = new_broker(settings, SERVICE_NAME)
        async with open_runtime(
            settings, SERVICE_NAME, app.state.registry, app.state.readiness, broker
        ) as runtime:
            app.state.runtime = runtime
            app.state.policy = await follow_policy(
                runtime, SHARE_SERVICE_POLICY_GROUP, EVENT_STORE_SCHEMA
            )
            try:
                await broker.start()
                yield
            finally:
                await app.state.policy.close()

    return new_service_app("chatshare share_service", settings, lifespan)
