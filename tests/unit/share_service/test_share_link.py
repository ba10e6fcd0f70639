"""The aggregates on their own: ids found again from share and chat ids, one version per change
the outside sees, and a deleted link that stays dead."""

from __future__ import annotations

from uuid import UUID

import pytest

from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.errors import ChatNotFound, LinkGone, LinkNotFound, NotLinkOwner
from share_service.domain.share_link import (
    ChatShares,
    ShareLink,
    chat_shares_id,
    new_share_id,
    share_link_id,
)
from share_service.domain.snapshot import Snapshot

EMPTY: Snapshot = {"title": "", "messages": [], "history": {"messages": {}, "current_id": None}}


def new_link(share_id: str = "s" * 32) -> ShareLink:
    return ShareLink(share_id, "chat-1", "alice", 3, EMPTY)


def test_a_link_is_found_again_from_its_share_id_and_a_chat_from_its_id() -> None:
    share_id = new_share_id()
    assert new_link(share_id).id == share_link_id(share_id)
    assert ChatShares("chat-1").id == chat_shares_id("chat-1") == chat_shares_id("chat-1")
    assert chat_shares_id("x") != share_link_id("x")  # one namespace each


def test_every_change_of_a_link_counts_one_version() -> None:
    link = new_link()
    assert link.version == 1
    link.update_snapshot(4, {**EMPTY, "title": "renamed"})
    assert (link.version, link.chat_version, link.snapshot["title"]) == (2, 4, "renamed")
    link.delete("alice", is_admin=False)
    assert (link.version, link.is_live, link.deleted_reason) == (3, False, "owner")
    assert [event.originator_version for event in link.collect_events()] == [1, 2, 3]


def test_a_deleted_link_can_be_neither_updated_nor_deleted_again() -> None:
    link = new_link()
    link.delete_with_chat()
    assert (link.deleted_reason, link.deleted_by) == ("chat_deleted", "system")
    with pytest.raises(LinkGone):
        link.update_snapshot(5, EMPTY)
    with pytest.raises(LinkNotFound):  # the same 404 as an unknown link
        link.delete("root", is_admin=True)
    assert link.version == 2


def test_only_the_owner_or_an_admin_deletes_a_link() -> None:
    link = new_link()
    link.collect_events()
    with pytest.raises(NotLinkOwner):
        link.delete("mallory", is_admin=False)
    assert link.collect_events() == []
    link.delete("root", is_admin=True)
    assert (link.deleted_reason, link.deleted_by) == ("admin", "root")


def test_a_chat_has_at_most_one_live_link_and_none_once_deleted() -> None:
    shares = ChatShares("chat-1")
    shares.choose_live_link("first")
    with pytest.raises(ValueError, match="already has the live link first"):
        shares.choose_live_link("second")
    with pytest.raises(ValueError, match="still has the live link"):
        shares.close_chat()
    shares.clear_live_link("first")
    shares.close_chat()
    with pytest.raises(ChatNotFound):
        shares.choose_live_link("third")
    shares.close_chat()  # already closed: nothing new
    assert [type(e).__name__ for e in shares.collect_events()] == [
        "Created",
        "LiveLinkChosen",
        "LiveLinkCleared",
        "ChatClosed",
    ]


def test_a_community_share_request_is_identified_by_its_request_id() -> None:
    request = CommunityShareRequest.request("chat-1", "alice", "private", 2, EMPTY)
    assert request.id == UUID(request.request_id)
    [requested] = request.collect_events()
    assert isinstance(requested, CommunityShareRequest.CommunityShareRequested)
    assert (requested.access, requested.policy_version) == ("private", 2)


@pytest.mark.parametrize(
    ("access", "policy_version", "why"),
    [("everyone", 1, "access must be one of"), ("public", 0, "policy version")],
)
def test_a_community_share_request_needs_a_known_access_and_a_policy_version(
    access: str, policy_version: int, why: str
) -> None:
    with pytest.raises(ValueError, match=why):
        CommunityShareRequest.request("chat-1", "alice", access, policy_version, EMPTY)
