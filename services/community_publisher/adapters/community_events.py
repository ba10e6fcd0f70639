"""The Kafka record of each stored outcome (INTERFACE.md §5, `community.events`), for the outbox
relay. The record's creation (`Received`) is internal and is not published."""

from __future__ import annotations

from uuid import UUID, uuid5

from community_publisher.domain.community_upload import CommunityUpload
from contracts import (
    CommunityEvent,
    CommunityShareFailed,
    CommunitySharePublished,
    CommunityShareRejected,
    encode_event,
)
from contracts.topics import COMMUNITY_EVENTS
from servicekit.outbox_message import OutboxMessage


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The same id every time one stored event is read, so a re-sent event is a duplicate."""
    return uuid5(originator_id, str(originator_version))


def to_outbox_message(domain_event: object) -> OutboxMessage | None:
    event = to_contract(domain_event)
    if event is None:
        return None
    return OutboxMessage(
        topic=COMMUNITY_EVENTS,
        key=event.request_id,
        value=encode_event(event),
        event_id=event.event_id,
    )


def to_contract(domain_event: object) -> CommunityEvent | None:
    if not isinstance(
        domain_event, CommunityUpload.Published | CommunityUpload.Rejected | CommunityUpload.Failed
    ):
        return None
    event_id = event_id_of(domain_event.originator_id, domain_event.originator_version)
    occurred_at = domain_event.timestamp
    if isinstance(domain_event, CommunityUpload.Published):
        return CommunitySharePublished(
            event_id=event_id,
            occurred_at=occurred_at,
            request_id=domain_event.request_id,
            community_id=domain_event.community_id,
            community_url=domain_event.community_url,
        )
    outcome = (
        CommunityShareRejected
        if isinstance(domain_event, CommunityUpload.Rejected)
        else CommunityShareFailed
    )
    return outcome(
        event_id=event_id,
        occurred_at=occurred_at,
        request_id=domain_event.request_id,
        reason=domain_event.reason,
    )
