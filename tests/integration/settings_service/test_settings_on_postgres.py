"""The admin's switches on the real PostgreSQL event store: the very same behaviour tests as in
memory (imported below, run here with a PostgreSQL `open_settings_app`), plus what only a real
database shows — its own schema, and stale writers across separate connection pools."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from settings_service.application.settings_app import PolicyState, SettingsApplication
from settings_service.bootstrap import EVENT_STORE_SCHEMA, open_settings_application
from tests.unit.settings_service.test_instance_settings import (
    OpenSettingsApp,
    test_a_re_sent_event_carries_the_same_event_id,
    test_a_writer_with_a_stale_view_reloads_and_loses_no_change,
    test_another_replica_sees_a_change_on_its_very_next_read,
    test_both_settings_are_off_until_an_admin_turns_them_on,
    test_concurrent_writers_lose_no_change,
    test_each_change_becomes_its_settings_events_record,
    test_every_change_of_either_setting_counts_one_policy_version,
    test_the_admin_turns_community_sharing_on,
    test_the_history_lists_every_change_oldest_first_with_who_and_when,
    test_turning_it_on_again_changes_nothing_and_records_no_event,
    test_turning_off_what_is_already_off_stores_nothing,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_re_sent_event_carries_the_same_event_id",
    "test_a_writer_with_a_stale_view_reloads_and_loses_no_change",
    "test_another_replica_sees_a_change_on_its_very_next_read",
    "test_both_settings_are_off_until_an_admin_turns_them_on",
    "test_concurrent_writers_lose_no_change",
    "test_each_change_becomes_its_settings_events_record",
    "test_every_change_of_either_setting_counts_one_policy_version",
    "test_the_admin_turns_community_sharing_on",
    "test_the_history_lists_every_change_oldest_first_with_who_and_when",
    "test_turning_it_on_again_changes_nothing_and_records_no_event",
    "test_turning_off_what_is_already_off_stores_nothing",
]


@pytest.fixture
def open_settings_app(database_url: str) -> Iterator[OpenSettingsApp]:
    """Applications with their own connection pools on one fresh database, as replicas."""
    opened: list[SettingsApplication] = []

    def open_app() -> SettingsApplication:
        opened.append(open_settings_application(database_url))
        return opened[-1]

    yield open_app
    for app in opened:
        app.close()


def test_the_events_live_in_the_services_own_schema(
    open_settings_app: OpenSettingsApp, database_url: str
) -> None:
    open_settings_app().set_tts(True, "admin-1")
    with psycopg.connect(database_url) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    assert tables == [(EVENT_STORE_SCHEMA, "settings_events")]


def test_a_restarted_service_finds_the_settings_where_it_left_them(
    open_settings_app: OpenSettingsApp,
) -> None:
    first = open_settings_app()
    first.set_community_sharing(True, "admin-1")
    first.close()
    assert open_settings_app().features() == PolicyState(True, False, 1)
