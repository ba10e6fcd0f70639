"""The share view store (PostgreSQL, asyncpg): one row per link, as the query API answers it.

Each row carries the link version it reflects, and every write is a version-checked upsert: a
repeat or an older redelivery changes nothing. A deleted link leaves a tombstone (deleted, body
cleared) that keeps its version, so an older `SnapshotUpdated` can never bring it back. `body` is
the GET answer ready-made, without `tts_enabled`, which is joined from the policy view at read time.
`created_at` and `updated_at` are the link's own times, from its events: a replay makes the same rows.
The table name is `share_views`; the operator's replay builds a shadow under another name and
swaps it in (`chatshare replay share-views`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from share_service.application.view_writes import ViewWrite

POLL_SECONDS = 0.02
LIVE_TABLE = "share_views"


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
    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        policy_table: str | None = None,
        table: str = LIVE_TABLE,
    ) -> None:
        """`table` is another name only for the replay's shadow (`chatshare replay share-views`)."""
        self.pool = pool
        self.schema = schema
        self.name = table
        self.table = f'"{schema}"."{table}"'
        # The policy view's one-row table (servicekit.policy), read in the same query as the view.
        tts = f"(SELECT p.tts_enabled FROM {policy_table} p)" if policy_table else "NULL"
        self._read = (
            f"SELECT v.version, v.body, coalesce({tts}, false)"
            f" FROM {self.table} v WHERE v.share_id = $1"
        )
        self._put = self._upsert()
        self._tombstone = (
            f"INSERT INTO {self.table} AS v (share_id, chat_id, owner_id, version, deleted, body,"
            " created_at, updated_at) VALUES ($1, $2, $3, $4, true, NULL, $5, $6)"
            " ON CONFLICT (share_id) DO UPDATE SET version = EXCLUDED.version, deleted = true,"
            " body = NULL, chat_id = EXCLUDED.chat_id, owner_id = EXCLUDED.owner_id,"
            " updated_at = EXCLUDED.updated_at WHERE v.version < EXCLUDED.version"
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
                f'CREATE INDEX IF NOT EXISTS "{self.name}_by_owner" ON {self.table}'
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

    async def put_views(
        self, connection: asyncpg.Connection, writes: Sequence[ViewWrite]
    ) -> set[str]:
        """Apply the writes in order, each only over an older row: a repeat or an older
        redelivery changes nothing. Answers the links whose rows changed. One statement per
        round; a round holds each link once."""
        rounds = _rounds(writes)
        if not rounds:
            return set()
        if len(rounds) == 1:  # each link written once: no transaction round trips
            return await self._put_round(connection, rounds[0])
        changed: set[str] = set()
        async with connection.transaction():
            for round_ in rounds:
                changed |= await self._put_round(connection, round_)
        return changed

    async def _put_round(self, connection: asyncpg.Connection, writes: list[ViewWrite]) -> set[str]:
        rows = await connection.fetch(self._put, *_columns(writes))
        return {row[0] for row in rows}

    async def put_tombstone(
        self, link: LinkRow, owner_id: str, connection: asyncpg.Connection | None = None
    ) -> None:
        """The delete command's own write: the link is dead from `link.version` on. The command
        knows the link whole, so the row takes the link's times as of its last snapshot — the
        row the projection and a replay leave from the events (a tombstone keeps the snapshot
        before it) — whichever older version of the row the projection had reached. The
        projection repeats it harmlessly."""
        values = (
            link.share_id, link.chat_id, owner_id, link.version, link.created_at, link.updated_at
        )  # fmt: skip
        if connection is not None:
            await connection.execute(self._tombstone, *values)
            return
        await self.pool.execute(self._tombstone, *values)

    def _upsert(self) -> str:
        # A tombstone (body NULL) keeps the row's chat, owner and times; a snapshot sets all but
        # created_at. Arrays in, one row per link: a whole batch is one round trip.
        keep_if_deleted = ", ".join(
            f"{column} = CASE WHEN EXCLUDED.deleted THEN v.{column} ELSE EXCLUDED.{column} END"
            for column in ("chat_id", "owner_id", "updated_at")
        )
        return (
            f"INSERT INTO {self.table} AS v (share_id, chat_id, owner_id, version, deleted, body,"
            " created_at, updated_at) SELECT w.share_id, w.chat_id, w.owner_id, w.version,"
            " w.body IS NULL, w.body, w.created_at, w.updated_at FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::bigint[], $5::bytea[], $6::timestamptz[],"
            " $7::timestamptz[]) AS w(share_id, chat_id, owner_id, version, body, created_at,"
            " updated_at) ON CONFLICT (share_id) DO UPDATE SET version = EXCLUDED.version,"
            f" deleted = EXCLUDED.deleted, body = EXCLUDED.body, {keep_if_deleted}"
            " WHERE v.version < EXCLUDED.version RETURNING v.share_id"
        )

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


def _rounds(writes: Sequence[ViewWrite]) -> list[list[ViewWrite]]:
    """The writes split so that no round touches a link twice (one statement cannot), each
    link's writes in their order; in share_id order within a round, as rows are locked."""
    rounds: list[list[ViewWrite]] = []
    seen: dict[str, int] = {}
    for write in writes:
        index = seen[write.share_id] = seen.get(write.share_id, -1) + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(write)
    return [sorted(round_, key=lambda write: write.share_id) for round_ in rounds]


def _columns(writes: list[ViewWrite]) -> list[list[object]]:
    """The writes as one array per column, in the order of the upsert's parameters."""
    return [[getattr(write, field.name) for write in writes] for field in fields(ViewWrite)]
