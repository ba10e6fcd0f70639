"""settings_service's use cases: read the policy, let the admin change it, show the history.

Synchronous, like eventsourcing itself: the HTTP layer calls it from worker threads.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from servicekit.event_store import ServiceApplication
from settings_service.domain.instance_settings import (
    INSTANCE_SETTINGS_ID,
    InstanceSettings,
    PolicyState,
    Setting,
    SettingChange,
)

__all__ = ["PolicyState", "SettingChange", "SettingsApplication", "TooManyConcurrentChanges"]


class TooManyConcurrentChanges(Exception):
    """Other writers kept changing the settings while this change was being saved."""


class SettingsApplication(ServiceApplication):
    """The instance's settings, event-sourced; its notification log feeds `settings.events`."""

    name = "settings"  # tables: <schema>.settings_events
    SAVE_ATTEMPTS = 8

    def features(self) -> PolicyState:
        settings = self._load()
        return PolicyState() if settings is None else settings.state

    def history(self) -> list[SettingChange]:
        """Every change, oldest first."""
        settings = self._load()
        return [] if settings is None else list(settings.history)

    def set_community_sharing(self, enabled: bool, changed_by: str) -> PolicyState:
        return self._change("community_sharing", enabled, changed_by)

    def set_tts(self, enabled: bool, changed_by: str) -> PolicyState:
        return self._change("tts", enabled, changed_by)

    def _change(self, setting: Setting, enabled: bool, changed_by: str) -> PolicyState:
        # Optimistic concurrency: a save against a stale version fails on the store's unique
        # (id, version) key; reload and decide again, since the other change may be this one.
        for attempt in range(1, self.SAVE_ATTEMPTS + 1):
            loaded = self._load()
            current = PolicyState() if loaded is None else loaded.state
            if current.value_of(setting) == enabled:
                return current  # already in force: no event, same policy_version
            settings = InstanceSettings() if loaded is None else loaded
            settings.change(setting, enabled, changed_by, datetime.now(UTC))
            try:
                self.save(settings)
            except IntegrityError:
                time.sleep(random.uniform(0, 0.005 * attempt))  # spread retrying writers apart
                continue
            return settings.state
        raise TooManyConcurrentChanges(
            f"the settings changed {self.SAVE_ATTEMPTS} times while saving this change"
        )

    def _load(self) -> InstanceSettings | None:
        try:
            settings: InstanceSettings = self.repository.get(INSTANCE_SETTINGS_ID)
        except AggregateNotFoundError:
            return None
        return settings
