"""The command benchmark's raw baseline: a bare ASGI app (uvicorn with uvloop and httptools)
doing one durable INSERT of a snapshot into the same PostgreSQL per request: the JSON in
`BENCH_SNAPSHOT_FILE` (the benchmark writes one of its run's snapshots there), else
`BENCH_SNAPSHOT_BYTES` characters."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from tests.benchmarks.raw_asgi import PooledASGIApp, answer_json

SNAPSHOT = (
    Path(os.environ["BENCH_SNAPSHOT_FILE"]).read_text(encoding="utf-8")
    if "BENCH_SNAPSHOT_FILE" in os.environ
    else "x" * int(os.environ.get("BENCH_SNAPSHOT_BYTES", "5000"))
)


class RawInsertApp(PooledASGIApp):
    startup_sql = "CREATE TABLE IF NOT EXISTS raw_snapshots (id uuid PRIMARY KEY, body text)"

    async def handle(
        self, pool: asyncpg.Pool, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        while (await receive()).get("more_body"):
            pass
        version = await pool.fetchval(
            "INSERT INTO raw_snapshots (id, body) VALUES ($1, $2) RETURNING 1",
            uuid.uuid4(),
            SNAPSHOT,
        )
        await answer_json(send, 200, b'{"version": %d}' % version)


def create_app() -> RawInsertApp:
    return RawInsertApp()
