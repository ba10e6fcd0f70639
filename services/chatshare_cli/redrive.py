"""`chatshare dlq redrive`: a dead letter handed back to the group that gave up on it — to that
group alone.

Republishing to the source topic would deliver it to every group of that topic again. Instead the
CLI builds the group's own handler from the service's code (its decoder and the batch handler its
consumer runs) and applies the record in-process, as one batch of one: every handler is
idempotent and version-checked, so this is safe beside the running group. The group's Kafka
position is not touched. Each redrive is recorded in `chatshare_ops.dead_letter_redrives`; a
letter redriven once is refused again unless forced.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry

from chatshare_cli.dead_letters import DeadLetter
from contracts.topics import CHAT_MIRROR_GROUP, SHARE_PROJECTION_GROUP
from servicekit.consumer import Delivery, Unprocessable, is_transient
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.view_store import LinkRow, ShareViewStore
from share_service.bootstrap import EVENT_STORE_SCHEMA, open_sharing_application
from share_service.config import ShareServiceSettings
from share_service.entrypoints.chat_mirror import ChatMirror, decode_chat_event
from share_service.entrypoints.share_projection import ProjectionDecoder, apply_share_events

OPS_SCHEMA = "chatshare_ops"
Handler = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]


@dataclass(frozen=True)
class Redriven:
    ref: str
    outcome: str  # redriven | refused | failed
    detail: str = ""


class RedriveLog:
    """What was redriven, when: a second redrive of one letter needs `--force`."""

    table = f'"{OPS_SCHEMA}".dead_letter_redrives'

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create_table(self) -> None:
        await self.pool.execute(f'CREATE SCHEMA IF NOT EXISTS "{OPS_SCHEMA}"')
        await self.pool.execute(
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            ' dead_letter_topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL,'
            " consumer_group text NOT NULL, source text NOT NULL, forced boolean NOT NULL,"
            " redriven_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
            ' PRIMARY KEY (dead_letter_topic, partition, "offset", redriven_at))'
        )

    async def last_redrives(self, topic: str) -> dict[str, datetime]:
        """When each letter of the dead-letter topic was last redriven, by `partition:offset`."""
        rows = await self.pool.fetch(
            f'SELECT partition, "offset", max(redriven_at) AS at FROM {self.table}'
            ' WHERE dead_letter_topic = $1 GROUP BY partition, "offset"',
            topic,
        )
        return {f"{row['partition']}:{row['offset']}": row["at"] for row in rows}

    async def record(self, letter: DeadLetter, group: str, forced: bool) -> None:
        await self.pool.execute(
            f'INSERT INTO {self.table} (dead_letter_topic, partition, "offset", consumer_group,'
            " source, forced) VALUES ($1, $2, $3, $4, $5, $6)",
            letter.topic, letter.partition, letter.offset, group, letter.source, forced,
        )  # fmt: skip


class Redrive:
    def __init__(self, group: str, handle: Handler, log: RedriveLog) -> None:
        self.group = group
        self.handle = handle
        self.log = log

    async def letters(self, letters: list[DeadLetter], *, force: bool) -> list[Redriven]:
        """Each letter in turn; a failure is reported and the next one tried."""
        done = await self.log.last_redrives(letters[0].topic) if letters else {}
        results = []
        for letter in letters:
            if letter.ref in done and not force:
                at = done[letter.ref].isoformat()
                results.append(Redriven(letter.ref, "refused", f"redriven at {at} (--force)"))
                continue
            results.append(await self._one(letter, forced=letter.ref in done))
        return results

    async def _one(self, letter: DeadLetter, *, forced: bool) -> Redriven:
        try:
            await self.handle(letter.source_record())
        except Exception as error:
            if is_transient(error):
                raise  # the infrastructure's fault, not the letter's: stop
            kind = "unprocessable" if isinstance(error, Unprocessable) else type(error).__name__
            return Redriven(letter.ref, "failed", f"{kind}: {error}")
        await self.log.record(letter, self.group, forced)
        return Redriven(letter.ref, "redriven")


@asynccontextmanager
async def group_handler(
    group: str, settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """The handler of `group` (one of REDRIVABLE), built from its service's code."""
    if group == SHARE_PROJECTION_GROUP:
        yield share_projection_handler(settings, pool)
    elif group == CHAT_MIRROR_GROUP:
        async with chat_mirror_handler(settings, pool) as handle:
            yield handle
    else:
        raise KeyError(f"no redrive for the group {group!r}")


def share_projection_handler(settings: ShareServiceSettings, pool: asyncpg.Pool) -> Handler:
    decode = ProjectionDecoder(settings)
    views = ShareViewStore(pool, EVENT_STORE_SCHEMA)
    requests = CommunityRequestStore(pool, EVENT_STORE_SCHEMA)

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode(record)
        async with pool.acquire() as connection, connection.transaction():
            await apply_share_events(connection, views, requests, [event])

    return handle


@asynccontextmanager
async def chat_mirror_handler(
    settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """ChatMirror's handler; a redriven `ChatDeleted` kills the chat's live link as the service
    does (the command in share_service's application, then the view's tombstone)."""
    views = ShareViewStore(pool, EVENT_STORE_SCHEMA)
    sharing = await asyncio.to_thread(open_sharing_application, settings)

    async def links_die_with_chat(chat_id: str) -> None:
        for link in await asyncio.to_thread(sharing.delete_links_of_chat, chat_id):
            row = LinkRow(link.share_id, link.chat_id, link.version, link.created_at,
                          link.updated_at)  # fmt: skip
            await views.put_tombstone(row, link.owner_id)

    mirror = ChatMirror(ChatMirrorStore(pool, EVENT_STORE_SCHEMA), links_die_with_chat,
                        CollectorRegistry())  # fmt: skip

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await mirror.apply([Delivery(decode_chat_event(record), record)])

    try:
        yield handle
    finally:
        await asyncio.to_thread(sharing.close)
