"""Bytes on a topic to an event model and back; what cannot be read says why, for dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from contracts.chat_events import CHAT_EVENT_ADAPTER, ChatEvent
from contracts.community_events import COMMUNITY_EVENT_ADAPTER, CommunityEvent
from contracts.envelope import EventEnvelope
from contracts.settings_events import SETTINGS_EVENT_ADAPTER, SettingsEvent
from contracts.share_events import SHARE_EVENT_ADAPTER, ShareEvent
from contracts.topics import CHAT_EVENTS, COMMUNITY_EVENTS, SETTINGS_EVENTS, SHARE_EVENTS

Event = ChatEvent | ShareEvent | SettingsEvent | CommunityEvent

ADAPTERS_BY_TOPIC: Mapping[str, TypeAdapter[Any]] = {
    CHAT_EVENTS: CHAT_EVENT_ADAPTER,
    SHARE_EVENTS: SHARE_EVENT_ADAPTER,
    SETTINGS_EVENTS: SETTINGS_EVENT_ADAPTER,
    COMMUNITY_EVENTS: COMMUNITY_EVENT_ADAPTER,
}

MAX_REASON_LENGTH = 1000  # a Kafka header, not a report: the first few errors say enough
MAX_ERRORS_SHOWN = 5


class ContractViolation(ValueError):
    """A record that is not a valid event of its topic; `reason` says why in one line."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(reason[:MAX_REASON_LENGTH])
        self.topic = topic
        self.reason = reason


def decode_event(topic: str, raw: bytes) -> Event:
    """The event in `raw`, one JSON object of `topic`'s union; ContractViolation if it is not."""
    adapter = ADAPTERS_BY_TOPIC.get(topic)
    if adapter is None:
        raise KeyError(f"no event contract for topic {topic!r}")
    try:
        # Strict: a "1" is not a version and a 0 is not a boolean, whatever a lax parser thinks.
        event: Event = adapter.validate_json(raw, strict=True)
    except ValidationError as error:
        raise ContractViolation(topic, describe(error)) from error
    return event


def encode_event(event: EventEnvelope) -> bytes:
    """Compact UTF-8 JSON of the event, every field at the top level."""
    return event.model_dump_json().encode("utf-8")


def describe(error: ValidationError) -> str:
    """Pydantic's errors as one readable line: `where: what; where: what`."""
    problems = []
    for detail in error.errors(include_url=False)[:MAX_ERRORS_SHOWN]:
        where = ".".join(str(part) for part in detail["loc"])
        problems.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    hidden = error.error_count() - len(problems)
    if hidden > 0:
        problems.append(f"and {hidden} more")
    return "; ".join(problems)
