"""The instance's policy as the admin sets it: community sharing and text-to-speech, each on or
off, with a `policy_version` that counts every change. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

Setting = Literal["community_sharing", "tts"]

# One aggregate per instance: every writer addresses the same id, so two concurrent first
# changes collide on version 1 instead of creating two settings.
INSTANCE_SETTINGS_ID = uuid5(NAMESPACE_URL, "chatshare:instance-settings")


@dataclass(frozen=True)
class PolicyState:
    """What is in force now. Both settings are off until an admin turns them on."""

    community_sharing_enabled: bool = False
    tts_enabled: bool = False
    policy_version: int = 0

    def value_of(self, setting: Setting) -> bool:
        return (
            self.community_sharing_enabled if setting == "community_sharing" else self.tts_enabled
        )


@dataclass(frozen=True)
class SettingChange:
    """One entry of the admin's change history."""

    setting: Setting
    value: bool
    changed_by: str
    changed_at: datetime
    policy_version: int


class InstanceSettings(Aggregate):
    """The admin's switches. Setting a value already in force changes nothing."""

    @staticmethod
    def create_id() -> UUID:
        return INSTANCE_SETTINGS_ID

    def __init__(self) -> None:
        self.state = PolicyState()
        self.history: list[SettingChange] = []

    # Stored events name their class by module and qualified name: renaming or moving one needs
    # a registered topic or an upcaster, or the stored history no longer loads.
    class Event(Aggregate.Event):
        pass

    class SettingChanged(Event):
        # Fixed per event type, so not stored: the type says which setting and which value.
        setting: ClassVar[Setting]
        value: ClassVar[bool]
        changed_by: str
        changed_at: datetime
        policy_version: int

        def apply(self, aggregate: Any) -> None:
            assert isinstance(aggregate, InstanceSettings)
            aggregate._record(
                SettingChange(
                    self.setting, self.value, self.changed_by, self.changed_at, self.policy_version
                )
            )

    class CommunitySharingEnabled(SettingChanged):
        setting = "community_sharing"
        value = True

    class CommunitySharingDisabled(SettingChanged):
        setting = "community_sharing"
        value = False

    class TextToSpeechEnabled(SettingChanged):
        setting = "tts"
        value = True

    class TextToSpeechDisabled(SettingChanged):
        setting = "tts"
        value = False

    def change(self, setting: Setting, value: bool, changed_by: str, changed_at: datetime) -> bool:
        """Put `setting` to `value` for the admin `changed_by`; False when it already was."""
        if changed_at.tzinfo is None or changed_at.utcoffset() is None:
            raise ValueError("changed_at must be timezone-aware")
        if not changed_by:
            raise ValueError("changed_by must name the admin")
        if self.state.value_of(setting) == value:
            return False
        self.trigger_event(
            self._event_for(setting, value),
            changed_by=changed_by,
            changed_at=changed_at,
            policy_version=self.state.policy_version + 1,
            timestamp=changed_at,
        )
        return True

    def _event_for(self, setting: Setting, value: bool) -> type[SettingChanged]:
        if setting == "community_sharing":
            return self.CommunitySharingEnabled if value else self.CommunitySharingDisabled
        return self.TextToSpeechEnabled if value else self.TextToSpeechDisabled

    def _record(self, change: SettingChange) -> None:
        if change.setting == "community_sharing":
            community_sharing, tts = change.value, self.state.tts_enabled
        else:
            community_sharing, tts = self.state.community_sharing_enabled, change.value
        self.state = PolicyState(community_sharing, tts, change.policy_version)
        self.history.append(change)
