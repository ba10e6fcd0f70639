"""What the community site receives for each access level (INTERFACE.md §6): every branch only
with `public_full_history`."""

from __future__ import annotations

import pytest

from community_publisher.domain.upload_request import (
    Access,
    UploadRequest,
    chat_for_access,
    upload_body,
)
from tests.community_requests import branched_snapshot

SNAPSHOT = branched_snapshot("Trip").model_dump(mode="json")


@pytest.mark.parametrize("access", ["private", "public"])
def test_private_and_public_carry_the_visible_branch_only(access: Access) -> None:
    chat = chat_for_access(SNAPSHOT, access)
    assert chat == {"title": "Trip", "messages": SNAPSHOT["messages"]}
    assert [m["content"] for m in chat["messages"]] == ["Where shall we go?", "Lisbon!"]


def test_public_full_history_carries_every_branch() -> None:
    chat = chat_for_access(SNAPSHOT, "public_full_history")
    assert set(chat) == {"title", "messages", "history"}
    assert chat["messages"] == SNAPSHOT["messages"]
    contents = {m["content"] for m in chat["history"]["messages"].values()}
    assert contents == {"Where shall we go?", "Porto.", "Lisbon!"}  # the regeneration too
    assert chat["history"]["messages"]["q"]["children_ids"] == ["a1", "a2"]


def test_the_body_says_where_the_chat_comes_from() -> None:
    request = UploadRequest("req-1", "chat-1", "alice", "public", 3, SNAPSHOT)
    body = upload_body(request, "instance-7")
    assert body == {
        "chat": {"title": "Trip", "messages": SNAPSHOT["messages"]},
        "access": "public",
        "source": {"instance_id": "instance-7", "request_id": "req-1", "owner_id": "alice"},
    }


def test_cutting_leaves_the_snapshot_untouched() -> None:
    before = branched_snapshot("Trip").model_dump(mode="json")
    chat = chat_for_access(before, "private")
    chat["messages"].append({"id": "x"})
    assert before == SNAPSHOT
