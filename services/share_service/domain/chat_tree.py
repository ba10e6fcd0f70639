"""share_service's mirror of one chat, kept from `chat.events`: owner, title, the message tree
with every regeneration branch, the current leaf and the last applied `chat_version`.

Pure: `apply_chat_event` returns a new chat and never changes the one it was given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

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
from share_service.domain.errors import ChatEventRejected

Outcome = Literal["applied", "duplicate", "gap"]


@dataclass(frozen=True)
class Message:
    id: str
    parent_id: str | None
    role: Role
    content: str
    model: str | None
    created_at: datetime
    children_ids: tuple[str, ...] = ()  # oldest first; more than one = regeneration branches


@dataclass(frozen=True)
class MirroredChat:
    chat_id: str
    owner_id: str
    title: str
    messages: dict[str, Message]  # every branch, in the order the messages were added
    current_id: str | None  # the current leaf; None before the first message
    chat_version: int
    deleted: bool = False


@dataclass(frozen=True)
class ApplyResult:
    """The chat after the event, and what happened: `gap` means the event was applied although
    `missing_versions` versions before it were never seen (the producer's gap: log and count)."""

    chat: MirroredChat
    outcome: Outcome
    missing_versions: int = 0


def apply_chat_event(chat: MirroredChat | None, event: ChatEvent) -> ApplyResult:
    """Apply one event to the chat it is for (None: not seen yet).

    An event at or below the applied version is a duplicate and changes nothing. One that skips
    versions is applied all the same, so a chat never stalls. Raises `ChatEventRejected` when
    the event cannot apply (the caller dead-letters it), leaving the chat as it was.
    """
    if chat is not None and chat.chat_id != event.chat_id:
        raise ValueError(f"event for chat {event.chat_id} applied to chat {chat.chat_id}")
    if chat is not None and event.chat_version <= chat.chat_version:
        return ApplyResult(chat, "duplicate")
    if event.chat_version < 1:
        raise _rejected(event, "chat_version counts from 1")
    missing = event.chat_version - (0 if chat is None else chat.chat_version) - 1
    applied = _apply(chat, event)
    return ApplyResult(applied, "gap" if missing else "applied", missing)


def _apply(chat: MirroredChat | None, event: ChatEvent) -> MirroredChat:
    if isinstance(event, ChatCreated):
        if chat is not None:
            raise _rejected(event, "the chat already exists")
        return MirroredChat(
            event.chat_id, event.owner_id, event.title, {}, None, event.chat_version
        )
    if chat is None:
        raise _rejected(event, "the chat is unknown (no ChatCreated seen)")
    if chat.deleted:
        raise _rejected(event, "the chat was deleted")
    version = event.chat_version
    match event:
        case MessageAdded():
            return _add_message(chat, event)
        case MessageEdited():
            edited = replace(_message(chat, event, event.message_id), content=event.content)
            return replace(
                chat, messages={**chat.messages, edited.id: edited}, chat_version=version
            )
        case BranchSelected():
            leaf = _message(chat, event, event.message_id)
            return replace(chat, current_id=leaf.id, chat_version=version)
        case ChatTitleChanged():
            return replace(chat, title=event.title, chat_version=version)
        case ChatDeleted():
            # Keep only what recognises late duplicates; the content goes with the chat.
            return replace(
                chat, title="", messages={}, current_id=None, chat_version=version, deleted=True
            )


def _add_message(chat: MirroredChat, event: MessageAdded) -> MirroredChat:
    if event.message_id in chat.messages:
        raise _rejected(event, f"message {event.message_id} already exists")
    messages = dict(chat.messages)
    if event.parent_id is not None:
        parent = _message(chat, event, event.parent_id)
        messages[parent.id] = replace(parent, children_ids=(*parent.children_ids, event.message_id))
    messages[event.message_id] = Message(
        id=event.message_id,
        parent_id=event.parent_id,
        role=event.role,
        content=event.content,
        model=event.model,
        created_at=event.occurred_at,
    )
    return replace(
        chat, messages=messages, current_id=event.message_id, chat_version=event.chat_version
    )


def _message(chat: MirroredChat, event: ChatEvent, message_id: str) -> Message:
    try:
        return chat.messages[message_id]
    except KeyError:
        raise _rejected(event, f"message {message_id} is unknown") from None


def _rejected(event: ChatEvent, why: str) -> ChatEventRejected:
    return ChatEventRejected(
        f"{type(event).__name__} v{event.chat_version} of chat {event.chat_id}: {why}"
    )


def visible_branch(chat: MirroredChat) -> list[Message]:
    """The messages the owner sees: from the root down to the current leaf."""
    branch: list[Message] = []
    message_id = chat.current_id
    while message_id is not None:
        message = chat.messages[message_id]
        branch.append(message)
        message_id = message.parent_id
    branch.reverse()
    return branch
