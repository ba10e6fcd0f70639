"""The Kafka record of each stored share_service event (INTERFACE.md §5, `share.events`), for the
outbox relay: links keyed by share_id, community requests by request_id. The per-chat
bookkeeping (`ChatShares`) is internal and is not published."""

from __future__ import annotations

from uuid import UUID, uuid5

import contracts
from contracts.topics import SHARE_EVENTS
from servicekit.outbox_message import OutboxMessage
from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.share_link import ShareLink


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The same id each time one stored event is read, so a re-sent event is a duplicate."""
    return uuid5(originator_id, str(originator_version))


def to_contract(domain_event: object) -> contracts.ShareEvent | None:
    if not isinstance(domain_event, ShareLink.Event | CommunityShareRequest.Event):
        return None
    envelope = {
        "event_id": event_id_of(domain_event.originator_id, domain_event.originator_version),
        "occurred_at": domain_event.timestamp,
    }
    if isinstance(domain_event, CommunityShareRequest.CommunityShareRequested):
        return contracts.CommunityShareRequested(
            **envelope,
            request_id=domain_event.request_id,
            chat_id=domain_event.chat_id,
            owner_id=domain_event.owner_id,
            access=domain_event.access,
            policy_version=domain_event.policy_version,
            snapshot=domain_event.snapshot,
        )
    if not isinstance(domain_event, ShareLink.Event):
        return None
    link = {
        "share_id": domain_event.share_id,
        "chat_id": domain_event.chat_id,
        "owner_id": domain_event.owner_id,
        "version": domain_event.originator_version,
    }
    if isinstance(domain_event, ShareLink.ShareCreated):
        return contracts.ShareCreated(
            **envelope,
            **link,
            chat_version=domain_event.chat_version,
            snapshot=domain_event.snapshot,
        )
    if isinstance(domain_event, ShareLink.SnapshotUpdated):
        return contracts.SnapshotUpdated(
            **envelope,
            **link,
            chat_version=domain_event.chat_version,
            snapshot=domain_event.snapshot,
        )
    if isinstance(domain_event, ShareLink.LinkDeleted):
        return contracts.LinkDeleted(
            **envelope, **link, reason=domain_event.reason, deleted_by=domain_event.deleted_by
        )
    return None


def to_outbox_message(domain_event: object) -> OutboxMessage | None:
    event = to_contract(domain_event)
    if event is None:
        return None
    key = (
        event.request_id if isinstance(event, contracts.CommunityShareRequested) else event.share_id
    )
    return OutboxMessage(
        topic=SHARE_EVENTS, key=key, value=contracts.encode_event(event), event_id=event.event_id
    )
