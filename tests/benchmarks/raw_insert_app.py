"""The command benchmark's raw baseline: a bare ASGI app (uvicorn with uvloop and httptools)
doing one durable INSERT of a snapshot-sized row into the same PostgreSQL per request."""

from __future__ import annotations

import os
import uuid
from typing import Any

import asyncpg

SNAPSHOT = "x" * int(os.environ.get("BENCH_SNAPSHOT_BYTES", "5000"))


class RawInsertApp:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        while (await receive()).get("more_body"):
            pass
        assert self.pool is not None
        version = await self.pool.fetchval(
            "INSERT INTO raw_snapshots (id, body) VALUES ($1, $2) RETURNING 1",
            uuid.uuid4(),
            SNAPSHOT,
        )
        body = b'{"version": %d}' % version
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    os.environ["BENCH_DATABASE_URL"], min_size=4, max_size=16
                )
                await self.pool.execute(
                    "CREATE TABLE IF NOT EXISTS raw_snapshots (id uuid PRIMARY KEY, body text)"
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> RawInsertApp:
    return RawInsertApp()
