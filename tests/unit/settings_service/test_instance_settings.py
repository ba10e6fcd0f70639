"""The admin's switches: community sharing and text-to-speech are off until an admin turns them
on, every real change counts one `policy_version`, and a repeated setting changes nothing.

The behaviour tests take `open_settings_app` (a new application on the test's one store); here
the store is in memory, and tests/integration/settings_service runs the same tests on PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import ApplicationRecorder, IntegrityError
from eventsourcing.popo import POPOApplicationRecorder

from contracts.topics import SETTINGS_EVENTS
from servicekit.event_store import in_memory_env
from settings_service.adapters.settings_events import to_outbox_message
from settings_service.application.settings_app import (
    PolicyState,
    SettingsApplication,
    TooManyConcurrentChanges,
)
from settings_service.domain.instance_settings import INSTANCE_SETTINGS_ID, InstanceSettings

OpenSettingsApp = Callable[[], SettingsApplication]
NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def open_settings_app() -> Iterator[OpenSettingsApp]:
    """Applications sharing one in-memory store, as replicas share one database."""
    recorder = POPOApplicationRecorder()

    class SettingsOnSharedMemory(SettingsApplication):
        name = SettingsApplication.name

        def construct_recorder(self) -> ApplicationRecorder:
            return recorder

    opened: list[SettingsApplication] = []

    def open_app() -> SettingsApplication:
        opened.append(SettingsOnSharedMemory(env=in_memory_env()))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()


def stored_events(app: SettingsApplication) -> list[Any]:
    notifications = app.recorder.select_notifications(start=None, limit=1000)
    return [app.mapper.to_domain_event(notification) for notification in notifications]


# The domain, on its own


def test_there_is_one_settings_aggregate_per_instance() -> None:
    assert InstanceSettings().id == InstanceSettings().id == INSTANCE_SETTINGS_ID


def test_a_value_already_in_force_emits_no_event() -> None:
    settings = InstanceSettings()
    settings.collect_events()
    assert settings.change("tts", False, "admin-1", NOW) is False
    assert settings.collect_events() == []


def test_a_change_carries_who_when_and_the_next_policy_version() -> None:
    settings = InstanceSettings()
    settings.change("community_sharing", True, "admin-1", NOW)
    settings.change("tts", True, "admin-2", NOW + timedelta(minutes=1))
    _created, sharing_on, tts_on = settings.collect_events()
    assert isinstance(sharing_on, InstanceSettings.CommunitySharingEnabled)
    assert (sharing_on.changed_by, sharing_on.changed_at, sharing_on.policy_version) == (
        "admin-1",
        NOW,
        1,
    )
    assert isinstance(tts_on, InstanceSettings.TextToSpeechEnabled)
    assert (tts_on.changed_by, tts_on.policy_version) == ("admin-2", 2)
    assert settings.state == PolicyState(True, True, 2)


def test_a_change_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        InstanceSettings().change("tts", True, "admin-1", datetime(2025, 3, 1, 9, 30))


# The application: the seed's story


def test_both_settings_are_off_until_an_admin_turns_them_on(
    open_settings_app: OpenSettingsApp,
) -> None:
    app = open_settings_app()
    assert app.features() == PolicyState(
        community_sharing_enabled=False, tts_enabled=False, policy_version=0
    )
    assert app.history() == []


def test_turning_off_what_is_already_off_stores_nothing(open_settings_app: OpenSettingsApp) -> None:
    app = open_settings_app()
    assert app.set_community_sharing(False, "admin-1") == PolicyState(False, False, 0)
    assert app.set_tts(False, "admin-1") == PolicyState(False, False, 0)
    assert stored_events(app) == []


def test_the_admin_turns_community_sharing_on(open_settings_app: OpenSettingsApp) -> None:
    app = open_settings_app()
    assert app.set_community_sharing(True, "admin-1") == PolicyState(True, False, 1)
    assert app.features() == PolicyState(True, False, 1)


def test_turning_it_on_again_changes_nothing_and_records_no_event(
    open_settings_app: OpenSettingsApp,
) -> None:
    app = open_settings_app()
    app.set_community_sharing(True, "admin-1")
    events_before = len(stored_events(app))
    assert app.set_community_sharing(True, "admin-2") == PolicyState(True, False, 1)
    assert len(stored_events(app)) == events_before
    assert len(app.history()) == 1


def test_every_change_of_either_setting_counts_one_policy_version(
    open_settings_app: OpenSettingsApp,
) -> None:
    app = open_settings_app()
    assert app.set_community_sharing(True, "admin-1").policy_version == 1
    assert app.set_community_sharing(True, "admin-1").policy_version == 1
    assert app.set_community_sharing(False, "admin-1") == PolicyState(False, False, 2)
    assert app.set_tts(True, "admin-2") == PolicyState(False, True, 3)
    assert app.features() == PolicyState(False, True, 3)


def test_the_history_lists_every_change_oldest_first_with_who_and_when(
    open_settings_app: OpenSettingsApp,
) -> None:
    app = open_settings_app()
    before = datetime.now(UTC)
    app.set_community_sharing(True, "admin-1")
    app.set_community_sharing(True, "admin-1")  # no change, no entry
    app.set_tts(True, "admin-2")
    app.set_community_sharing(False, "admin-2")
    after = datetime.now(UTC)

    history = app.history()
    assert [(c.setting, c.value, c.changed_by, c.policy_version) for c in history] == [
        ("community_sharing", True, "admin-1", 1),
        ("tts", True, "admin-2", 2),
        ("community_sharing", False, "admin-2", 3),
    ]
    moments = [change.changed_at for change in history]
    assert all(moment.tzinfo is not None for moment in moments)
    assert before <= moments[0] <= moments[1] <= moments[2] <= after


def test_another_replica_sees_a_change_on_its_very_next_read(
    open_settings_app: OpenSettingsApp,
) -> None:
    writer, reader = open_settings_app(), open_settings_app()
    assert reader.features().tts_enabled is False
    writer.set_tts(True, "admin-1")
    assert reader.features() == PolicyState(False, True, 1)


@pytest.mark.parametrize("earlier_change", [False, True], ids=["first-write", "later-write"])
def test_a_writer_with_a_stale_view_reloads_and_loses_no_change(
    open_settings_app: OpenSettingsApp, monkeypatch: pytest.MonkeyPatch, earlier_change: bool
) -> None:
    alice, bob = open_settings_app(), open_settings_app()
    if earlier_change:
        alice.set_community_sharing(True, "alice")
        alice.set_community_sharing(False, "alice")
    load = alice.repository.get
    bob_has_written = threading.Event()

    def load_then_let_bob_write_first(*args: Any, **kwargs: Any) -> Any:
        try:
            return load(*args, **kwargs)
        finally:  # Alice now holds what was true a moment ago
            if not bob_has_written.is_set():
                bob_has_written.set()
                bob.set_tts(True, "bob")

    monkeypatch.setattr(alice.repository, "get", load_then_let_bob_write_first)
    base = 2 if earlier_change else 0

    assert alice.set_community_sharing(True, "alice") == PolicyState(True, True, base + 2)
    assert bob.features() == PolicyState(True, True, base + 2)
    assert [(c.changed_by, c.policy_version) for c in bob.history()][-2:] == [
        ("bob", base + 1),
        ("alice", base + 2),
    ]


def test_concurrent_writers_lose_no_change(open_settings_app: OpenSettingsApp) -> None:
    alice, bob = open_settings_app(), open_settings_app()
    flips = 10

    def alice_flips_sharing() -> None:
        for flip in range(flips):
            alice.set_community_sharing(flip % 2 == 0, "alice")

    def bob_flips_tts() -> None:
        for flip in range(flips):
            bob.set_tts(flip % 2 == 0, "bob")

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(alice_flips_sharing), pool.submit(bob_flips_tts)]:
            done.result()

    history = alice.history()
    assert [change.policy_version for change in history] == list(range(1, 2 * flips + 1))
    assert sorted(change.changed_by for change in history) == ["alice"] * flips + ["bob"] * flips
    assert bob.features() == PolicyState(False, False, 2 * flips)


def test_a_writer_that_keeps_losing_the_race_gives_up_with_a_reason(
    open_settings_app: OpenSettingsApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_settings_app()

    def always_stale(*_: Any, **__: Any) -> Any:
        raise IntegrityError("stale version")

    monkeypatch.setattr(app, "save", always_stale)
    with pytest.raises(TooManyConcurrentChanges):
        app.set_tts(True, "admin-1")


# The outbox: what the relay publishes on settings.events


def test_each_change_becomes_its_settings_events_record(open_settings_app: OpenSettingsApp) -> None:
    app = open_settings_app()
    app.set_community_sharing(True, "admin-1")
    app.set_tts(True, "admin-2")
    app.set_tts(False, "admin-2")
    app.set_community_sharing(False, "admin-1")

    events = stored_events(app)
    messages = [to_outbox_message(event) for event in events]
    assert messages[0] is None  # the aggregate's creation is internal
    published = [message for message in messages if message is not None]
    assert {(m.topic, m.key) for m in published} == {(SETTINGS_EVENTS, "instance")}
    values = [json.loads(m.value) for m in published]
    assert [(v["type"], v["setting"], v["value"], v["policy_version"]) for v in values] == [
        ("CommunitySharingEnabled", "community_sharing", True, 1),
        ("TextToSpeechEnabled", "tts", True, 2),
        ("TextToSpeechDisabled", "tts", False, 3),
        ("CommunitySharingDisabled", "community_sharing", False, 4),
    ]
    first = values[0]
    assert set(first) >= {"event_id", "type", "schema_version", "occurred_at"}
    assert first["schema_version"] == 1
    assert first["changed_by"] == "admin-1"
    assert UUID(first["event_id"]) == published[0].event_id
    assert datetime.fromisoformat(first["changed_at"]).tzinfo is not None
    assert datetime.fromisoformat(first["occurred_at"]) == app.history()[0].changed_at
    assert len({m.event_id for m in published}) == len(published)


def test_a_re_sent_event_carries_the_same_event_id(open_settings_app: OpenSettingsApp) -> None:
    app = open_settings_app()
    app.set_tts(True, "admin-1")
    first_read = [to_outbox_message(event) for event in stored_events(app)]
    second_read = [to_outbox_message(event) for event in stored_events(open_settings_app())]
    assert first_read == second_read
