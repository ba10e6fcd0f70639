"""A chat frozen at one moment, as share events and the read API carry it (INTERFACE.md §3)."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from contracts.envelope import ContractModel
from contracts.fields import Identifier, Role


class SnapshotMessage(ContractModel):
    """One message of a snapshot."""

    id: Identifier = Field(description="The message's id in its chat.")
    parent_id: Identifier | None = Field(description="The message it answers, null for a root.")
    role: Role = Field(description="Who wrote the message.")
    content: str = Field(description="The message text (untrusted: escape it when shown).")
    model: str | None = Field(max_length=200, description="The model that wrote it, if any.")
    created_at: AwareDatetime = Field(description="When the message was added (RFC 3339).")


class HistoryMessage(SnapshotMessage):
    """A message of the whole tree, with its children (regenerations branch off here)."""

    children_ids: list[Identifier] = Field(description="Its replies, oldest first.")


class History(ContractModel):
    """Every branch of the chat."""

    messages: dict[str, HistoryMessage] = Field(description="Every message, by id.")
    current_id: Identifier | None = Field(description="The current leaf, null for an empty chat.")


class Snapshot(ContractModel):
    """A chat's title, visible branch and whole tree when the snapshot was taken."""

    title: str = Field(description="The chat's title.")
    messages: list[SnapshotMessage] = Field(description="The visible branch, root first.")
    history: History = Field(description="Every branch of the chat.")
