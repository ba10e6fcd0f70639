"""The fields every event carries at the top level of its JSON (INTERFACE.md §5)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ENVELOPE_FIELDS = ("event_id", "type", "schema_version", "occurred_at")
TYPE_DESCRIPTION = "The event's type, the name of its model: the union's discriminator."


def _describe_envelope(schema: dict[str, Any]) -> None:
    # `type` and `schema_version` have defaults for the producers' convenience, but every value
    # on the wire carries them: the published schema must say so.
    required = set(schema.get("required", ())) | set(ENVELOPE_FIELDS)
    schema["required"] = [name for name in schema["properties"] if name in required]
    # Subclasses redeclare `type` as their own literal, which drops the base field's description.
    schema["properties"]["type"].setdefault("description", TYPE_DESCRIPTION)


class EventEnvelope(BaseModel):
    """Base of every event: its id, type, schema version and when it happened."""

    # Consumers ignore fields they do not know yet, so producers can add optional fields first.
    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra=_describe_envelope)

    event_id: UUID = Field(description="Unique id of this event; a repeat carries the same id.")
    type: str = Field(description=TYPE_DESCRIPTION)
    schema_version: Literal[1] = Field(1, description="Version of this event type's schema.")
    occurred_at: AwareDatetime = Field(description="When the fact happened (RFC 3339).")


class ContractModel(BaseModel):
    """Base of the values nested inside events."""

    model_config = ConfigDict(extra="ignore", frozen=True)
