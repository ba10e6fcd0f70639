"""The chat mirror: share_service's copy of each chat, kept from `chat.events`. Duplicates change
nothing, gaps never stall a chat, regenerations branch, and the snapshot is exactly the GET body's
`title`, `messages` and `history`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from share_service.domain.chat_events import (
    BranchSelected,
    ChatCreated,
    ChatTitleChanged,
    MessageAdded,
    MessageEdited,
)
from share_service.domain.chat_tree import apply_chat_event, visible_branch
from share_service.domain.errors import ChatEventRejected
from share_service.domain.snapshot import Snapshot, snapshot_of, snapshot_size
from tests.unit.share_service.chat_stories import STORY_START, ChatStory

AT = datetime(2025, 3, 2, 8, 0, tzinfo=UTC)


def branch_ids(story: ChatStory) -> list[str]:
    return [message.id for message in visible_branch(story.chat)]


def test_a_new_chat_has_its_owner_title_and_no_messages() -> None:
    created = apply_chat_event(
        None, ChatCreated(chat_id="c1", chat_version=1, occurred_at=AT, owner_id="u1", title="T")
    )
    assert created.outcome == "applied"
    assert created.missing_versions == 0
    chat = created.chat
    assert (chat.chat_id, chat.owner_id, chat.title, chat.chat_version) == ("c1", "u1", "T", 1)
    assert (chat.messages, chat.current_id, chat.deleted) == ({}, None, False)
    assert visible_branch(chat) == []


def test_each_new_message_answers_its_parent_and_becomes_the_current_leaf() -> None:
    story = ChatStory()
    question = story.say("Where should I stay in Kyoto?")
    answer = story.answer("Gion is lovely.")
    follow_up = story.say("And for food?")

    assert story.chat.current_id == follow_up
    assert branch_ids(story) == [question, answer, follow_up]
    assert story.chat.messages[question].children_ids == (answer,)
    assert story.chat.messages[answer].parent_id == question
    assert story.chat.messages[answer].model == "llama3"
    assert story.chat.messages[answer].created_at == STORY_START.replace(minute=33)
    assert story.chat.chat_version == 4


def test_a_second_answer_to_one_question_is_a_regeneration_branch() -> None:
    story = ChatStory()
    question = story.say("Where should I stay in Kyoto?")
    first = story.answer("Gion is lovely.")
    regenerated = story.answer("Try Arashiyama.", parent=question)

    assert story.chat.messages[question].children_ids == (first, regenerated)
    assert story.chat.current_id == regenerated
    assert branch_ids(story) == [question, regenerated]
    assert set(story.chat.messages) == {question, first, regenerated}


def test_selecting_a_branch_moves_the_current_leaf_and_the_visible_branch() -> None:
    story = ChatStory()
    question = story.say("Where should I stay?")
    first = story.answer("Gion.")
    story.say("Thanks!")
    story.answer("Arashiyama.", parent=question)

    story.select(first)
    assert story.chat.current_id == first
    assert branch_ids(story) == [question, first]


def test_a_second_root_starts_another_branch_of_the_whole_chat() -> None:
    story = ChatStory()
    story.say("Hello")
    edited_root = story.say("Hello there", parent=None)
    assert branch_ids(story) == [edited_root]


def test_an_edit_changes_the_content_and_nothing_else() -> None:
    story = ChatStory()
    question = story.say("Wher to stay?")
    answer = story.answer("Gion.")
    before = story.chat
    story.edit(question, "Where to stay?")

    assert story.chat.messages[question] == replace(
        before.messages[question], content="Where to stay?"
    )
    assert story.chat.current_id == answer
    assert before.messages[question].content == "Wher to stay?"  # the old chat is untouched


def test_a_title_change_renames_the_chat() -> None:
    story = ChatStory(title="New chat")
    story.rename("Kyoto trip")
    assert story.chat.title == "Kyoto trip"


@pytest.mark.parametrize("behind", [0, 1, 3])
def test_an_event_at_or_below_the_applied_version_is_a_duplicate_and_changes_nothing(
    behind: int,
) -> None:
    story = ChatStory()
    for n in range(4):
        story.say(f"message {n}")
    chat = story.chat
    replayed = ChatTitleChanged(
        chat_id=chat.chat_id, chat_version=chat.chat_version - behind, occurred_at=AT, title="X"
    )
    result = apply_chat_event(chat, replayed)
    assert result.outcome == "duplicate"
    assert result.chat is chat


def test_a_replayed_chat_created_is_a_duplicate_too() -> None:
    story = ChatStory()
    story.say("hi")
    again = ChatCreated(chat_id="chat-1", chat_version=1, occurred_at=AT, owner_id="eve", title="")
    assert apply_chat_event(story.chat, again).outcome == "duplicate"


def test_an_event_that_skips_versions_is_applied_and_the_gap_counted() -> None:
    story = ChatStory()
    story.say("hi")
    skipping = ChatTitleChanged(chat_id="chat-1", chat_version=5, occurred_at=AT, title="Later")
    result = apply_chat_event(story.chat, skipping)
    assert (result.outcome, result.missing_versions) == ("gap", 2)
    assert (result.chat.title, result.chat.chat_version) == ("Later", 5)


def test_a_chat_first_seen_past_version_one_counts_the_versions_it_missed() -> None:
    late = ChatCreated(chat_id="c9", chat_version=3, occurred_at=AT, owner_id="u1", title="T")
    result = apply_chat_event(None, late)
    assert (result.outcome, result.missing_versions, result.chat.chat_version) == ("gap", 2, 3)


def test_a_deleted_chat_keeps_no_content_and_still_recognises_duplicates() -> None:
    story = ChatStory()
    story.say("a secret")
    story.delete()
    chat = story.chat
    assert chat.deleted
    assert (chat.title, chat.messages, chat.current_id) == ("", {}, None)
    assert visible_branch(chat) == []
    replayed = ChatTitleChanged(chat_id="chat-1", chat_version=2, occurred_at=AT, title="X")
    assert apply_chat_event(chat, replayed).outcome == "duplicate"


def test_events_after_the_deletion_are_rejected() -> None:
    story = ChatStory()
    story.delete()
    later = ChatTitleChanged(chat_id="chat-1", chat_version=3, occurred_at=AT, title="X")
    with pytest.raises(ChatEventRejected, match="deleted"):
        apply_chat_event(story.chat, later)


def message_added(**fields: object) -> MessageAdded:
    defaults: dict[str, object] = {
        "chat_id": "chat-1",
        "chat_version": 3,
        "occurred_at": AT,
        "message_id": "new",
        "parent_id": None,
        "role": "user",
        "content": "hi",
        "model": None,
    }
    return MessageAdded(**{**defaults, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (message_added(parent_id="nobody"), "message nobody is unknown"),
        (message_added(message_id="chat-1-m1"), "already exists"),
        (
            BranchSelected(chat_id="chat-1", chat_version=3, occurred_at=AT, message_id="nope"),
            "message nope is unknown",
        ),
        (
            MessageEdited(
                chat_id="chat-1", chat_version=3, occurred_at=AT, message_id="nope", content="x"
            ),
            "message nope is unknown",
        ),
        (
            ChatCreated(chat_id="chat-1", chat_version=3, occurred_at=AT, owner_id="u", title=""),
            "already exists",
        ),
    ],
    ids=["unknown-parent", "message-id-taken", "select-unknown", "edit-unknown", "created-twice"],
)
def test_an_event_that_cannot_apply_is_rejected_and_the_chat_left_as_it_was(
    event: MessageAdded, why: str
) -> None:
    story = ChatStory()
    story.say("hi")
    chat = story.chat
    with pytest.raises(ChatEventRejected, match=why):
        apply_chat_event(chat, event)
    assert chat.chat_version == 2
    assert list(chat.messages) == ["chat-1-m1"]


@pytest.mark.parametrize(
    "event",
    [
        message_added(chat_id="unknown", chat_version=1),
        ChatTitleChanged(chat_id="unknown", chat_version=2, occurred_at=AT, title="x"),
    ],
    ids=["message", "title"],
)
def test_an_event_for_a_chat_never_created_is_rejected(event: MessageAdded) -> None:
    with pytest.raises(ChatEventRejected, match="unknown"):
        apply_chat_event(None, event)


def test_an_event_needs_a_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ChatTitleChanged(chat_id="c", chat_version=2, occurred_at=datetime(2025, 1, 1), title="")


def test_an_event_for_another_chat_is_a_programming_error() -> None:
    story = ChatStory()
    other = ChatTitleChanged(chat_id="other", chat_version=2, occurred_at=AT, title="x")
    with pytest.raises(ValueError, match="applied to chat chat-1"):
        apply_chat_event(story.chat, other)


# The snapshot: exactly the GET body's title, messages and history


def test_the_snapshot_is_the_visible_branch_and_the_whole_history() -> None:
    story = ChatStory(title="Kyoto")
    question = story.say("Where to stay?")
    first = story.answer("Gion.")
    regenerated = story.answer("Arashiyama.", parent=question)

    def body(message_id: str, parent: str | None, role: str, content: str, minute: int) -> dict:  # type: ignore[type-arg]
        return {
            "id": message_id,
            "parent_id": parent,
            "role": role,
            "content": content,
            "model": None if role == "user" else "llama3",
            "created_at": f"2025-03-01T09:{minute}:00Z",
        }

    assert snapshot_of(story.chat) == {
        "title": "Kyoto",
        "messages": [
            body(question, None, "user", "Where to stay?", 32),
            body(regenerated, question, "assistant", "Arashiyama.", 34),
        ],
        "history": {
            "messages": {
                question: {
                    **body(question, None, "user", "Where to stay?", 32),
                    "children_ids": [first, regenerated],
                },
                first: {**body(first, question, "assistant", "Gion.", 33), "children_ids": []},
                regenerated: {
                    **body(regenerated, question, "assistant", "Arashiyama.", 34),
                    "children_ids": [],
                },
            },
            "current_id": regenerated,
        },
    }


def test_an_empty_chat_has_an_empty_snapshot() -> None:
    empty: Snapshot = {
        "title": "Empty",
        "messages": [],
        "history": {"messages": {}, "current_id": None},
    }
    assert snapshot_of(ChatStory(title="Empty").chat) == empty


def test_the_snapshot_is_plain_json_and_a_copy_of_the_mirror() -> None:
    story = ChatStory()
    question = story.say("Where to stay?")
    story.answer("Gion.")
    snapshot = snapshot_of(story.chat)
    assert json.loads(json.dumps(snapshot)) == snapshot
    snapshot["history"]["messages"][question]["children_ids"].append("tampered")
    assert snapshot_of(story.chat) != snapshot


def test_the_snapshot_size_is_its_compact_utf8_json_length() -> None:
    story = ChatStory(title="京都")
    story.say("日本語 and émojis 🎌")
    snapshot = snapshot_of(story.chat)
    compact = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert snapshot_size(snapshot) == len(compact)
    assert snapshot_size(snapshot) < len(json.dumps(snapshot).encode())  # not ASCII-escaped


@pytest.mark.parametrize(
    "text",
    [
        'quotes " and backslashes \\ and a slash /',
        "control characters \x00 \x01 \x1f \x7f and \b \f \n \r \t",
        "line and paragraph separators \u2028 \u2029",
        "<script>alert(1)</script><img src=x onerror=alert(1)>",
        "astral 𝄞 😀 and combining é",
    ],
)
def test_the_snapshot_size_counts_escapes_as_json_writes_them(text: str) -> None:
    story = ChatStory(title=text)
    story.say(text)
    snapshot = snapshot_of(story.chat)
    compact = json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert snapshot_size(snapshot) == len(compact)
