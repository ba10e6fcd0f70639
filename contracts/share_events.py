"""Output events on `share.events`, written by share_service: keyed by share_id, or by request_id
for community-share requests."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.envelope import EventEnvelope
from contracts.fields import Identifier, ShareId, Version
from contracts.snapshot import Snapshot


class LinkEventBase(EventEnvelope):
    """Base of the events of one share link."""

    share_id: ShareId = Field(description="The link's id: at least 128 random bits, URL-safe.")
    chat_id: Identifier = Field(description="The shared chat.")
    owner_id: Identifier = Field(description="User id (JWT `sub`) of the chat's owner.")
    version: Version = Field(description="Counts the link's changes: 1 when created, +1 each.")


class ShareCreated(LinkEventBase):
    """The owner created a link: a static snapshot of the chat."""

    type: Literal["ShareCreated"] = "ShareCreated"
    chat_version: Version = Field(description="The chat version the snapshot shows.")
    snapshot: Snapshot = Field(description="The chat as the link shows it.")


class SnapshotUpdated(LinkEventBase):
    """The owner took the link's snapshot anew ("Update and Copy Link")."""

    type: Literal["SnapshotUpdated"] = "SnapshotUpdated"
    chat_version: Version = Field(description="The chat version the snapshot shows.")
    snapshot: Snapshot = Field(description="The chat as the link now shows it.")


class LinkDeleted(LinkEventBase):
    """The link is dead: by its owner, an admin, or with its chat."""

    type: Literal["LinkDeleted"] = "LinkDeleted"
    reason: Literal["owner", "admin", "chat_deleted"] = Field(description="Why the link died.")
    deleted_by: Identifier = Field(
        description="User id of whoever deleted it; `system` for `chat_deleted`."
    )


class CommunityShareRequested(EventEnvelope):
    """The owner asked to publish a snapshot of the chat on the community site."""

    type: Literal["CommunityShareRequested"] = "CommunityShareRequested"
    request_id: Identifier = Field(description="The request; the upload's idempotency key.")
    chat_id: Identifier = Field(description="The shared chat.")
    owner_id: Identifier = Field(description="User id (JWT `sub`) of the chat's owner.")
    access: Literal["private", "public", "public_full_history"] = Field(
        description="Who may see it there; only `public_full_history` uploads every branch."
    )
    policy_version: Version = Field(description="The policy version that allowed the request.")
    snapshot: Snapshot = Field(description="The request's own snapshot of the chat.")


ShareEvent = Annotated[
    ShareCreated | SnapshotUpdated | LinkDeleted | CommunityShareRequested,
    Field(discriminator="type"),
]
SHARE_EVENT_ADAPTER: TypeAdapter[ShareEvent] = TypeAdapter(ShareEvent)
