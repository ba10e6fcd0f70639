"""The read benchmark's raw baseline: a bare ASGI app (uvicorn with uvloop and httptools)
answering one ready JSON body, read by primary key from the same PostgreSQL with asyncpg."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.benchmarks.raw_asgi import PooledASGIApp, answer_json

PREFIX = "/api/v1/shares/"


class RawReadApp(PooledASGIApp):
    async def handle(
        self, pool: asyncpg.Pool, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        body = await pool.fetchval(
            "SELECT body FROM raw_views WHERE id = $1", scope["path"][len(PREFIX) :]
        )
        await answer_json(send, 200 if body is not None else 404, bytes(body or b"{}"))


def create_app() -> RawReadApp:
    return RawReadApp()
