"""The admin's policy changes on `settings.events`, by settings_service, keyed by `instance`.

Each type fixes its setting and value, so a consumer can trust either the type or the fields.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from contracts.envelope import EventEnvelope
from contracts.fields import Identifier, Version

SETTING_DESCRIPTION = "The setting that changed."
VALUE_DESCRIPTION = "Its new value."


class SettingChangedBase(EventEnvelope):
    """Base of the policy changes: who changed what, and the policy version it made."""

    setting: Literal["community_sharing", "tts"] = Field(description=SETTING_DESCRIPTION)
    value: bool = Field(description=VALUE_DESCRIPTION)
    policy_version: Version = Field(description="Counts the policy's changes, from 1.")
    changed_by: Identifier = Field(description="User id (JWT `sub`) of the admin.")
    changed_at: AwareDatetime = Field(description="When the admin changed it (RFC 3339).")


class CommunitySharingEnabled(SettingChangedBase):
    """The admin turned community sharing on."""

    type: Literal["CommunitySharingEnabled"] = "CommunitySharingEnabled"
    setting: Literal["community_sharing"] = Field(description=SETTING_DESCRIPTION)
    value: Literal[True] = Field(description=VALUE_DESCRIPTION)


class CommunitySharingDisabled(SettingChangedBase):
    """The admin turned community sharing off."""

    type: Literal["CommunitySharingDisabled"] = "CommunitySharingDisabled"
    setting: Literal["community_sharing"] = Field(description=SETTING_DESCRIPTION)
    value: Literal[False] = Field(description=VALUE_DESCRIPTION)


class TextToSpeechEnabled(SettingChangedBase):
    """The admin turned text-to-speech on for shared pages."""

    type: Literal["TextToSpeechEnabled"] = "TextToSpeechEnabled"
    setting: Literal["tts"] = Field(description=SETTING_DESCRIPTION)
    value: Literal[True] = Field(description=VALUE_DESCRIPTION)


class TextToSpeechDisabled(SettingChangedBase):
    """The admin turned text-to-speech off."""

    type: Literal["TextToSpeechDisabled"] = "TextToSpeechDisabled"
    setting: Literal["tts"] = Field(description=SETTING_DESCRIPTION)
    value: Literal[False] = Field(description=VALUE_DESCRIPTION)


SettingsEvent = Annotated[
    CommunitySharingEnabled | CommunitySharingDisabled | TextToSpeechEnabled | TextToSpeechDisabled,
    Field(discriminator="type"),
]
SETTINGS_EVENT_ADAPTER: TypeAdapter[SettingsEvent] = TypeAdapter(SettingsEvent)
