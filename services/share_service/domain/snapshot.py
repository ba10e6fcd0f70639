"""A share's snapshot: the chat as it was when shared, shaped exactly like the `title`,
`messages` and `history` of INTERFACE.md §3's GET body, as plain JSON-ready dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

from pydantic_core import to_json

from share_service.domain.chat_events import Role
from share_service.domain.chat_tree import Message, MirroredChat, visible_branch


class SnapshotMessage(TypedDict):
    id: str
    parent_id: str | None
    role: Role
    content: str
    model: str | None
    created_at: str  # RFC 3339, UTC


class HistoryMessage(SnapshotMessage):
    children_ids: list[str]


class History(TypedDict):
    messages: dict[str, HistoryMessage]  # every branch
    current_id: str | None


class Snapshot(TypedDict):
    title: str
    messages: list[SnapshotMessage]  # the visible branch, root first
    history: History


def snapshot_of(chat: MirroredChat) -> Snapshot:
    """A fresh copy of the chat: nothing in it is shared with the mirror (the snapshot's two
    views of a visible message are two dicts, so changing one never changes the other)."""
    bodies = {message.id: _message_body(message) for message in chat.messages.values()}
    return {
        "title": chat.title,
        "messages": [bodies[message.id].copy() for message in visible_branch(chat)],
        "history": {
            "messages": {
                message.id: {**bodies[message.id], "children_ids": list(message.children_ids)}
                for message in chat.messages.values()
            },
            "current_id": chat.current_id,
        },
    }


def snapshot_size(snapshot: Snapshot) -> int:
    """Bytes of the snapshot as compact UTF-8 JSON: what `CHATSHARE_MAX_SNAPSHOT_BYTES` limits.

    pydantic-core's serializer writes the same bytes as `json.dumps(ensure_ascii=False,
    separators=(",", ":"))` (tests/unit/share_service/test_chat_tree.py), in a quarter of the time."""
    return len(to_json(snapshot))


def _message_body(message: Message) -> SnapshotMessage:
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "model": message.model,
        "created_at": _rfc3339(message.created_at),
    }


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
