"""What the raw baseline apps share: an asyncpg pool opened and closed by the ASGI lifespan."""

from __future__ import annotations

import os
from typing import Any

import asyncpg


class PooledASGIApp:
    """A bare ASGI app with a pool; subclasses answer `http` scopes in `handle`."""

    startup_sql: str | None = None

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self.pool is not None
        await self.handle(self.pool, scope, receive, send)

    async def handle(
        self, pool: asyncpg.Pool, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        raise NotImplementedError

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    os.environ["BENCH_DATABASE_URL"], min_size=4, max_size=16
                )
                if self.startup_sql:
                    await self.pool.execute(self.startup_sql)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def answer_json(send: Any, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})
