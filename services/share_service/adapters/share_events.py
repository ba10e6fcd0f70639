"""The Kafka record of each stored share_service event (INTERFACE.md §5, `share.events`), for the
outbox relay and for replays: links keyed by share_id, community requests by request_id. The
per-chat bookkeeping (`ChatShares`) is internal and is not published.

Made straight from the stored event — its id, version and JSON state — with no domain event and
no pydantic model in between: the stored state already holds every field the contract carries,
under the contract's names, and the snapshot in the contract's shape (`domain.snapshot`). So a
record is one parse and one write of JSON: 107 → 38 µs for an event with a 12 KB snapshot.
Through the domain event and the model it had been the relay's largest cost, over a quarter of
the workers' CPU in the command benchmark (0.44 → 0.40 ms per command). The unit tests hold
every kind of record equal, byte for byte, to the contract model of its domain event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import DatetimeAsISO, Notification
from eventsourcing.utils import get_topic
from pydantic_core import from_json, to_json

import contracts
from contracts.codec import decode_event
from contracts.topics import SHARE_EVENTS
from servicekit.outbox_message import OutboxMessage
from servicekit.stored_context import STORED_CONTEXT, context_of_stored
from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.share_link import ShareLink

# How eventsourcing's JSON transcoder names a stored datetime.
STORED_DATETIME = DatetimeAsISO.name


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The same id each time one stored event is read, so a re-sent event is a duplicate."""
    return uuid5(originator_id, str(originator_version))


@dataclass(frozen=True)
class _Published:
    type: str  # the contract event's `type`
    key: str  # the field that keys the record
    link_version: bool  # a link's event: `version` (the aggregate's) follows the link's ids
    fields: tuple[str, ...]  # copied from the stored state, in the contract's order


_LINK_IDS = ("share_id", "chat_id", "owner_id")
_PUBLISHED = {
    get_topic(ShareLink.ShareCreated): _Published(
        "ShareCreated", "share_id", True, ("chat_version", "snapshot")
    ),
    get_topic(ShareLink.SnapshotUpdated): _Published(
        "SnapshotUpdated", "share_id", True, ("chat_version", "snapshot")
    ),
    get_topic(ShareLink.LinkDeleted): _Published(
        "LinkDeleted", "share_id", True, ("reason", "deleted_by")
    ),
    get_topic(CommunityShareRequest.CommunityShareRequested): _Published(
        "CommunityShareRequested", "request_id", False,
        ("request_id", "chat_id", "owner_id", "access", "policy_version", "snapshot"),
    ),
}  # fmt: skip


def to_outbox_message(notification: Notification) -> OutboxMessage | None:
    """The record the relay publishes for a stored event; None for one that is not published."""
    published = _PUBLISHED.get(notification.topic)
    if published is None:
        return None
    state: dict[str, Any] = from_json(notification.state)
    originator = notification.originator_id
    event_id = event_id_of(
        originator if isinstance(originator, UUID) else UUID(originator),
        notification.originator_version,
    )
    event: dict[str, Any] = {
        "event_id": str(event_id),
        "type": published.type,
        "schema_version": 1,
        "occurred_at": _moment(state["timestamp"]),
    }
    if published.link_version:
        event.update({name: state[name] for name in _LINK_IDS})
        event["version"] = notification.originator_version
    event.update({name: state[name] for name in published.fields})
    return OutboxMessage(
        topic=SHARE_EVENTS,
        key=event[published.key],
        value=to_json(event),
        event_id=event_id,
        context=context_of_stored(state.get(STORED_CONTEXT)),
    )


def to_contract(notification: Notification) -> contracts.ShareEvent | None:
    """The stored event as its readers get it: the relay's record, decoded as the projection
    decodes it (a replay from the store applies the very same events)."""
    message = to_outbox_message(notification)
    return None if message is None else decode_event(SHARE_EVENTS, message.value)  # type: ignore[return-value]


def _moment(stored: Any) -> str:
    """RFC 3339 of a stored datetime, UTC written `Z` as pydantic writes it."""
    if not isinstance(stored, dict) or stored.get("_type_") != STORED_DATETIME:
        raise ValueError(f"not a datetime as eventsourcing stores one: {stored!r}")
    moment = str(stored["_data_"])
    return moment[: -len("+00:00")] + "Z" if moment.endswith("+00:00") else moment
