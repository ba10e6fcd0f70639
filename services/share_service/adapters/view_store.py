"""The share view store (PostgreSQL, asyncpg): one row per link, as the query API answers it.

Each row carries the link version it reflects, and every write is a version-checked upsert: a
repeat or an older redelivery changes nothing. A deleted link leaves a tombstone (deleted, body
cleared) that keeps its version, so an older `SnapshotUpdated` can never bring it back. `body` is
the GET answer ready-made, without `tts_enabled`, which is joined from the policy view at read time.
`created_at` and `updated_at` are the link's own times, from its events: a replay makes the same rows.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import asyncpg

POLL_SECONDS = 0.02


@dataclass(frozen=True)
class StoredView:
    version: int
    body: bytes | None  # None for a tombstone
    tts_enabled: bool


@dataclass(frozen=True)
class LinkRow:
    share_id: str
    chat_id: str
    version: int
    created_at: datetime
    updated_at: datetime


class ShareViewStore:
    def __init__(self, pool: asyncpg.Pool, schema: str, policy_table: str | None = None) -> None:
        self.pool = pool
        self.schema = schema
        self.table = f'"{schema}".share_views'
        # The policy view's one-row table (servicekit.policy), read in the same query as the view.
        tts = f"(SELECT p.tts_enabled FROM {policy_table} p)" if policy_table else "NULL"
        self._read = (
            f"SELECT v.version, v.body, coalesce({tts}, false)"
            f" FROM {self.table} v WHERE v.share_id = $1"
        )

    async def create_table(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " share_id text PRIMARY KEY, chat_id text NOT NULL, owner_id text NOT NULL,"
                " version bigint NOT NULL, deleted boolean NOT NULL, body bytea,"
                " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
                " CHECK ((body IS NULL) = deleted))"
            )
            await connection.execute(
                f"CREATE INDEX IF NOT EXISTS share_views_by_owner ON {self.table}"
                " (owner_id, created_at DESC, share_id DESC) WHERE NOT deleted"
            )

    async def read(self, share_id: str) -> StoredView | None:
        """One primary-key lookup, the policy's flag included: the hot read path."""
        row = await self.pool.fetchrow(self._read, share_id)
        return None if row is None else StoredView(row[0], row[1], row[2])

    async def wait_for_version(
        self, share_id: str, version: int, within: float
    ) -> StoredView | None:
        """The view once it reflects `version` (or is a tombstone), else what it has after
        `within` seconds."""
        deadline = time.monotonic() + within
        while True:
            view = await self.read(share_id)
            if view is not None and (view.body is None or view.version >= version):
                return view
            if time.monotonic() > deadline:
                return view
            await asyncio.sleep(POLL_SECONDS)

    async def lock_created_at(
        self, connection: asyncpg.Connection, share_ids: set[str]
    ) -> dict[str, datetime]:
        """Lock the links' rows for the transaction (in id order: no deadlocks) and give their
        `created_at`, which a `SnapshotUpdated` body needs and does not carry."""
        rows = await connection.fetch(
            f"SELECT share_id, created_at FROM {self.table}"
            " WHERE share_id = ANY($1::text[]) ORDER BY share_id FOR UPDATE",
            sorted(share_ids),
        )
        return {row["share_id"]: row["created_at"] for row in rows}

    async def put_snapshot(
        self, connection: asyncpg.Connection, link: LinkRow, owner_id: str, body: bytes
    ) -> None:
        """A live link at `link.version`, unless the row already reflects that version or later."""
        await connection.execute(
            f"INSERT INTO {self.table} AS v (share_id, chat_id, owner_id, version, deleted, body,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, false, $5, $6, $7)"
            " ON CONFLICT (share_id) DO UPDATE SET chat_id = EXCLUDED.chat_id,"
            " owner_id = EXCLUDED.owner_id, version = EXCLUDED.version, deleted = false,"
            " body = EXCLUDED.body, updated_at = EXCLUDED.updated_at"
            " WHERE v.version < EXCLUDED.version",
            link.share_id, link.chat_id, owner_id, link.version, body,
            link.created_at, link.updated_at,
        )  # fmt: skip

    async def put_tombstone(
        self, link: LinkRow, owner_id: str, connection: asyncpg.Connection | None = None
    ) -> None:
        """The link is dead from `link.version` on. An existing row keeps its times; the given
        ones are used only when there is no row yet. The delete command writes this itself, and
        the projection repeats it harmlessly."""
        await (connection or self.pool).execute(
            f"INSERT INTO {self.table} AS v (share_id, chat_id, owner_id, version, deleted, body,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, true, NULL, $5, $6)"
            " ON CONFLICT (share_id) DO UPDATE SET version = EXCLUDED.version, deleted = true,"
            " body = NULL WHERE v.version < EXCLUDED.version",
            link.share_id, link.chat_id, owner_id, link.version, link.created_at, link.updated_at,
        )  # fmt: skip

    async def links_of_owner(
        self, owner_id: str, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[LinkRow]:
        """The owner's live links, newest first, from just after the `(created_at, share_id)`
        of the previous page's last item."""
        # Two statements rather than one with "$2 IS NULL OR …": each keeps a plan on the index.
        columns = f"SELECT share_id, chat_id, version, created_at, updated_at FROM {self.table}"
        order = "ORDER BY created_at DESC, share_id DESC"
        if after is None:
            rows = await self.pool.fetch(
                f"{columns} WHERE owner_id = $1 AND NOT deleted {order} LIMIT $2", owner_id, limit
            )
        else:
            rows = await self.pool.fetch(
                f"{columns} WHERE owner_id = $1 AND NOT deleted"
                f" AND (created_at, share_id) < ($2, $3) {order} LIMIT $4",
                owner_id, *after, limit,
            )  # fmt: skip
        return [LinkRow(**dict(row)) for row in rows]
