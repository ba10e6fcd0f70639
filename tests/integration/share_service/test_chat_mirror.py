"""The chat mirror on the real broker and database: it keeps each chat's tree from chat.events,
shrugs off duplicates, applies gaps, dead-letters what it cannot apply and keeps going."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from contracts.topics import CHAT_MIRROR_GROUP, dead_letter_topic
from servicekit.http import Readiness
from servicekit.runtime import new_broker, open_runtime
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.config import ShareServiceSettings
from share_service.domain.chat_tree import MirroredChat, visible_branch
from share_service.entrypoints.chat_mirror import ChatMirror, follow_chats
from tests.chat_feed import ChatFeed, send

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(database_url: str, kafka_bootstrap: str, topic_prefix: str) -> ShareServiceSettings:
    return ShareServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix, kafka_session_timeout_ms=6000,
    )  # fmt: skip


@asynccontextmanager
async def running_mirror(
    settings: ShareServiceSettings, deleted: list[str]
) -> AsyncIterator[ChatMirrorStore]:
    broker = new_broker(settings, "mirror-test")
    async with open_runtime(settings, "share", CollectorRegistry(), Readiness(), broker) as runtime:
        store = ChatMirrorStore(runtime.pool, "share_service")
        await store.create_table()

        async def on_deleted(chat_id: str) -> None:
            deleted.append(chat_id)

        follow_chats(runtime, ChatMirror(store, on_deleted, runtime.registry))
        await broker.start()
        yield store


async def until_version(store: ChatMirrorStore, chat_id: str, version: int) -> MirroredChat:
    chat = await store.wait_for_version(chat_id, version, within=30)
    assert chat is not None, f"{chat_id} never reached version {version}"
    return chat


async def test_the_mirror_keeps_the_tree_the_branches_and_the_current_leaf(
    settings: ShareServiceSettings,
) -> None:
    feed = ChatFeed("alice")
    created, question, answer = feed.created("Travel plans"), feed.message("Where to?"), None
    answer = feed.message("Lisbon.", role="assistant", model="llama3")
    regenerated = feed.message(
        "Porto.", role="assistant", model="llama3", parent_id=question.message_id
    )
    events = [created, question, answer, regenerated, feed.title("Portugal trip")]
    await send(settings.kafka_bootstrap_servers, events, settings.topic_prefix)
    async with running_mirror(settings, []) as store:
        chat = await until_version(store, feed.chat_id, 5)
    assert (chat.owner_id, chat.title, chat.current_id) == (
        "alice",
        "Portugal trip",
        regenerated.message_id,
    )
    assert chat.messages[question.message_id].children_ids == (
        answer.message_id,
        regenerated.message_id,
    )
    assert [m.content for m in visible_branch(chat)] == ["Where to?", "Porto."]


async def test_duplicates_change_nothing_and_a_gap_is_applied_anyway(
    settings: ShareServiceSettings,
) -> None:
    feed = ChatFeed("bob")
    created, first = feed.created(), feed.message("one")
    feed.version += 2  # the producer lost two versions
    late = feed.message("four")
    replay = [created, first, created, first]
    await send(settings.kafka_bootstrap_servers, [*replay, late, first], settings.topic_prefix)
    async with running_mirror(settings, []) as store:
        chat = await until_version(store, feed.chat_id, 4)
    assert [m.content for m in visible_branch(chat)] == ["one", "four"]
    assert len(chat.messages) == 2


async def test_chats_read_together_each_come_back_whole(settings: ShareServiceSettings) -> None:
    """Commands arriving together read their chats in one query (BatchedReads): each still
    gets its own chat, an unknown one gets None, and a version wait sees what it asked for."""
    feeds = [ChatFeed(f"owner-{i}") for i in range(12)]
    events: list[object] = []
    for i, feed in enumerate(feeds):
        events += [feed.created(f"chat {i}"), *(feed.message(f"{i}.{n}") for n in range(i % 3 + 1))]
    await send(settings.kafka_bootstrap_servers, events, settings.topic_prefix)
    async with running_mirror(settings, []) as store:
        for feed in feeds:
            await until_version(store, feed.chat_id, feed.version)
        reads = [store.get(feed.chat_id) for feed in feeds]
        waits = [store.wait_for_version(feed.chat_id, feed.version, within=5) for feed in feeds]
        chats = await asyncio.gather(*reads, store.get("no-such-chat"), *waits)
        too_new = await store.wait_for_version(feeds[0].chat_id, feeds[0].version + 1, within=0.3)

    got, unknown, waited = chats[: len(feeds)], chats[len(feeds)], chats[len(feeds) + 1 :]
    for i, (feed, chat, after_wait) in enumerate(zip(feeds, got, waited, strict=True)):
        assert chat is not None
        assert after_wait == chat
        assert (chat.chat_id, chat.owner_id, chat.title) == (
            feed.chat_id,
            f"owner-{i}",
            f"chat {i}",
        )
        assert [m.content for m in visible_branch(chat)] == [f"{i}.{n}" for n in range(i % 3 + 1)]
    assert unknown is None
    assert too_new is None


async def test_poison_is_dead_lettered_and_the_mirror_keeps_going(
    settings: ShareServiceSettings,
) -> None:
    feed = ChatFeed("carol")
    orphan = ChatFeed("carol")
    orphan.version = 1
    unknown_chat_message = orphan.message("no ChatCreated before me")
    poison = [(b"x", b"{not json"), (feed.chat_id.encode(), b'{"type": "ChatCreated"}')]
    events = [feed.created(), unknown_chat_message]
    await send(settings.kafka_bootstrap_servers, events, settings.topic_prefix, raw=poison)
    await send(
        settings.kafka_bootstrap_servers, [feed.message("still applied")], settings.topic_prefix
    )
    async with running_mirror(settings, []) as store:
        chat = await until_version(store, feed.chat_id, 2)
    assert [m.content for m in visible_branch(chat)] == ["still applied"]
    letters = await read_dead_letters(settings, expected=3)
    reasons = sorted(dict(letter.headers)["x-dlq-reason"].decode() for letter in letters)
    assert len(reasons) == 3
    assert any("the chat is unknown" in reason for reason in reasons), reasons


async def test_events_the_store_cannot_hold_are_dead_lettered_not_retried_forever(
    settings: ShareServiceSettings,
) -> None:
    """Valid by the contract, yet beyond what PostgreSQL holds: a `chat_version` above a bigint
    (asyncpg refuses the argument client-side) and a message with a NUL character (jsonb refuses
    it). Neither is an outage to wait out: each is dead-lettered saying why, and the chats after
    them are still applied."""
    huge = ChatFeed("erin")
    huge.version = 2**63 - 1  # the next event carries 2**63
    nul = ChatFeed("erin")
    events = [
        huge.created(),
        nul.created(),
        nul.message("before\x00after"),
        nul.message("next", parent_id=None),
    ]
    later = ChatFeed("erin")
    await send(settings.kafka_bootstrap_servers, [*events, later.created()], settings.topic_prefix)
    async with running_mirror(settings, []) as store:
        chat = await until_version(store, nul.chat_id, 3)
        await until_version(store, later.chat_id, 1)
        assert await store.get(huge.chat_id) is None
    assert [m.content for m in visible_branch(chat)] == ["next"]
    letters = await read_dead_letters(settings, expected=2)
    reasons = {
        record.key.decode(): dict(record.headers)["x-dlq-reason"].decode() for record in letters
    }
    assert set(reasons) == {huge.chat_id, nul.chat_id}, reasons


async def test_chat_deleted_asks_for_the_links_to_die_even_when_redelivered(
    settings: ShareServiceSettings,
) -> None:
    feed = ChatFeed("dave")
    created, deleted = feed.created(), feed.deleted()
    await send(settings.kafka_bootstrap_servers, [created, deleted, deleted], settings.topic_prefix)
    seen: list[str] = []
    async with running_mirror(settings, seen) as store:
        chat = await until_version(store, feed.chat_id, 2)
        async with asyncio.timeout(10):
            while len(seen) < 1:
                await asyncio.sleep(0.05)
    assert chat.deleted
    assert set(seen) == {feed.chat_id}


async def read_dead_letters(settings: ShareServiceSettings, expected: int) -> list:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(
        settings.topic(dead_letter_topic(CHAT_MIRROR_GROUP)),
        bootstrap_servers=settings.kafka_bootstrap_servers, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    letters = []
    try:
        async with asyncio.timeout(30):
            while len(letters) < expected:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    letters.extend(records)
    finally:
        await consumer.stop()
    return letters
