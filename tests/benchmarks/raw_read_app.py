"""The read benchmark's raw baseline: a bare ASGI app (uvicorn with uvloop and httptools)
answering one ready JSON body, read by primary key from the same PostgreSQL with asyncpg."""

from __future__ import annotations

import os
from typing import Any

import asyncpg

PREFIX = "/api/v1/shares/"


class RawReadApp:
    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.pool is not None
        body = await self.pool.fetchval(
            "SELECT body FROM raw_views WHERE id = $1", scope["path"][len(PREFIX) :]
        )
        status = 200 if body is not None else 404
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": bytes(body or b"{}")})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    os.environ["BENCH_DATABASE_URL"], min_size=4, max_size=16
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app() -> RawReadApp:
    return RawReadApp()
