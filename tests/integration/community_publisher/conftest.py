"""community_publisher on the real broker and database, uploading to a real community-site
stand-in served by uvicorn on a free port of this test process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from community_publisher.bootstrap import create_app
from community_publisher.config import CommunityPublisherSettings
from community_standin.app import create_app as create_standin
from community_standin.config import StandinSettings
from devstack.ports import free_port

INSTANCE_ID = "instance-under-test"


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the test's event loop; the test runner keeps its own signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class CommunitySite:
    """The stand-in, driven and read over its HTTP API as INTERFACE.md §6 describes it."""

    url: str
    client: httpx.AsyncClient

    async def control(self, **settings: int) -> None:
        (await self.client.post("/_control", json=settings)).raise_for_status()

    async def counters(self) -> dict[str, int]:
        state = (await self.client.get("/_control")).json()
        return {"attempts": state["attempts"], "accepted": state["accepted"]}

    async def uploads(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await self.client.get("/api/v1/chats")).json()["items"]
        return items

    async def upload_of(self, request_id: str) -> dict[str, Any]:
        (found,) = [
            u for u in await self.uploads() if u["headers"]["idempotency-key"] == request_id
        ]
        return found

    async def wait_for(self, counter: str, at_least: int, within: float = 30.0) -> None:
        async with asyncio.timeout(within):
            while (await self.counters())[counter] < at_least:
                await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def serve_standin(token: str = "") -> AsyncIterator[CommunitySite]:
    port = free_port()
    app = create_standin(StandinSettings(community_token=token))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = EmbeddedServer(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield CommunitySite(url, client)
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def site() -> AsyncIterator[CommunitySite]:
    async with serve_standin() as standin:
        yield standin


def publisher_settings(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, community_url: str, **overrides: Any
) -> CommunityPublisherSettings:
    options: dict[str, Any] = {
        "database_url": database_url, "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": topic_prefix, "community_url": community_url,
        "instance_id": INSTANCE_ID, "kafka_session_timeout_ms": 6000,
        "upload_backoff_seconds": 0.05, "upload_max_backoff_seconds": 0.2,
        "upload_max_attempts": 3, "upload_timeout_seconds": 5.0, "policy_wait_seconds": 2.0,
    }  # fmt: skip
    return CommunityPublisherSettings(**{**options, **overrides})


@pytest.fixture
def settings(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, site: CommunitySite
) -> CommunityPublisherSettings:
    return publisher_settings(database_url, kafka_bootstrap, topic_prefix, site.url)


@contextlib.asynccontextmanager
async def running_publisher(settings: CommunityPublisherSettings) -> AsyncIterator[FastAPI]:
    """The service as uvicorn runs it: its lifespan (consumers, policy view, relay)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app
