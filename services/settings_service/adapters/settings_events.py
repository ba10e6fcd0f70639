"""The Kafka record of each stored settings event (INTERFACE.md §5, `settings.events`), for the
outbox relay. The aggregate's creation is internal and is not published."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID, uuid5

from contracts.topics import SETTINGS_EVENTS
from servicekit.outbox_message import OutboxMessage
from settings_service.domain.instance_settings import InstanceSettings

SETTINGS_KEY = "instance"
SCHEMA_VERSION = 1


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The same id every time one stored event is read, so a re-sent event is a duplicate."""
    return uuid5(originator_id, str(originator_version))


def to_outbox_message(domain_event: object) -> OutboxMessage | None:
    if not isinstance(domain_event, InstanceSettings.SettingChanged):
        return None
    event_id = event_id_of(domain_event.originator_id, domain_event.originator_version)
    # TODO(contracts): build contracts.settings_events.<type>(...) and contracts.encode_event()
    # once contracts/settings_events.py lands; the fields below are the contract's.
    value = {
        "event_id": str(event_id),
        "type": type(domain_event).__name__,
        "schema_version": SCHEMA_VERSION,
        "occurred_at": _rfc3339(domain_event.timestamp),
        "setting": domain_event.setting,
        "value": domain_event.value,
        "policy_version": domain_event.policy_version,
        "changed_by": domain_event.changed_by,
        "changed_at": _rfc3339(domain_event.changed_at),
    }
    return OutboxMessage(
        topic=SETTINGS_EVENTS,
        key=SETTINGS_KEY,
        value=json.dumps(value, separators=(",", ":")).encode(),
        event_id=event_id,
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
