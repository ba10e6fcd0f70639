"""A few PostgreSQL connections held for the hottest single-statement reads.

asyncpg's pool is general: every `pool.fetchrow` goes through an acquire with its timeout and
shield, a connection proxy, a release with its reset hook and idle-timer bookkeeping — measured
here at 138 µs of CPU per primary-key read against 66 µs for the same read on a connection held
in hand, and ~10 % of the API's CPU on the hot read path. `HeldConnections` keeps only what such
a read needs: idle connections on a stack, readers waiting in line when all are busy, and a
connection that failed closed rather than reused.

It suits statements that run alone in autocommit (no transaction, no session state). A read
whose connection failed under it closes that connection, and the next read that needs one opens
a new one: an outage costs the reads it catches an error each (`servicekit.faults` makes them
503s) and nothing after it ends. A read cancelled midway keeps its connection: asyncpg cancels
the statement on the server, and the connection's next statement waits for that.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class RowReader(Protocol):
    """What a store's hot read needs: `HeldConnections`, or an asyncpg pool where none is held."""

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetch(self, query: str, *args: Any) -> Any: ...


class HeldConnections:
    def __init__(self, connect: Connect, size: int) -> None:
        if size < 1:
            raise ValueError("HeldConnections needs at least one connection")
        self._connect = connect
        self._size = size
        self._opened = 0  # idle, in use, or being opened
        self._idle: list[asyncpg.Connection] = []
        self._waiting: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    @classmethod
    def to(cls, dsn: str, size: int, timeout: float = 10) -> HeldConnections:
        return cls(lambda: asyncpg.connect(dsn, timeout=timeout), size)

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self._read(asyncpg.Connection.fetchrow, query, args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._read(asyncpg.Connection.fetch, query, args)
        return rows

    async def _read(self, method: Callable[..., Awaitable[Any]], query: str, args: Any) -> Any:
        connection = self._idle.pop() if self._idle else await self._take()
        try:
            result = await method(connection, query, *args)
        except asyncio.CancelledError:
            # asyncpg asks the server to cancel the statement, and the connection's next
            # statement waits for that (as the pool's release does).
            self._give_back(connection)
            raise
        except BaseException:
            # Whatever failed — the connection, or the server ending the session (a statement
            # refused is rare here) — a new connection is the safe next step.
            self._discard(connection)
            raise
        self._give_back(connection)
        return result

    async def close(self) -> None:
        """Close the idle connections; one in use closes when its read ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._opened -= 1
            await connection.close(timeout=2)
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("these connections are closed"))

    @property
    def opened(self) -> int:
        return self._opened

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise ConnectionError("these connections are closed")
        while True:
            if self._idle:
                return self._idle.pop()
            if self._opened < self._size:
                self._opened += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._opened -= 1
                    self._pass_turn()
                    raise
            waiter: asyncio.Future[asyncpg.Connection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiting.append(waiter)
            try:
                connection = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._give_back(waiter.result())  # handed over as we were cancelled
                raise
            if connection is not None:
                return connection
            # None: a connection was discarded, so there is room to open one; try again.

    def _give_back(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._discard(connection)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self._idle.append(connection)

    def _discard(self, connection: asyncpg.Connection) -> None:
        self._opened -= 1
        connection.terminate()
        self._pass_turn()

    def _pass_turn(self) -> None:
        """Room to open a connection: the first reader in line may take it."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
