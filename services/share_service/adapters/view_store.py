"""The share view store (PostgreSQL, asyncpg): one row per link, as the query API answers it.

Each row carries the link version it reflects, and every write is a version-checked upsert: a
repeat or an older redelivery changes nothing. A deleted link leaves a tombstone (deleted, body
cleared) that keeps its version, so an older `SnapshotUpdated` can never bring it back. `body` is
the GET answer ready-made, without `tts_enabled`, which is joined from the policy view at read time.
`created_at` and `updated_at` are the link's own times, from its events: a replay makes the same rows.
The table name is `share_views`; the operator's replay builds a shadow under another name and
swaps it in (`chatshare replay share-views`).

Readers waiting for a version (`?min_version=`) are woken by a PostgreSQL NOTIFY that the writing
transaction sends (delivered at its commit, so never before the row is readable), whichever
process or replica wrote, naming the links it changed, so only their readers read again. While
the listening connection is down, waiting readers poll every `POLL_SECONDS`; while it is up, only
every `LISTENING_POLL_SECONDS`, a safety net (a 20 ms poll under a working listener was most of
the API's reads at 100 creates/s, each reader reading its row four or five times before its
version came).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from servicekit.held_connections import RowReader
from share_service.application.view_writes import ViewWrite

POLL_SECONDS = 0.02
LISTENING_POLL_SECONDS = 0.5
LISTEN_RETRY_SECONDS = 1.0
# PostgreSQL refuses NOTIFY payloads of 8,000 bytes and more. A payload is cut where the running
# length of the ids crosses a multiple of this, so it can exceed it by one id (≤ MAX_ID_LENGTH).
NOTIFY_CUT_BYTES = 7_600
LIVE_TABLE = "share_views"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Statement:
    """A data-modifying statement to run in the same transaction as the views' writes, inside
    their statement: no round trip of its own. Parameters numbered from $1."""

    sql: str
    args: Sequence[object]


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
        reads: RowReader | None = None,
    ) -> None:
        """`table` is another name only for the replay's shadow (`chatshare replay share-views`);
        `reads`, connections held for the hot read (else the pool serves it)."""
        self.pool = pool
        self._reads: RowReader = reads or pool
        self.schema = schema
        self.name = table
        self.table = f'"{schema}"."{table}"'
        self.channel = f"{schema}.{table}.changed"
        self._changed: dict[str, asyncio.Event] = {}  # per link, for the readers waiting on it
        self._waiting: Counter[str] = Counter()
        self._listening = False  # notifications are being heard (see `listen`)
        # The policy view's one-row table (servicekit.policy), read in the same query as the view.
        tts = f"(SELECT p.tts_enabled FROM {policy_table} p)" if policy_table else "NULL"
        self._read = (
            f"SELECT v.version, v.body, coalesce({tts}, false)"
            f" FROM {self.table} v WHERE v.share_id = $1"
        )
        self._put = self._upsert()
        self._put_along: dict[str, str] = {}  # per statement run along
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
        row = await self._reads.fetchrow(self._read, share_id)
        return None if row is None else StoredView(row[0], row[1], row[2])

    async def wait_for_version(
        self, share_id: str, version: int, within: float
    ) -> StoredView | None:
        """The view once it reflects `version` (or is a tombstone), else what it has after
        `within` seconds."""
        deadline = time.monotonic() + within
        self._waiting[share_id] += 1
        try:
            while True:
                changed = self._changed_event(share_id)  # before reading: no wakeup goes unseen
                view = await self.read(share_id)
                if view is not None and (view.body is None or view.version >= version):
                    return view
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return view
                poll = LISTENING_POLL_SECONDS if self._listening else POLL_SECONDS
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(poll, remaining))
        finally:
            self._waiting[share_id] -= 1
            if not self._waiting[share_id]:
                del self._waiting[share_id]
                self._changed.pop(share_id, None)

    @property
    def listening(self) -> bool:
        """Whether notifications reach this store's waiting readers now."""
        return self._listening

    async def listen(self, dsn: str) -> None:
        """Wake this process's waiting readers whenever any writer's transaction that changed
        rows commits. Runs until cancelled; reconnects after a lost connection."""
        while True:
            try:
                connection = await asyncpg.connect(dsn, timeout=10)
            except (OSError, asyncpg.PostgresError) as error:
                log.warning("cannot listen for view changes (polling meanwhile): %s", error)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            lost = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _, done=lost: done.set())
                await connection.add_listener(self.channel, self._on_notification)
                self._listening = True
                self._wake(None)  # changes made while no one listened
                await lost.wait()
                log.warning("lost the connection listening for view changes; reconnecting")
            finally:
                self._listening = False
                self._wake(None)  # the waiting readers poll until the listener is back
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)

    def _changed_event(self, share_id: str) -> asyncio.Event:
        event = self._changed.get(share_id)
        if event is None:
            event = self._changed[share_id] = asyncio.Event()
        return event

    def _on_notification(self, _: object, __: int, ___: str, payload: str) -> None:
        self._wake(payload.split(",") if payload else None)

    def _wake(self, share_ids: Iterable[str] | None) -> None:
        """Wake the readers waiting on these links (None: on every link). Each reader reads its
        row again: a write to one link does not make every waiting reader read."""
        if share_ids is None:
            woken, self._changed = list(self._changed.values()), {}
        else:
            woken = [event for i in share_ids if (event := self._changed.pop(i, None))]
        for event in woken:
            event.set()

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
        self,
        connection: asyncpg.Connection,
        writes: Sequence[ViewWrite],
        along: Statement | None = None,
    ) -> dict[str, datetime]:
        """Apply the writes in order, each only over an older row: a repeat or an older
        redelivery changes nothing, and wake the readers waiting on the links that changed.
        Answers those links, each with its row's `created_at`. One statement per round (a round
        holds each link once), the notification inside it; `along` — the projection's progress
        — runs inside the last. Each link written once: one statement, one round trip, no
        transaction around it."""
        rounds = _rounds(writes)
        if not rounds:
            if along is not None:
                await connection.execute(along.sql, *along.args)
            return {}
        if len(rounds) == 1:
            return await self._put_round(connection, rounds[0], along)
        changed: dict[str, datetime] = {}
        async with connection.transaction():
            for index, round_ in enumerate(rounds, start=1):
                last = index == len(rounds)
                changed.update(await self._put_round(connection, round_, along if last else None))
        return changed

    async def _put_round(
        self, connection: asyncpg.Connection, writes: list[ViewWrite], along: Statement | None
    ) -> dict[str, datetime]:
        # The NOTIFY is delivered when the transaction commits: waiting readers find the rows.
        args: list[object] = [*_columns(writes), self.channel]
        query = self._put
        if along is not None:
            if along.sql not in self._put_along:
                self._put_along[along.sql] = _with_along(self._put, along.sql, len(args))
            query = self._put_along[along.sql]
            args.extend(along.args)
        rows = await connection.fetch(query, *args)
        return {row[0]: row[1] for row in rows}

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
        # created_at. Arrays in, one row per link: a whole batch is one round trip, its NOTIFY
        # included — the changed links' ids, comma-separated (share ids are URL-safe: never a
        # comma), cut into payloads under PostgreSQL's 8,000-byte limit by their running length.
        keep_if_deleted = ", ".join(
            f"{column} = CASE WHEN EXCLUDED.deleted THEN v.{column} ELSE EXCLUDED.{column} END"
            for column in ("chat_id", "owner_id", "updated_at")
        )
        return (
            f"WITH changed AS (INSERT INTO {self.table} AS v (share_id, chat_id, owner_id,"
            " version, deleted, body, created_at, updated_at) SELECT w.share_id, w.chat_id,"
            " w.owner_id, w.version, w.body IS NULL, w.body, w.created_at, w.updated_at"
            " FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bytea[],"
            " $6::timestamptz[], $7::timestamptz[]) AS w(share_id, chat_id, owner_id, version,"
            " body, created_at, updated_at) ON CONFLICT (share_id) DO UPDATE SET"
            f" version = EXCLUDED.version, deleted = EXCLUDED.deleted, body = EXCLUDED.body,"
            f" {keep_if_deleted} WHERE v.version < EXCLUDED.version RETURNING v.share_id, v.created_at),"
            " notified AS (SELECT pg_notify($8, string_agg(share_id, ',' ORDER BY share_id))"
            " FROM (SELECT share_id, (sum(length(share_id) + 1) OVER (ORDER BY share_id) - 1)"
            f" / {NOTIFY_CUT_BYTES} AS part FROM changed) AS c GROUP BY part)"
            " SELECT share_id, created_at FROM changed WHERE (SELECT count(*) FROM notified) >= 0"
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


def _with_along(upsert: str, along: str, before: int) -> str:
    """The upsert with another data-modifying statement in front, as a CTE (PostgreSQL runs
    every data-modifying CTE, in the statement's one snapshot and transaction); `along`'s
    parameters, numbered from $1, are renumbered to follow the upsert's `before`."""
    renumbered = re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + before}", along)
    return f"WITH along AS ({renumbered}), " + upsert.removeprefix("WITH ")


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
