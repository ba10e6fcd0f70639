"""Breaking changes between a topic's checked-in JSON Schema and a new one.

Events are kept forever and read by consumers of every age, so a change must let new code read
old events and old code read new ones: adding optional fields or event types is fine; removing
an event type or a field, requiring a field, changing a field's type or dropping one of its
allowed values is not. Lengths, patterns and bounds are not compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

Schema = Mapping[str, Any]


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """One readable line per breaking change from `old` to `new`; empty when compatible."""
    old_events, new_events = event_types(old), event_types(new)
    changes = [f"{name}: event type removed" for name in sorted(old_events.keys() - new_events)]
    old_models, new_models = old.get("$defs", {}), new.get("$defs", {})
    removed_event_models = {old_events[name] for name in old_events.keys() - new_events}
    for name, old_model in sorted(old_models.items()):
        if name in removed_event_models:
            continue
        if name not in new_models:
            changes.append(f"{name}: model removed")
            continue
        changes.extend(f"{name}.{change}" for change in _model_changes(old_model, new_models[name]))
    return changes


def event_types(schema: Schema) -> dict[str, str]:
    """The union's `type` values, each with the name of its model in `$defs`."""
    mapping = schema.get("discriminator", {}).get("mapping", {})
    return {tag: ref.rsplit("/", 1)[-1] for tag, ref in mapping.items()}


def _model_changes(old: Schema, new: Schema) -> Iterator[str]:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    newly_required = set(new.get("required", ())) - set(old.get("required", ()))
    for field in sorted(newly_required):
        yield f"{field}: field newly required"
    for field, old_field in old_fields.items():
        new_field = new_fields.get(field)
        if new_field is None:
            yield f"{field}: field removed"
            continue
        before, after = shape(old_field), shape(new_field)
        if before != after:
            yield f"{field}: type changed from {before} to {after}"
        removed = allowed_values(old_field) - allowed_values(new_field)
        if removed and allowed_values(new_field):
            yield f"{field}: allowed values removed: {', '.join(sorted(map(repr, removed)))}"


def shape(schema: Schema) -> str:
    """A field's type as a short string, ignoring descriptions, defaults and constraints."""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return " | ".join(sorted(shape(alternative) for alternative in alternatives))
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " | ".join(sorted(kind))
    if kind == "array":
        return f"array[{shape(schema.get('items', {}))}]"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map[{shape(schema['additionalProperties'])}]"
    return f"{kind}({schema['format']})" if "format" in schema else str(kind)


def allowed_values(schema: Schema) -> frozenset[Any]:
    """The values an enum or literal allows, including inside `anyOf`; empty when unrestricted."""
    values: set[Any] = set(schema.get("enum", ()))
    if "const" in schema:
        values.add(schema["const"])
    for alternative in schema.get("anyOf", ()):
        values |= allowed_values(alternative)
    return frozenset(values)
