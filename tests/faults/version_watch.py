"""The read models watched while the stream flows: a version that ever goes back means an event
was applied out of order, or again over a newer one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from share_service.bootstrap import EVENT_STORE_SCHEMA

VERSION_QUERIES = {
    "share view": f'SELECT share_id, version FROM "{EVENT_STORE_SCHEMA}".share_views',
    "chat mirror": f'SELECT chat_id, chat_version FROM "{EVENT_STORE_SCHEMA}".mirrored_chats',
    "share_service policy": 'SELECT 1, policy_version FROM "share_service".policy_view',
    "publisher policy": 'SELECT 1, policy_version FROM "community_publisher".policy_view',
}


class VersionWatch:
    """Reads the read models over and over while the stream flows: a version that ever goes
    back means an event was applied out of order or again over a newer one."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.last: dict[tuple[str, Any], int] = {}
        self.went_back: list[str] = []
        self.rounds = 0

    async def watch(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            for model, query in VERSION_QUERIES.items():
                for key, version in await self.pool.fetch(query):
                    before = self.last.get((model, key), 0)
                    if version < before:
                        self.went_back.append(f"{model} {key}: v{before} then v{version}")
                    self.last[(model, key)] = version
            self.rounds += 1
            await asyncio.sleep(0.1)


@asynccontextmanager
async def watching_versions(pool: asyncpg.Pool) -> AsyncIterator[VersionWatch]:
    watch = VersionWatch(pool)
    stopping = asyncio.Event()
    task = asyncio.create_task(watch.watch(stopping))
    try:
        yield watch
    finally:
        stopping.set()
        await task
