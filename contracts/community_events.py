"""Outcomes of community uploads on `community.events`, by community_publisher, keyed by
request_id."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from contracts.envelope import EventEnvelope
from contracts.fields import Identifier


class CommunityEventBase(EventEnvelope):
    """Base of the outcomes of one community-share request."""

    request_id: Identifier = Field(description="The request, from `CommunityShareRequested`.")


class CommunitySharePublished(CommunityEventBase):
    """The community site accepted the upload."""

    type: Literal["CommunitySharePublished"] = "CommunitySharePublished"
    community_id: Identifier = Field(description="The chat's id on the community site.")
    community_url: str = Field(
        min_length=1, max_length=2000, description="Where the chat is on the community site."
    )


class CommunityShareRejected(CommunityEventBase):
    """The request will not be uploaded (for example, community sharing was off when sent)."""

    type: Literal["CommunityShareRejected"] = "CommunityShareRejected"
    reason: str = Field(max_length=2000, description="Why, readable by the requester.")


class CommunityShareFailed(CommunityEventBase):
    """The upload failed after its retries: a business outcome, not a dead letter."""

    type: Literal["CommunityShareFailed"] = "CommunityShareFailed"
    reason: str = Field(max_length=2000, description="Why, readable by the requester.")


CommunityEvent = Annotated[
    CommunitySharePublished | CommunityShareRejected | CommunityShareFailed,
    Field(discriminator="type"),
]
COMMUNITY_EVENT_ADAPTER: TypeAdapter[CommunityEvent] = TypeAdapter(CommunityEvent)
