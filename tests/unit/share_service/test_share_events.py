"""The records share_service's relay publishes on `share.events` (INTERFACE.md §5), made straight
from the stored events: each one the contract event of its domain event to the byte, keyed as
§5 says, with the id a re-read repeats and the context of the command that stored it."""

from __future__ import annotations

from typing import Any

import contracts
from contracts.codec import encode_event
from servicekit.event_store import PlainFieldsJSONTranscoder, in_memory_env
from servicekit.message_context import MessageContext, using_context
from share_service.adapters.share_events import event_id_of, to_contract, to_outbox_message
from share_service.application.sharing import SharingApplication
from share_service.domain.community_share_request import CommunityShareRequest
from share_service.domain.share_link import ChatShares, ShareLink
from tests.unit.share_service.chat_stories import ChatStory

COMMAND = MessageContext("corr-1", causation_id="cause-1", traceparent=None)


def contract_of(domain_event: Any) -> contracts.ShareEvent:
    """The contract event of a domain event, written out field by field."""
    envelope = {
        "event_id": event_id_of(domain_event.originator_id, domain_event.originator_version),
        "occurred_at": domain_event.timestamp,
    }
    if isinstance(domain_event, CommunityShareRequest.CommunityShareRequested):
        return contracts.CommunityShareRequested(
            **envelope, request_id=domain_event.request_id, chat_id=domain_event.chat_id,
            owner_id=domain_event.owner_id, access=domain_event.access,
            policy_version=domain_event.policy_version, snapshot=domain_event.snapshot,
        )  # fmt: skip
    link = {
        "share_id": domain_event.share_id,
        "chat_id": domain_event.chat_id,
        "owner_id": domain_event.owner_id,
        "version": domain_event.originator_version,
    }
    if isinstance(domain_event, ShareLink.LinkDeleted):
        return contracts.LinkDeleted(
            **envelope, **link, reason=domain_event.reason, deleted_by=domain_event.deleted_by
        )
    kind = (
        contracts.ShareCreated
        if isinstance(domain_event, ShareLink.ShareCreated)
        else contracts.SnapshotUpdated
    )
    return kind(
        **envelope, **link, chat_version=domain_event.chat_version, snapshot=domain_event.snapshot
    )


def a_life_of_one_chat(app: SharingApplication) -> None:
    """Every kind of share event: a link made, re-snapshotted and deleted, and a community
    request; the first two inside a command's context."""
    story = ChatStory(chat_id="kyoto", owner_id="alice", title='Kyoto <trip> "2025" ✈')
    story.say("Where should I stay in Kyoto?")
    story.answer("Gion is lovely in spring.")
    with using_context(COMMAND):
        link = app.share_chat(story.chat, "alice").link
        story.say("And in Osaka? ünïcødé, \u2028, \x01")
        app.update_snapshot(link.share_id, story.chat, "alice")
    app.delete_link(link.share_id, "alice", is_admin=False)
    app.request_community_share(story.chat, "alice", "public_full_history", 3)


def test_every_published_event_is_its_contract_event_to_the_byte() -> None:
    app = SharingApplication(in_memory_env())
    a_life_of_one_chat(app)
    published = []
    for notification in app.recorder.select_notifications(start=None, limit=100):
        domain_event = app.mapper.to_domain_event(notification)
        message = to_outbox_message(notification)
        if isinstance(domain_event, ChatShares.Event):
            assert message is None, "the per-chat bookkeeping is not published"
            continue
        assert message is not None
        expected = contract_of(domain_event)
        assert message.value == encode_event(expected)
        assert to_contract(notification) == expected
        assert message.topic == contracts.topics.SHARE_EVENTS
        assert message.event_id == expected.event_id
        key = (
            expected.request_id
            if isinstance(expected, contracts.CommunityShareRequested)
            else (expected.share_id)
        )
        assert message.key == key
        assert to_outbox_message(notification) == message, "a re-read is the same record"
        published.append((expected.type, message.context))

    assert published == [
        ("ShareCreated", COMMAND),
        ("SnapshotUpdated", COMMAND),
        ("LinkDeleted", None),
        ("CommunityShareRequested", None),
    ]


def test_snapshots_are_stored_as_plain_json_fields() -> None:
    """Written by pydantic-core (`servicekit.event_store.PlainFieldsJSONTranscoder`)."""
    app = SharingApplication(in_memory_env())
    assert isinstance(app.mapper.transcoder, PlainFieldsJSONTranscoder)
    assert app.mapper.transcoder.plain_fields == frozenset({"snapshot"})
