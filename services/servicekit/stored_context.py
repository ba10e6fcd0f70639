"""The message context of a stored event, kept beside the event's own fields in its stored
state, so the outbox relay can put the command's correlation id on the Kafka record.

The domain never sees it: the mapper adds it when an event is stored and takes it out again
when one is read, before any aggregate or relay code gets the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, StoredEvent

from servicekit.message_context import MessageContext, current_context

STORED_CONTEXT = "__chatshare_context__"


def stamp_pending_events(aggregates: Iterable[Aggregate], context: MessageContext | None) -> None:
    """Give a command's new events its context now, for when they are saved later in a batch
    of other commands' events (group commit), where the current context is not theirs."""
    if context is None:
        return
    for aggregate in aggregates:
        for event in aggregate.pending_events:
            vars(event).setdefault(STORED_CONTEXT, _stored(context))


class ContextMapper(Mapper[UUID]):
    """eventsourcing's mapper, with the context (the event's stamp, else the current one) in
    the stored state."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        context = current_context()
        if STORED_CONTEXT not in vars(domain_event) and context is not None:
            with_context = object.__new__(type(domain_event))
            state = {**vars(domain_event), STORED_CONTEXT: _stored(context)}
            object.__setattr__(with_context, "__dict__", state)
            domain_event = with_context
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return self.to_domain_event_and_context(stored_event)[0]

    def to_domain_event_and_context(
        self, stored_event: StoredEvent
    ) -> tuple[Any, MessageContext | None]:
        domain_event = super().to_domain_event(stored_event)
        return domain_event, context_of_stored(vars(domain_event).pop(STORED_CONTEXT, None))


def context_of_stored(stored: object) -> MessageContext | None:
    """The context kept under `STORED_CONTEXT` in a stored state (None for none, or a bad one)."""
    if not isinstance(stored, dict) or not isinstance(stored.get("correlation_id"), str):
        return None
    return MessageContext(
        stored["correlation_id"], stored.get("causation_id"), stored.get("traceparent")
    )


def read_with_context(
    mapper: Mapper[Any], stored: StoredEvent
) -> tuple[Any, MessageContext | None]:
    """The domain event and the context it was stored with (None for events stored without)."""
    if isinstance(mapper, ContextMapper):
        return mapper.to_domain_event_and_context(stored)
    return mapper.to_domain_event(stored), None


def _stored(context: MessageContext) -> dict[str, str | None]:
    return {
        "correlation_id": context.correlation_id,
        "causation_id": context.causation_id,
        "traceparent": context.traceparent,
    }
