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
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

import asyncpg

from share_service.application.view_writes import ViewWrite

POLL_SECONDS = 0.02
LISTENING_POLL_SECONDS = 0.5
LISTEN_RETRY_SECONDS = 1.0
NOTIFY_PAYLOAD_BYTES = 7_900  # PostgreSQL refuses payloads of 8,000 bytes and more
LIVE_TABLE = "share_views"

log = logging.getLogger(__name__)


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
        changed = {row[0] for row in rows}
        if changed:  # delivered when the transaction commits: waiting readers then find the rows
            await connection.execute(
                "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                self.channel,
                _notification_payloads(sorted(changed)),
            )
        return changed

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


def _notification_payloads(share_ids: list[str]) -> list[str]:
    """The changed links' ids, comma-separated, in as few NOTIFY payloads as fit PostgreSQL's
    8,000-byte limit (share ids are URL-safe: never a comma). An empty payload wakes every
    waiting reader: it stands for an id that cannot be named in one."""
    payloads: list[str] = []
    current: list[str] = []
    size = 0
    for share_id in share_ids:
        if "," in share_id or len(share_id) >= NOTIFY_PAYLOAD_BYTES:
            if "" not in payloads:
                payloads.append("")
            continue
        if current and size + len(share_id) + 1 > NOTIFY_PAYLOAD_BYTES:
            payloads.append(",".join(current))
            current, size = [], 0
        current.append(share_id)
        size += len(share_id) + 1
    if current:
        payloads.append(",".join(current))
    return payloads


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
