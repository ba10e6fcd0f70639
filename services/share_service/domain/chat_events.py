"""The `chat.events` the mirror understands (INTERFACE.md §5), as plain frozen dataclasses.

Decoupled from the pydantic contracts on purpose: the consumer's adapter maps a contract event
to one of these, so the mirror's rules do not depend on the wire format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["user", "assistant", "system"]


@dataclass(frozen=True, kw_only=True)
class ChatEventBase:
    chat_id: str
    chat_version: int
    occurred_at: datetime  # the envelope's; a new message's created_at

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must be timezone-aware")


@dataclass(frozen=True, kw_only=True)
class ChatCreated(ChatEventBase):
    owner_id: str
    title: str


@dataclass(frozen=True, kw_only=True)
class MessageAdded(ChatEventBase):
    """The new message becomes the current leaf; a second child of one parent is a
    regeneration branch."""

    message_id: str
    parent_id: str | None  # None for a root
    role: Role
    content: str
    model: str | None


@dataclass(frozen=True, kw_only=True)
class MessageEdited(ChatEventBase):
    message_id: str
    content: str


@dataclass(frozen=True, kw_only=True)
class BranchSelected(ChatEventBase):
    message_id: str  # the new current leaf


@dataclass(frozen=True, kw_only=True)
class ChatTitleChanged(ChatEventBase):
    title: str


@dataclass(frozen=True, kw_only=True)
class ChatDeleted(ChatEventBase):
    """Every live link of the chat dies with it."""


ChatEvent = (
    ChatCreated | MessageAdded | MessageEdited | BranchSelected | ChatTitleChanged | ChatDeleted
)
