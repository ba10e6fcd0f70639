"""One process at a time creates a database's chatshare tables.

`CREATE … IF NOT EXISTS` is not safe against another session doing the same at the same moment:
PostgreSQL fails one of them (a duplicate key in `pg_type`, "tuple concurrently updated",
"relation already exists"). Replicas of a service, or the parts of a split one
(`CHATSHARE_ROLES`), started together on a fresh database would crash at start; so every process
creates its tables holding one advisory lock of the database (its setup takes milliseconds).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
import psycopg

TABLE_SETUP_LOCK = "chatshare:create-tables"


@asynccontextmanager
async def creating_tables(pool: asyncpg.Pool) -> AsyncIterator[None]:
    async with pool.acquire() as connection:
        await connection.execute("SELECT pg_advisory_lock(hashtext($1))", TABLE_SETUP_LOCK)
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", TABLE_SETUP_LOCK)


@contextmanager
def creating_tables_blocking(connection: psycopg.Connection) -> Iterator[None]:
    """The same lock for eventsourcing's synchronous table creation (an autocommit connection)."""
    connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (TABLE_SETUP_LOCK,))
    try:
        yield
    finally:
        connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", (TABLE_SETUP_LOCK,))
