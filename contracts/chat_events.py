"""Input events on `chat.events`, written by the platform's chat services, keyed by chat_id."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.envelope import EventEnvelope
from contracts.fields import Identifier, Role, Version


class ChatEventBase(EventEnvelope):
    """Base of the events of one chat."""

    chat_id: Identifier = Field(description="The chat, as its own service names it (opaque).")
    chat_version: Version = Field(
        description="Counts up by one per event of the chat; a repeat carries the same version."
    )


class ChatCreated(ChatEventBase):
    """A chat was created."""

    type: Literal["ChatCreated"] = "ChatCreated"
    owner_id: Identifier = Field(description="User id (JWT `sub`) of the chat's owner.")
    title: str = Field(description="The chat's title.")


class MessageAdded(ChatEventBase):
    """A message was added; it becomes the chat's current leaf."""

    type: Literal["MessageAdded"] = "MessageAdded"
    message_id: Identifier = Field(description="The new message.")
    parent_id: Identifier | None = Field(
        description="The message it answers, null for a root; a second child is a regeneration."
    )
    role: Role = Field(description="Who wrote the message.")
    content: str = Field(description="The message text (untrusted: escape it when shown).")
    model: str | None = Field(max_length=200, description="The model that wrote it, if any.")


class MessageEdited(ChatEventBase):
    """A message's content was changed in place."""

    type: Literal["MessageEdited"] = "MessageEdited"
    message_id: Identifier = Field(description="The edited message.")
    content: str = Field(description="The new message text.")


class BranchSelected(ChatEventBase):
    """The user switched branches: another message is now the current leaf."""

    type: Literal["BranchSelected"] = "BranchSelected"
    message_id: Identifier = Field(description="The new current leaf.")


class ChatTitleChanged(ChatEventBase):
    """The chat was renamed."""

    type: Literal["ChatTitleChanged"] = "ChatTitleChanged"
    title: str = Field(description="The chat's new title.")


class ChatDeleted(ChatEventBase):
    """The chat was deleted; every live link of it dies with it."""

    type: Literal["ChatDeleted"] = "ChatDeleted"


ChatEvent = Annotated[
    ChatCreated | MessageAdded | MessageEdited | BranchSelected | ChatTitleChanged | ChatDeleted,
    Field(discriminator="type"),
]
CHAT_EVENT_ADAPTER: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)
