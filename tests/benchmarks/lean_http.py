"""A minimal HTTP/1.1 client for benchmarks that need request chains wrk cannot script (a create,
then a read of what it created), run on uvloop.

httpx, the suite's client elsewhere, spent 0.78 of a core driving the freshness benchmark's
100 creates/s — more than the service it measured (0.59), on a two-core machine — and its own
queueing showed up as latency. This client keeps connections alive in a pool and parses only
what the benchmarks read: the status, `Content-Length` and the body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import uvloop

T = TypeVar("T")


class LeanAnswer:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def raise_for_status(self) -> None:
        if not 200 <= self.status_code < 300:
            raise RuntimeError(f"HTTP {self.status_code}: {self.body[:200]!r}")


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> LeanAnswer:
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("lean_http reads Content-Length bodies only")
        return LeanAnswer(status, await self.reader.readexactly(length))


class LeanClient:
    """Keep-alive connections to one server, at most `connections` at a time."""

    def __init__(self, base_url: str, connections: int = 64) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        json_body: Any = None,
    ) -> LeanAnswer:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if json_body is not None:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        async with self._slots, self._connection() as connection:
            return await connection.request(head, body)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        connection = self._idle.pop() if self._idle else None
        if connection is None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            connection = _Connection(reader, writer)
        try:
            yield connection
        except BaseException:
            connection.writer.close()  # mid-answer: not reusable
            raise
        self._idle.append(connection)

    async def close(self) -> None:
        for connection in self._idle:
            connection.writer.close()
        self._idle.clear()


def run_on_uvloop(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a benchmark's client on uvloop, as uvicorn runs the services."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())
