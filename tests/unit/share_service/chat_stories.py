"""Chats as the platform's chat service would send them on `chat.events`, for share_service's
tests: each step is the next event of the chat, applied to its mirror."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TypedDict

from share_service.domain.chat_events import (
    BranchSelected,
    ChatCreated,
    ChatDeleted,
    ChatEvent,
    ChatTitleChanged,
    MessageAdded,
    MessageEdited,
    Role,
)
from share_service.domain.chat_tree import MirroredChat, apply_chat_event

STORY_START = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
_CURRENT = object()


class EventFields(TypedDict):
    chat_id: str
    chat_version: int
    occurred_at: datetime


class ChatStory:
    """One chat, built event by event; `chat` is its mirror after the last one."""

    def __init__(self, chat_id: str = "chat-1", owner_id: str = "alice", title: str = "Kyoto"):
        self.chat_id = chat_id
        self.version = 0
        self._messages = 0
        self.chat: MirroredChat = self.apply(
            ChatCreated(**self.next_event_fields(), owner_id=owner_id, title=title)
        )

    def next_event_fields(self) -> EventFields:
        self.version += 1
        return {
            "chat_id": self.chat_id,
            "chat_version": self.version,
            "occurred_at": STORY_START + timedelta(minutes=self.version),
        }

    def apply(self, event: ChatEvent) -> MirroredChat:
        self.chat = apply_chat_event(None if event.chat_version == 1 else self.chat, event).chat
        return self.chat

    def say(
        self, content: str, role: Role = "user", parent: object = _CURRENT, model: str | None = None
    ) -> str:
        """Add a message under `parent` (the current leaf unless given); its id."""
        self._messages += 1
        message_id = f"{self.chat_id}-m{self._messages}"
        parent_id = self.chat.current_id if parent is _CURRENT else parent
        assert parent_id is None or isinstance(parent_id, str)
        self.apply(
            MessageAdded(
                **self.next_event_fields(),
                message_id=message_id,
                parent_id=parent_id,
                role=role,
                content=content,
                model=model,
            )
        )
        return message_id

    def answer(self, content: str, parent: object = _CURRENT) -> str:
        return self.say(content, role="assistant", parent=parent, model="llama3")

    def edit(self, message_id: str, content: str) -> None:
        self.apply(
            MessageEdited(**self.next_event_fields(), message_id=message_id, content=content)
        )

    def select(self, message_id: str) -> None:
        self.apply(BranchSelected(**self.next_event_fields(), message_id=message_id))

    def rename(self, title: str) -> None:
        self.apply(ChatTitleChanged(**self.next_event_fields(), title=title))

    def delete(self) -> None:
        self.apply(ChatDeleted(**self.next_event_fields()))
