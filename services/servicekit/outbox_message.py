"""What the outbox relay publishes for one stored domain event."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from servicekit.message_context import MessageContext


@dataclass(frozen=True)
class OutboxMessage:
    """One Kafka record: the contract event's JSON at the top level, keyed per INTERFACE.md §5."""

    topic: str
    key: str
    value: bytes
    event_id: UUID
    # The work that stored the event (set by the relay's notification log, not by the service).
    context: MessageContext | None = None
