"""The checked-in schemas still describe the models, and the checker flags what would break."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.compatibility import breaking_changes
from contracts.generate import incompatible_changes, schema_path, topic_schema, write_files
from contracts.topics import CHAT_EVENTS, EVENT_TOPICS

CHAT_SPEC = next(spec for spec in EVENT_TOPICS if spec.name == CHAT_EVENTS)


@pytest.fixture
def schema() -> dict[str, Any]:
    return topic_schema(CHAT_SPEC)


def changed(schema: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(schema)


def with_optional_note(schema: dict[str, Any]) -> dict[str, Any]:
    noted = changed(schema)
    noted["$defs"]["ChatCreated"]["properties"]["note"] = {"type": "string", "default": ""}
    return noted


def test_the_checked_in_schemas_are_compatible_with_the_models() -> None:
    assert incompatible_changes() == []


def test_an_unchanged_schema_is_compatible(schema: dict[str, Any]) -> None:
    assert breaking_changes(schema, changed(schema)) == []


def test_adding_an_optional_field_is_compatible(schema: dict[str, Any]) -> None:
    assert breaking_changes(schema, with_optional_note(schema)) == []


def test_adding_an_event_type_is_compatible(schema: dict[str, Any]) -> None:
    new = changed(schema)
    new["$defs"]["ChatArchived"] = copy.deepcopy(new["$defs"]["ChatDeleted"])
    new["discriminator"]["mapping"]["ChatArchived"] = "#/$defs/ChatArchived"
    new["oneOf"].append({"$ref": "#/$defs/ChatArchived"})
    assert breaking_changes(schema, new) == []


def test_removing_a_field_breaks(schema: dict[str, Any]) -> None:
    new = changed(schema)
    del new["$defs"]["ChatCreated"]["properties"]["title"]
    new["$defs"]["ChatCreated"]["required"].remove("title")
    assert breaking_changes(schema, new) == ["ChatCreated.title: field removed"]


def test_making_a_field_required_breaks(schema: dict[str, Any]) -> None:
    old = with_optional_note(schema)
    new = changed(old)
    new["$defs"]["ChatCreated"]["required"].append("note")
    assert breaking_changes(old, new) == ["ChatCreated.note: field newly required"]


def test_adding_a_required_field_breaks(schema: dict[str, Any]) -> None:
    new = with_optional_note(schema)
    new["$defs"]["ChatCreated"]["required"].append("note")
    assert breaking_changes(schema, new) == ["ChatCreated.note: field newly required"]


def test_changing_a_field_type_breaks(schema: dict[str, Any]) -> None:
    new = changed(schema)
    new["$defs"]["ChatDeleted"]["properties"]["chat_version"] = {"type": "string"}
    assert breaking_changes(schema, new) == [
        "ChatDeleted.chat_version: type changed from integer to string"
    ]


def test_making_a_nullable_field_non_null_breaks(schema: dict[str, Any]) -> None:
    new = changed(schema)
    new["$defs"]["MessageAdded"]["properties"]["model"] = {"type": "string"}
    assert breaking_changes(schema, new) == [
        "MessageAdded.model: type changed from null | string to string"
    ]


def test_removing_an_allowed_value_breaks(schema: dict[str, Any]) -> None:
    new = changed(schema)
    new["$defs"]["MessageAdded"]["properties"]["role"]["enum"].remove("system")
    assert breaking_changes(schema, new) == ["MessageAdded.role: allowed values removed: 'system'"]


def test_removing_an_event_type_breaks(schema: dict[str, Any]) -> None:
    new = changed(schema)
    del new["$defs"]["ChatDeleted"]
    del new["discriminator"]["mapping"]["ChatDeleted"]
    new["oneOf"].remove({"$ref": "#/$defs/ChatDeleted"})
    assert breaking_changes(schema, new) == ["ChatDeleted: event type removed"]


def test_a_checked_in_field_the_models_no_longer_have_is_reported(tmp_path: Path) -> None:
    write_files(tmp_path)
    path = schema_path(tmp_path, CHAT_EVENTS)
    checked_in = json.loads(path.read_text(encoding="utf-8"))
    checked_in["$defs"]["ChatCreated"]["properties"]["pinned"] = {"type": "boolean"}
    path.write_text(json.dumps(checked_in), encoding="utf-8")
    assert incompatible_changes(tmp_path) == ["chat.events: ChatCreated.pinned: field removed"]
