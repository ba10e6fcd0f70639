"""share_service's own copy of the platform's chats (the chat mirror), in PostgreSQL.

One row per chat: owner, title, the whole message tree as JSON, the current leaf and the last
applied `chat_version`. Snapshots are copied from here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from servicekit.batched_reads import BatchedReads
from servicekit.held_connections import RowReader
from share_service.domain.chat_tree import Message, MirroredChat

POLL_SECONDS = 0.02


class ChatMirrorStore:
    def __init__(self, pool: asyncpg.Pool, schema: str, reads: RowReader | None = None) -> None:
        """`reads`: connections held for the commands' reads of a chat (else the pool's)."""
        self.pool = pool
        self._reads: RowReader = reads or pool
        self.table = f'"{schema}".mirrored_chats'
        self.schema = schema
        # Commands that arrive together read their chats with one query (servicekit).
        self._chats: BatchedReads[str, MirroredChat] = BatchedReads(self._fetch_chats)

    async def create_table(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " chat_id text PRIMARY KEY, owner_id text NOT NULL, title text NOT NULL,"
                " messages jsonb NOT NULL, current_id text, chat_version bigint NOT NULL,"
                " deleted boolean NOT NULL DEFAULT false,"
                " updated_at timestamptz NOT NULL DEFAULT now())"
            )

    async def get(self, chat_id: str) -> MirroredChat | None:
        return await self._chats.get(chat_id)

    async def wait_for_version(
        self, chat_id: str, version: int, within: float
    ) -> MirroredChat | None:
        """The chat once it includes `version`, or None if it has not arrived within `within` s."""
        deadline = time.monotonic() + within
        while True:
            chat = await self._chats.get(chat_id)
            if chat is not None and chat.chat_version >= version:
                return chat
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)

    async def _fetch_chats(self, chat_ids: list[str]) -> dict[str, MirroredChat]:
        rows = await self._reads.fetch(
            f"SELECT * FROM {self.table} WHERE chat_id = ANY($1::text[])", chat_ids
        )
        return {row["chat_id"]: _chat(row) for row in rows}

    async def lock(
        self, connection: asyncpg.Connection, chat_ids: Iterable[str]
    ) -> dict[str, MirroredChat]:
        """The chats' rows, locked until the transaction ends (in id order: no deadlocks)."""
        rows = await connection.fetch(
            f"SELECT * FROM {self.table} WHERE chat_id = ANY($1::text[]) ORDER BY chat_id FOR UPDATE",
            sorted(set(chat_ids)),
        )
        return {row["chat_id"]: _chat(row) for row in rows}

    async def save(self, connection: asyncpg.Connection, chat: MirroredChat) -> None:
        await connection.execute(
            f"INSERT INTO {self.table} (chat_id, owner_id, title, messages, current_id,"
            " chat_version, deleted) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)"
            " ON CONFLICT (chat_id) DO UPDATE SET owner_id = $2, title = $3, messages = $4::jsonb,"
            " current_id = $5, chat_version = $6, deleted = $7, updated_at = now()",
            chat.chat_id,
            chat.owner_id,
            chat.title,
            json.dumps([_message_json(message) for message in chat.messages.values()]),
            chat.current_id,
            chat.chat_version,
            chat.deleted,
        )


def _message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "created_at": message.created_at.isoformat(),
        "children_ids": list(message.children_ids),
    }


def _chat(row: asyncpg.Record) -> MirroredChat:
    messages = {
        item["id"]: Message(
            id=item["id"],
            parent_id=item["parent_id"],
            role=item["role"],
            content=item["content"],
            model=item["model"],
            created_at=datetime.fromisoformat(item["created_at"]),
            children_ids=tuple(item["children_ids"]),
        )
        for item in json.loads(row["messages"])
    }
    return MirroredChat(
        chat_id=row["chat_id"],
        owner_id=row["owner_id"],
        title=row["title"],
        messages=messages,
        current_id=row["current_id"],
        chat_version=row["chat_version"],
        deleted=row["deleted"],
    )
