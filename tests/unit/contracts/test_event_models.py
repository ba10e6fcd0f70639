"""Every event survives the wire, and what is not a valid event is refused with a reason."""

from __future__ import annotations

import json
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from contracts import (
    ADAPTERS_BY_TOPIC,
    ChatCreated,
    ContractViolation,
    EventEnvelope,
    decode_event,
    encode_event,
)
from contracts.generate import CONTRACTS_DIR, schema_path
from contracts.topics import CHAT_EVENTS, SETTINGS_EVENTS
from tests.unit.contracts.event_examples import every_event

EVENTS = every_event()


def event_id(case: tuple[str, EventEnvelope]) -> str:
    return type(case[1]).__name__


def a_chat_created(**changes: Any) -> bytes:
    value = json.loads(encode_event(EVENTS[0][1]))
    value.update(changes)
    return json.dumps(value).encode()


def test_the_examples_cover_every_event_type() -> None:
    declared = {
        tag
        for adapter in ADAPTERS_BY_TOPIC.values()
        for tag in adapter.json_schema()["discriminator"]["mapping"]
    }
    assert {type(event).__name__ for _, event in EVENTS} == declared


@pytest.mark.parametrize("case", EVENTS, ids=event_id)
def test_every_event_round_trips_through_its_topic(case: tuple[str, EventEnvelope]) -> None:
    topic, event = case
    assert decode_event(topic, encode_event(event)) == event


@pytest.mark.parametrize("case", EVENTS, ids=event_id)
def test_the_wire_format_is_what_the_published_schema_says(case: tuple[str, EventEnvelope]) -> None:
    topic, event = case
    schema = json.loads(schema_path(CONTRACTS_DIR, topic).read_text(encoding="utf-8"))
    value = json.loads(encode_event(event))
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    assert value["type"] == type(event).__name__
    assert value["schema_version"] == 1


def test_encoding_is_compact_utf8_with_every_field_at_the_top_level() -> None:
    event = ChatCreated(**EVENTS[0][1].model_dump(exclude={"title"}), title="Grüße")
    raw = encode_event(event)
    assert b" " not in raw.replace("Grüße".encode(), b"")
    assert "Grüße".encode() in raw
    value = json.loads(raw)
    assert value["occurred_at"] == "2025-03-01T12:30:00Z"
    assert value["event_id"] == "00000000-0000-0000-0000-000000000001"
    assert {"chat_id", "chat_version", "owner_id", "title"} <= value.keys()


def test_an_event_with_fields_we_do_not_know_yet_still_decodes() -> None:
    event = decode_event(CHAT_EVENTS, a_chat_created(pinned=True, tags=["x"]))
    assert event == EVENTS[0][1]


def reason_for(topic: str, raw: bytes) -> str:
    with pytest.raises(ContractViolation) as refused:
        decode_event(topic, raw)
    assert str(refused.value) == refused.value.reason[:1000]
    return refused.value.reason


def test_a_missing_field_is_named() -> None:
    value = json.loads(a_chat_created())
    del value["chat_id"]
    reason = reason_for(CHAT_EVENTS, json.dumps(value).encode())
    assert reason == "ChatCreated.chat_id: Field required"


def test_a_field_of_the_wrong_type_is_named() -> None:
    reason = reason_for(CHAT_EVENTS, a_chat_created(chat_version="3"))
    assert reason.startswith("ChatCreated.chat_version: ")
    assert "integer" in reason


def test_a_payload_that_is_not_json_is_refused() -> None:
    assert reason_for(CHAT_EVENTS, b"\x00not json").startswith("Invalid JSON")
    assert reason_for(CHAT_EVENTS, b"[1, 2]") == "Input should be an object"


def test_an_unknown_event_type_is_refused() -> None:
    reason = reason_for(CHAT_EVENTS, a_chat_created(type="ChatArchived"))
    assert "'ChatArchived'" in reason
    assert "'ChatCreated'" in reason  # the expected tags, so the reader sees what was meant


def test_an_event_of_another_topic_is_refused() -> None:
    settings_event = encode_event(EVENTS[10][1])
    assert "'CommunitySharingEnabled'" in reason_for(CHAT_EVENTS, settings_event)


def test_a_value_without_a_type_is_refused() -> None:
    assert "'type'" in reason_for(CHAT_EVENTS, b'{"chat_id": "c1"}')


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2025-03-01T12:30:00"}, "occurred_at"),  # no time zone
        ({"schema_version": 2}, "schema_version"),
        ({"chat_version": 0}, "chat_version"),
        ({"chat_id": ""}, "chat_id"),
        ({"event_id": "not-a-uuid"}, "event_id"),
    ],
)
def test_values_outside_the_contract_are_refused(change: dict[str, Any], field: str) -> None:
    assert reason_for(CHAT_EVENTS, a_chat_created(**change)).startswith(f"ChatCreated.{field}: ")


def test_a_settings_event_must_agree_with_its_type() -> None:
    value = json.loads(encode_event(EVENTS[10][1]))  # CommunitySharingEnabled
    value["value"] = False
    reason = reason_for(SETTINGS_EVENTS, json.dumps(value).encode())
    assert reason.startswith("CommunitySharingEnabled.value: ")


def test_many_errors_make_one_short_reason() -> None:
    reason = reason_for(CHAT_EVENTS, b'{"type": "MessageAdded"}')
    assert reason.count(";") == 5
    assert reason.endswith("more")


def test_a_topic_without_a_contract_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        decode_event("dlq.chat-mirror", encode_event(EVENTS[0][1]))
