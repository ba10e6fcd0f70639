"""Sharing a chat, as the seed tells it: Copy Link makes a link to a static snapshot; messages sent
later appear only after Update and Copy Link, which keeps the link; Delete this link kills it,
and sharing again makes a new one. Only the owner shares; an admin may delete.

The behaviour tests take `open_sharing_app` (a new application on the test's one store); here
the store is in memory, and tests/integration/share_service runs the same tests on PostgreSQL.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest

from share_service.application.sharing import SharingApplication
from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.errors import (
    ChatNotFound,
    LinkNotFound,
    NotChatOwner,
    NotLinkOwner,
    SnapshotTooLarge,
)
from share_service.domain.share_link import ShareLink
from share_service.domain.snapshot import snapshot_of
from tests.unit.share_service.chat_stories import ChatStory
from tests.unit.share_service.sharing_apps import OpenSharingApp, stored_events


def kyoto_chat() -> ChatStory:
    story = ChatStory(chat_id="kyoto", owner_id="alice", title="Kyoto trip")
    story.say("Where should I stay in Kyoto?")
    story.answer("Gion is lovely in spring.")
    return story


def visible_contents(snapshot: Any) -> list[str]:
    return [message["content"] for message in snapshot["messages"]]


# Copy Link


def test_copy_link_makes_a_link_to_a_snapshot_of_the_chat(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()

    shared = app.share_chat(story.chat, "alice")

    assert shared.created is True
    link = shared.link
    assert (link.chat_id, link.owner_id, link.version, link.chat_version) == (
        "kyoto",
        "alice",
        1,
        story.chat.chat_version,
    )
    assert link.snapshot == snapshot_of(story.chat)
    assert link.created_at == link.updated_at
    assert link.is_live
    assert app.get_link(link.share_id) == link
    assert app.live_link_of_chat("kyoto") == link


def test_a_chat_never_shared_has_no_link(open_sharing_app: OpenSharingApp) -> None:
    app = open_sharing_app()
    assert app.live_link_of_chat("kyoto") is None
    assert app.get_link("no-such-link-000000000000000") is None


def test_messages_sent_after_sharing_appear_only_after_update(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    share_id = app.share_chat(story.chat, "alice").link.share_id

    story.say("And where to eat?")
    link = app.get_link(share_id)
    assert link is not None
    assert visible_contents(link.snapshot) == [
        "Where should I stay in Kyoto?",
        "Gion is lovely in spring.",
    ]

    updated = app.update_snapshot(share_id, story.chat, "alice")
    assert updated.share_id == share_id
    assert visible_contents(updated.snapshot)[-1] == "And where to eat?"
    assert app.get_link(share_id) == updated


def test_update_and_copy_link_keeps_the_share_id_and_counts_a_version(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    first = app.share_chat(story.chat, "alice").link

    story.say("Thanks!")
    second = app.update_snapshot(first.share_id, story.chat, "alice")
    story.rename("Kyoto, spring")
    third = app.update_snapshot(first.share_id, story.chat, "alice")

    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert {first.share_id, second.share_id, third.share_id} == {first.share_id}
    assert third.chat_version == story.chat.chat_version
    assert third.snapshot["title"] == "Kyoto, spring"
    assert third.created_at == first.created_at
    assert first.updated_at <= second.updated_at <= third.updated_at


def test_sharing_a_shared_chat_again_takes_a_new_snapshot_on_the_same_link(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    first = app.share_chat(story.chat, "alice")
    story.say("One more question")
    again = app.share_chat(story.chat, "alice")

    assert again.created is False
    assert again.link.share_id == first.link.share_id
    assert again.link.version == 2
    assert visible_contents(again.link.snapshot)[-1] == "One more question"


def test_a_decision_left_unsaved_changes_nothing_a_later_command_reads(
    open_sharing_app: OpenSharingApp,
) -> None:
    """Decisions change copies of the cached aggregates (shallow ones: `copy_for_a_command`);
    one that is never saved — its batch failed, say — must leave the cache as it was."""
    app = open_sharing_app()
    story = kyoto_chat()
    first = app.share_chat(story.chat, "alice")
    story.say("A question never shared")
    abandoned = app.decide_share(story.chat, "alice")
    assert abandoned.result.link.version == 2
    assert all(aggregate.pending_events for aggregate in abandoned.aggregates)

    story.say("The question shared")
    again = app.share_chat(story.chat, "alice")
    assert again.link.version == 2
    assert visible_contents(again.link.snapshot)[-2:] == [
        "A question never shared",
        "The question shared",
    ]
    link = app.get_link(first.link.share_id)
    assert link is not None
    assert link.version == 2
    assert [type(e).__name__ for e in stored_events(app)].count("SnapshotUpdated") == 1


# Delete this link


def test_a_deleted_link_is_dead_at_once_and_sharing_again_makes_a_new_one(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    old = app.share_chat(story.chat, "alice").link

    deleted = app.delete_link(old.share_id, "alice", is_admin=False)
    assert (deleted.deleted_reason, deleted.deleted_by, deleted.version) == ("owner", "alice", 2)
    assert not deleted.is_live
    assert app.get_link(old.share_id) is None
    assert app.live_link_of_chat("kyoto") is None

    new = app.share_chat(story.chat, "alice")
    assert new.created is True
    assert new.link.share_id != old.share_id
    assert new.link.version == 1
    assert app.live_link_of_chat("kyoto") == new.link
    assert app.get_link(old.share_id) is None


def test_a_deleted_link_can_be_neither_deleted_again_nor_updated(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    share_id = app.share_chat(story.chat, "alice").link.share_id
    app.delete_link(share_id, "alice", is_admin=False)

    with pytest.raises(LinkNotFound):
        app.delete_link(share_id, "alice", is_admin=False)
    with pytest.raises(LinkNotFound):
        app.update_snapshot(share_id, story.chat, "alice")
    with pytest.raises(LinkNotFound):
        app.delete_link("never-was-a-link-000000000000", "admin", is_admin=True)


@pytest.mark.parametrize(
    ("deleter", "is_admin", "reason"),
    [("root", True, "admin"), ("alice", True, "owner")],
    ids=["admin", "owner-who-is-admin"],
)
def test_an_admin_can_delete_anyones_link(
    open_sharing_app: OpenSharingApp, deleter: str, is_admin: bool, reason: str
) -> None:
    app = open_sharing_app()
    share_id = app.share_chat(kyoto_chat().chat, "alice").link.share_id

    deleted = app.delete_link(share_id, deleter, is_admin=is_admin)

    assert (deleted.deleted_reason, deleted.deleted_by) == (reason, deleter)
    assert app.get_link(share_id) is None
    assert app.live_link_of_chat("kyoto") is None


# Only the owner


def test_another_user_can_neither_share_nor_update_nor_delete(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    with pytest.raises(NotChatOwner):
        app.share_chat(story.chat, "mallory")
    assert app.live_link_of_chat("kyoto") is None

    link = app.share_chat(story.chat, "alice").link
    with pytest.raises(NotLinkOwner):
        app.update_snapshot(link.share_id, story.chat, "mallory")
    with pytest.raises(NotLinkOwner):
        app.delete_link(link.share_id, "mallory", is_admin=False)
    with pytest.raises(NotChatOwner):
        app.request_community_share(story.chat, "mallory", "public", policy_version=1)
    assert app.get_link(link.share_id) == link


# Sizes and ids


def test_a_snapshot_over_the_limit_is_refused_and_changes_nothing(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app(max_snapshot_bytes=2_000)
    story = kyoto_chat()
    link = app.share_chat(story.chat, "alice").link

    story.say("x" * 2_000)
    with pytest.raises(SnapshotTooLarge) as refused:
        app.update_snapshot(link.share_id, story.chat, "alice")
    assert refused.value.limit == 2_000
    assert refused.value.size > 2_000
    with pytest.raises(SnapshotTooLarge):
        app.share_chat(story.chat, "alice")
    assert app.get_link(link.share_id) == link

    big = ChatStory(chat_id="big", owner_id="alice")
    big.say("y" * 2_000)
    with pytest.raises(SnapshotTooLarge):
        app.share_chat(big.chat, "alice")
    assert app.live_link_of_chat("big") is None


def test_share_ids_are_unique_url_safe_and_carry_at_least_128_random_bits(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    share_ids = []
    for n in range(40):
        story = ChatStory(chat_id=f"chat-{n}", owner_id="alice")
        story.say("hi")
        share_ids.append(app.share_chat(story.chat, "alice").link.share_id)

    assert len(set(share_ids)) == len(share_ids)
    for share_id in share_ids:
        assert set(share_id) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
        assert len(base64.urlsafe_b64decode(share_id + "=" * (-len(share_id) % 4))) * 8 >= 128


# The chat is deleted


def test_deleting_the_chat_deletes_its_link_and_it_is_never_shared_again(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    share_id = app.share_chat(story.chat, "alice").link.share_id
    stale_mirror = story.chat

    [deleted] = app.delete_links_of_chat("kyoto")
    assert (deleted.share_id, deleted.deleted_reason, deleted.deleted_by) == (
        share_id,
        "chat_deleted",
        "system",
    )
    assert app.get_link(share_id) is None
    with pytest.raises(ChatNotFound):
        app.share_chat(stale_mirror, "alice")  # a request that read the mirror just before
    story.delete()
    with pytest.raises(ChatNotFound):
        app.share_chat(story.chat, "alice")

    events_before = len(stored_events(app))
    assert app.delete_links_of_chat("kyoto") == []  # a redelivered ChatDeleted changes nothing
    assert len(stored_events(app)) == events_before


def test_deleting_a_chat_never_shared_only_closes_it(open_sharing_app: OpenSharingApp) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    assert app.delete_links_of_chat("kyoto") == []
    with pytest.raises(ChatNotFound):
        app.share_chat(story.chat, "alice")


# Share to the community


def test_a_community_share_request_carries_its_own_snapshot_and_needs_no_link(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()

    request_id = app.request_community_share(
        story.chat, "alice", "public_full_history", policy_version=3
    )

    assert UUID(request_id)
    [requested] = [e for e in stored_events(app) if isinstance(e, CommunityShareRequest.Event)]
    assert isinstance(requested, CommunityShareRequest.CommunityShareRequested)
    assert (requested.request_id, requested.chat_id, requested.owner_id) == (
        request_id,
        "kyoto",
        "alice",
    )
    assert (requested.access, requested.policy_version) == ("public_full_history", 3)
    assert requested.snapshot == snapshot_of(story.chat)
    assert app.live_link_of_chat("kyoto") is None


def test_a_community_share_with_an_unknown_access_is_refused(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    with pytest.raises(ValueError, match="access"):
        app.request_community_share(kyoto_chat().chat, "alice", "everyone", policy_version=1)
    assert stored_events(app) == []


# What the outbox relay will publish


def test_each_change_of_a_link_is_one_self_contained_event(
    open_sharing_app: OpenSharingApp,
) -> None:
    app = open_sharing_app()
    story = kyoto_chat()
    share_id = app.share_chat(story.chat, "alice").link.share_id
    app.update_snapshot(share_id, story.chat, "alice")
    app.delete_link(share_id, "alice", is_admin=False)

    link_events = [e for e in stored_events(app) if isinstance(e, ShareLink.Event)]
    assert [(type(e).__name__, e.originator_version) for e in link_events] == [
        ("ShareCreated", 1),
        ("SnapshotUpdated", 2),
        ("LinkDeleted", 3),
    ]
    assert {(e.share_id, e.chat_id, e.owner_id) for e in link_events} == {
        (share_id, "kyoto", "alice")
    }
    created, updated, deleted = link_events
    assert isinstance(created, ShareLink.ShareCreated)
    assert isinstance(updated, ShareLink.SnapshotUpdated)
    assert isinstance(deleted, ShareLink.LinkDeleted)
    assert created.snapshot == updated.snapshot == snapshot_of(story.chat)
    assert (deleted.reason, deleted.deleted_by) == ("owner", "alice")


# Concurrent requests: one live link per chat


def test_a_writer_with_a_stale_view_of_the_chat_reloads_and_shares_the_same_link(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_tab, alice_other_tab = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    other_tab_result = []
    load_then_let_the_other_tab_share_first = _before_first_load_returns(
        alice_tab, lambda: other_tab_result.append(alice_other_tab.share_chat(story.chat, "alice"))
    )
    monkeypatch.setattr(alice_tab, "_load", load_then_let_the_other_tab_share_first)

    shared = alice_tab.share_chat(story.chat, "alice")

    [first] = other_tab_result
    assert first.created is True
    assert shared.created is False
    assert shared.link.share_id == first.link.share_id
    assert shared.link.version == 2


def test_a_share_racing_a_delete_makes_a_new_link(
    open_sharing_app: OpenSharingApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, admin = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    old = alice.share_chat(story.chat, "alice").link
    monkeypatch.setattr(
        alice,
        "_load",
        _before_first_load_returns(
            alice, lambda: admin.delete_link(old.share_id, "root", is_admin=True)
        ),
    )

    shared = alice.share_chat(story.chat, "alice")

    assert shared.created is True
    assert shared.link.share_id != old.share_id
    assert admin.live_link_of_chat("kyoto") == shared.link


# Each replica keeps the aggregates it used in memory; another replica's writes make that copy
# stale, and the replica must still answer as if it had read the store.


def test_a_replica_whose_link_was_deleted_elsewhere_shares_anew(
    open_sharing_app: OpenSharingApp,
) -> None:
    here, elsewhere = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    old = here.share_chat(story.chat, "alice").link
    elsewhere.delete_link(old.share_id, "alice", is_admin=False)

    shared = here.share_chat(story.chat, "alice")

    assert shared.created is True
    assert shared.link.share_id != old.share_id
    assert elsewhere.live_link_of_chat("kyoto") == shared.link
    assert elsewhere.get_link(old.share_id) is None


def test_a_replica_whose_link_was_updated_elsewhere_counts_on_from_the_stored_version(
    open_sharing_app: OpenSharingApp,
) -> None:
    here, elsewhere = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    link = here.share_chat(story.chat, "alice").link
    story.say("And in autumn?")
    elsewhere.update_snapshot(link.share_id, story.chat, "alice")
    story.answer("Arashiyama, for the maples.")

    updated = here.update_snapshot(link.share_id, story.chat, "alice")

    assert updated.version == 3
    assert visible_contents(updated.snapshot)[-1] == "Arashiyama, for the maples."
    assert elsewhere.get_link(link.share_id) == updated


def test_a_replica_cannot_update_or_delete_a_link_deleted_elsewhere(
    open_sharing_app: OpenSharingApp,
) -> None:
    here, elsewhere = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    link = here.share_chat(story.chat, "alice").link
    elsewhere.delete_link(link.share_id, "root", is_admin=True)

    with pytest.raises(LinkNotFound):
        here.update_snapshot(link.share_id, story.chat, "alice")
    with pytest.raises(LinkNotFound):
        here.delete_link(link.share_id, "alice", is_admin=False)
    link_events = [e for e in stored_events(here) if isinstance(e, ShareLink.Event)]
    assert [type(e).__name__ for e in link_events] == ["ShareCreated", "LinkDeleted"]


def test_a_replica_that_missed_a_new_link_deletes_it_and_frees_the_chat(
    open_sharing_app: OpenSharingApp,
) -> None:
    here, elsewhere = open_sharing_app(), open_sharing_app()
    story = kyoto_chat()
    first = here.share_chat(story.chat, "alice").link
    here.delete_link(first.share_id, "alice", is_admin=False)
    second = elsewhere.share_chat(story.chat, "alice").link  # here still has the chat unshared

    here.delete_link(second.share_id, "alice", is_admin=False)

    assert elsewhere.live_link_of_chat("kyoto") is None
    third = here.share_chat(story.chat, "alice")
    assert third.created is True
    assert elsewhere.live_link_of_chat("kyoto") == third.link


def test_concurrent_first_shares_of_one_chat_make_one_link(
    open_sharing_app: OpenSharingApp,
) -> None:
    replicas = [open_sharing_app() for _ in range(4)]
    story = kyoto_chat()
    ready = threading.Barrier(len(replicas))

    def share(app: SharingApplication) -> Any:
        ready.wait()
        return app.share_chat(story.chat, "alice")

    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        results = list(pool.map(share, replicas))

    assert sum(result.created for result in results) == 1
    assert len({result.link.share_id for result in results}) == 1
    assert sorted(result.link.version for result in results) == [1, 2, 3, 4]
    assert replicas[0].live_link_of_chat("kyoto") == max(
        (result.link for result in results), key=lambda link: link.version
    )


def _before_first_load_returns(
    app: SharingApplication, other_writer: Callable[[], object]
) -> Callable[..., Any]:
    """A decision's load that lets another writer act once, right after this app's first
    load: the app then holds what was true a moment ago."""
    load = app._load
    done = threading.Event()

    def load_then_let_the_other_write(*args: Any, **kwargs: Any) -> Any:
        try:
            return load(*args, **kwargs)
        finally:
            if not done.is_set():
                done.set()
                other_writer()

    return load_then_let_the_other_write
