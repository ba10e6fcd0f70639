"""The replay's shadow of the share view store: a table made like the live one, compared with
it row by row, and swapped in by one short transaction while reads go on.

The swap locks the live table, lets the caller apply the event store's last events to the shadow,
renames live → replaced and shadow → live, drops the replaced table and gives the new table's
indexes the live names (so the service's `CREATE INDEX IF NOT EXISTS` finds them). A read of
the live name waits for that transaction (milliseconds), then reads the new table.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from chatshare_cli.errors import SwapRefused
from share_service.adapters.view_store import LIVE_TABLE, ShareViewStore

SHADOW_TABLE = f"{LIVE_TABLE}_shadow"
REPLACED_TABLE = f"{LIVE_TABLE}_replaced"
COMPARED = ("chat_id", "owner_id", "version", "deleted", "body", "created_at", "updated_at")
LOCK_TIMEOUT_MS = 500  # a projection batch holding the rows: wait a little, then try again
SWAP_ATTEMPTS = 20

CatchUp = Callable[[asyncpg.Connection], Awaitable[None]]


@dataclass(frozen=True)
class Difference:
    share_id: str
    columns: list[str]  # what differs, or `only in live` / `only rebuilt`
    live_version: int | None
    rebuilt_version: int | None


class ShadowViews:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.live = ShareViewStore(pool, schema)
        self.shadow = ShareViewStore(pool, schema, table=SHADOW_TABLE)

    async def create(self) -> None:
        """A fresh, empty shadow with the live table's columns, constraints and indexes."""
        await self.live.create_table()  # a store the service never wrote yet
        async with self.pool.acquire() as connection:
            await connection.execute(f"DROP TABLE IF EXISTS {self.shadow.table}")
            await connection.execute(
                f"CREATE TABLE {self.shadow.table} (LIKE {self.live.table} INCLUDING ALL)"
            )

    async def drop(self) -> None:
        await self.pool.execute(f"DROP TABLE IF EXISTS {self.shadow.table}")

    async def analyze(self) -> None:
        """Planner statistics before the swap: the first reads of the new table plan well."""
        await self.pool.execute(f"ANALYZE {self.shadow.table}")

    async def rows(self, store: ShareViewStore) -> int:
        return int(await self.pool.fetchval(f"SELECT count(*) FROM {store.table}"))

    async def compare(self, show: int) -> tuple[int, list[Difference]]:
        """How many rows differ between live and shadow (a row on one side only included), and
        the first `show` of them by share_id."""
        differs = " OR ".join(f"l.{c} IS DISTINCT FROM s.{c}" for c in COMPARED)
        which = ", ".join(
            f"CASE WHEN l.{c} IS DISTINCT FROM s.{c} THEN '{c}' END" for c in COMPARED
        )
        rows = await self.pool.fetch(
            "SELECT count(*) OVER () AS total, coalesce(l.share_id, s.share_id) AS share_id,"
            " l.version AS live_version, s.version AS rebuilt_version,"
            " CASE WHEN s.share_id IS NULL THEN ARRAY['only in live']"
            " WHEN l.share_id IS NULL THEN ARRAY['only rebuilt']"
            f" ELSE array_remove(ARRAY[{which}], NULL) END AS columns"
            f" FROM {self.live.table} l FULL JOIN {self.shadow.table} s USING (share_id)"
            f" WHERE l.share_id IS NULL OR s.share_id IS NULL OR {differs}"
            " ORDER BY 2 LIMIT $1",
            max(show, 1),
        )
        total = int(rows[0]["total"]) if rows else 0
        shown = [
            Difference(row["share_id"], list(row["columns"]), row["live_version"],
                       row["rebuilt_version"])
            for row in rows[:show]
        ]  # fmt: skip
        return total, shown

    async def swap(self, catch_up: CatchUp) -> None:
        """Make the shadow the live table in one transaction; `catch_up` runs first, inside it,
        with the live table locked, so nothing the event store holds is missing."""
        async with self.pool.acquire() as connection:
            for attempt in range(SWAP_ATTEMPTS):
                try:
                    async with connection.transaction():
                        await connection.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                        await connection.execute(
                            f"LOCK TABLE {self.live.table} IN ACCESS EXCLUSIVE MODE"
                        )
                        await catch_up(connection)
                        await self._rename(connection)
                    return
                except asyncpg.LockNotAvailableError:
                    await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise SwapRefused(
            f"{self.live.table} stayed locked through {SWAP_ATTEMPTS} attempts; the shadow "
            "was not swapped in (run the replay again)"
        )

    async def _rename(self, connection: asyncpg.Connection) -> None:
        live_names = await _index_names(connection, self.live.table)
        schema = f'"{self.schema}"'
        await connection.execute(f'ALTER TABLE {self.live.table} RENAME TO "{REPLACED_TABLE}"')
        await connection.execute(f'ALTER TABLE {self.shadow.table} RENAME TO "{LIVE_TABLE}"')
        await connection.execute(f'DROP TABLE {schema}."{REPLACED_TABLE}"')
        for definition, name in (await _index_names(connection, self.live.table)).items():
            wanted = live_names.get(definition)
            if wanted is not None and wanted != name:
                await connection.execute(f'ALTER INDEX {schema}."{name}" RENAME TO "{wanted}"')


async def _index_names(connection: asyncpg.Connection, table: str) -> dict[str, str]:
    """The table's indexes by their definition without names: which index is which."""
    rows = await connection.fetch(
        "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass",
        table,
    )
    return {_unnamed(row[1]): row[0] for row in rows}


def _unnamed(definition: str) -> str:
    return re.sub(r"INDEX \S+ ON (ONLY )?\S+ ", "INDEX ON ", definition, count=1)
