"""Wires community_publisher: its settings, the shared runtime (PostgreSQL, Kafka) and its routes.

The only place adapters are built; `create_app` is the uvicorn factory and tests call it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from community_publisher.config import CommunityPublisherSettings
from contracts.topics import COMMUNITY_PUBLISHER_POLICY_GROUP
from servicekit.policy import follow_policy
from servicekit.runtime import new_broker, new_service_app, open_runtime

SERVICE_NAME = "community_publisher"
EVENT_STORE_SCHEMA = "community_publisher"


def create_app(settings: CommunityPublisherSettings | None = None) -> FastAPI:
    settings = settings or CommunityPublisherSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = new_broker(settings, SERVICE_NAME)
        async with open_runtime(
            settings, SERVICE_NAME, app.state.registry, app.state.readiness, broker
        ) as runtime:
            app.state.runtime = runtime
            app.state.policy = await follow_policy(
                runtime, COMMUNITY_PUBLISHER_POLICY_GROUP, EVENT_STORE_SCHEMA
            )
            try:
                await broker.start()
                yield
            finally:
                await app.state.policy.close()

    return new_service_app("chatshare community_publisher", settings, lifespan)
