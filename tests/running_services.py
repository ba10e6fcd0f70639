"""Services that several tests share: a database and a set of topics of their own (the session's
`database_url` and `topic_prefix` fixtures give one per test), and settings_service on its
lifespan with an HTTP client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from devstack import postgres
from devstack.topics import ensure_topics
from settings_service.bootstrap import create_app as create_settings_app
from settings_service.config import SettingsServiceSettings
from tests.conftest import TEST_MAX_SNAPSHOT_BYTES


def new_database(node: postgres.PostgresNode) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    postgres.ensure_database(node, name)
    return f"postgresql://postgres:postgres@127.0.0.1:{node.port}/{name}"


async def new_topic_prefix(bootstrap: str) -> str:
    """A set of chatshare topics of its own, sized as the session's broker is."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(bootstrap, TEST_MAX_SNAPSHOT_BYTES, prefix)
    return prefix


@dataclass
class SettingsService:
    client: httpx.AsyncClient
    settings: SettingsServiceSettings
    app: FastAPI


@asynccontextmanager
async def running_settings_service(
    settings: SettingsServiceSettings,
) -> AsyncIterator[SettingsService]:
    app = create_settings_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://settings") as client:
            yield SettingsService(client, settings, app)
