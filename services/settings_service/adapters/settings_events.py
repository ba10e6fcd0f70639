"""The Kafka record of each stored settings event (INTERFACE.md §5, `settings.events`), for the
outbox relay. The aggregate's creation is internal and is not published."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid5

from contracts import (
    CommunitySharingDisabled,
    CommunitySharingEnabled,
    SettingsEvent,
    TextToSpeechDisabled,
    TextToSpeechEnabled,
    encode_event,
)
from contracts.topics import SETTINGS_EVENTS
from servicekit.outbox_message import OutboxMessage
from settings_service.domain.instance_settings import InstanceSettings

SETTINGS_KEY = "instance"


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The same id every time one stored event is read, so a re-sent event is a duplicate."""
    return uuid5(originator_id, str(originator_version))


CONTRACTS: dict[str, Callable[..., SettingsEvent]] = {
    model.__name__: model
    for model in (
        CommunitySharingEnabled, CommunitySharingDisabled, TextToSpeechEnabled, TextToSpeechDisabled,
    )
}  # fmt: skip


def to_outbox_message(domain_event: object) -> OutboxMessage | None:
    if not isinstance(domain_event, InstanceSettings.SettingChanged):
        return None
    event_id = event_id_of(domain_event.originator_id, domain_event.originator_version)
    contract = CONTRACTS[type(domain_event).__name__]
    event = contract(
        event_id=event_id,
        occurred_at=domain_event.timestamp,
        setting=domain_event.setting,
        value=domain_event.value,
        policy_version=domain_event.policy_version,
        changed_by=domain_event.changed_by,
        changed_at=domain_event.changed_at,
    )
    return OutboxMessage(
        topic=SETTINGS_EVENTS, key=SETTINGS_KEY, value=encode_event(event), event_id=event_id
    )
