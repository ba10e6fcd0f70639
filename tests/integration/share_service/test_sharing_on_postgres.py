"""Sharing on the real PostgreSQL event store: the very same behaviour tests as in memory
(imported below, run here with a PostgreSQL `open_sharing_app`), plus what only a real database
shows — its own schema, restarts, large snapshots, and concurrent replicas with their own
connection pools racing to share one chat."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from share_service.application.sharing import SharingApplication
from share_service.domain.snapshot import snapshot_of
from tests.integration.share_service.conftest import EVENT_STORE_SCHEMA
from tests.unit.share_service.chat_stories import ChatStory
from tests.unit.share_service.sharing_apps import OpenSharingApp
from tests.unit.share_service.test_sharing import (
    test_a_chat_never_shared_has_no_link,
    test_a_community_share_request_carries_its_own_snapshot_and_needs_no_link,
    test_a_community_share_with_an_unknown_access_is_refused,
    test_a_deleted_link_can_be_neither_deleted_again_nor_updated,
    test_a_deleted_link_is_dead_at_once_and_sharing_again_makes_a_new_one,
    test_a_share_racing_a_delete_makes_a_new_link,
    test_a_snapshot_over_the_limit_is_refused_and_changes_nothing,
    test_a_writer_with_a_stale_view_of_the_chat_reloads_and_shares_the_same_link,
    test_an_admin_can_delete_anyones_link,
    test_another_user_can_neither_share_nor_update_nor_delete,
    test_concurrent_first_shares_of_one_chat_make_one_link,
    test_copy_link_makes_a_link_to_a_snapshot_of_the_chat,
    test_deleting_a_chat_never_shared_only_closes_it,
    test_deleting_the_chat_deletes_its_link_and_it_is_never_shared_again,
    test_each_change_of_a_link_is_one_self_contained_event,
    test_messages_sent_after_sharing_appear_only_after_update,
    test_share_ids_are_unique_url_safe_and_carry_at_least_128_random_bits,
    test_sharing_a_shared_chat_again_takes_a_new_snapshot_on_the_same_link,
    test_update_and_copy_link_keeps_the_share_id_and_counts_a_version,
)

pytestmark = pytest.mark.integration

__all__ = [
    "test_a_chat_never_shared_has_no_link",
    "test_a_community_share_request_carries_its_own_snapshot_and_needs_no_link",
    "test_a_community_share_with_an_unknown_access_is_refused",
    "test_a_deleted_link_can_be_neither_deleted_again_nor_updated",
    "test_a_deleted_link_is_dead_at_once_and_sharing_again_makes_a_new_one",
    "test_a_share_racing_a_delete_makes_a_new_link",
    "test_a_snapshot_over_the_limit_is_refused_and_changes_nothing",
    "test_a_writer_with_a_stale_view_of_the_chat_reloads_and_shares_the_same_link",
    "test_an_admin_can_delete_anyones_link",
    "test_another_user_can_neither_share_nor_update_nor_delete",
    "test_concurrent_first_shares_of_one_chat_make_one_link",
    "test_copy_link_makes_a_link_to_a_snapshot_of_the_chat",
    "test_deleting_a_chat_never_shared_only_closes_it",
    "test_deleting_the_chat_deletes_its_link_and_it_is_never_shared_again",
    "test_each_change_of_a_link_is_one_self_contained_event",
    "test_messages_sent_after_sharing_appear_only_after_update",
    "test_share_ids_are_unique_url_safe_and_carry_at_least_128_random_bits",
    "test_sharing_a_shared_chat_again_takes_a_new_snapshot_on_the_same_link",
    "test_update_and_copy_link_keeps_the_share_id_and_counts_a_version",
]


def test_the_events_live_in_the_services_own_schema(
    open_sharing_app: OpenSharingApp, database_url: str
) -> None:
    story = ChatStory()
    story.say("hi")
    open_sharing_app().share_chat(story.chat, "alice")
    with psycopg.connect(database_url) as connection:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    assert tables == [(EVENT_STORE_SCHEMA, "share_events")]


def test_a_restarted_service_finds_its_links_where_it_left_them(
    open_sharing_app: OpenSharingApp,
) -> None:
    story = ChatStory()
    story.say("hi")
    first = open_sharing_app()
    link = first.share_chat(story.chat, "alice").link
    first.close()

    restarted = open_sharing_app()
    assert restarted.get_link(link.share_id) == link
    assert restarted.live_link_of_chat(story.chat_id) == link


def test_a_large_snapshot_in_any_script_comes_back_intact(
    open_sharing_app: OpenSharingApp,
) -> None:
    story = ChatStory(title="長い会話 🎌")
    for n in range(50):
        story.say(f"質問 {n}: " + "é漢字🙂" * 500)
        story.answer(f'Answer {n} with "quotes", \\backslashes\\ and \u0000 nothing else')
    app = open_sharing_app(max_snapshot_bytes=2 * 1024 * 1024)
    share_id = app.share_chat(story.chat, "alice").link.share_id

    link = open_sharing_app().get_link(share_id)
    assert link is not None
    assert link.snapshot == snapshot_of(story.chat)


def test_many_replicas_sharing_one_chat_at_once_all_get_its_one_link(
    open_sharing_app: OpenSharingApp,
) -> None:
    replicas = [open_sharing_app() for _ in range(12)]
    story = ChatStory()
    story.say("hi")
    ready = threading.Barrier(len(replicas))

    def share(app: SharingApplication) -> Any:
        ready.wait()
        return app.share_chat(story.chat, "alice")

    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        results = list(pool.map(share, replicas))

    assert [result.created for result in results].count(True) == 1
    assert len({result.link.share_id for result in results}) == 1
    assert sorted(result.link.version for result in results) == list(range(1, 13))
