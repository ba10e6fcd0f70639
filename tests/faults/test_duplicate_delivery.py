"""A whole range delivered again (issue 8): every record chatshare's consumers already applied —
`chat.events`, `share.events`, `settings.events`, `community.events` from their first offsets —
is produced into the topics a second time, as a producer's retry storm or an operator's re-feed
would. Every consumer group reads it all again; none of them changes anything."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import (
    CHAT_EVENTS,
    COMMUNITY_EVENTS,
    GROUP_TOPICS,
    SETTINGS_EVENTS,
    SHARE_EVENTS,
)
from tests.faults.consistency import EVENT_STORES, Problems, settled
from tests.faults.event_topics import read_topic
from tests.faults.fault_harness import FaultStack
from tests.faults.version_watch import watching_versions

TOPICS = (CHAT_EVENTS, SHARE_EVENTS, SETTINGS_EVENTS, COMMUNITY_EVENTS)
Offsets = dict[TopicPartition, int]


async def consumers_state(faults: FaultStack) -> dict[str, Any]:
    """Everything a repeat could change: the view store, the chat mirror, the requests' status,
    both policy views (their Kafka position aside: a repeat moves it on purpose), the event
    stores (a repeat that ran a command again would store events), the community site."""
    pool, schema = faults.pool, "share_service"

    async def rows(query: str) -> list[dict[str, Any]]:
        return [dict(row) for row in await pool.fetch(query)]

    state: dict[str, Any] = {
        "share views": await rows(f"SELECT * FROM {schema}.share_views ORDER BY share_id"),
        "chat mirror": await rows(f"SELECT * FROM {schema}.mirrored_chats ORDER BY chat_id"),
        "requests": await rows(f"SELECT * FROM {schema}.community_requests ORDER BY 1"),
        "site": (await faults.site.get("/_control")).json(),
    }
    for policy in ("share_service", "community_publisher"):
        state[f"{policy} policy"] = await rows(
            "SELECT community_sharing_enabled, tts_enabled, policy_version"
            f" FROM {policy}.policy_view"
        )
    for store, table in EVENT_STORES.items():
        state[f"{store} events"] = await pool.fetchval(f"SELECT count(*) FROM {store}.{table}")
    return state


async def produce_again(faults: FaultStack) -> tuple[dict[str, int], Offsets]:
    """Every committed record of the topics, produced again to its own partition with its key,
    value and headers; answers how many, and where each partition's copies end."""
    stack = faults.processes
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, enable_idempotence=True)
    await producer.start()
    ends: Offsets = {}
    count: dict[str, int] = {}
    try:
        for topic in TOPICS:
            records = await read_topic(stack.bootstrap, topic, stack.prefix)
            sent = [
                await producer.send(
                    record.topic,
                    record.value,
                    key=record.key,
                    partition=record.partition,
                    headers=list(record.headers),
                )
                for record in records
            ]
            count[topic] = len(sent)
            for done in await asyncio.gather(*sent):
                at = TopicPartition(done.topic, done.partition)
                ends[at] = max(ends.get(at, 0), done.offset + 1)
    finally:
        await producer.stop()
    return count, ends


async def groups_behind(faults: FaultStack, copies: Offsets) -> Problems:
    """Each group's committed position against the end of the copies on the topics it reads."""
    stack = faults.processes
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.bootstrap)
    await admin.start()
    problems = []
    try:
        for group, topics in GROUP_TOPICS.items():
            committed = await admin.list_consumer_group_offsets(stack.prefix + group)
            for at, end in copies.items():
                if at.topic.removeprefix(stack.prefix) not in topics:
                    continue
                position = committed[at].offset if at in committed else -1
                if position < end:
                    problems.append(
                        f"{group} is at {position} of {end} on {at.topic}[{at.partition}]"
                    )
    finally:
        await admin.close()
    return problems


async def test_a_whole_range_delivered_again_changes_no_consumer_s_state(
    faults: FaultStack,
) -> None:
    async with faults.traffic() as traffic:  # something to repeat, even when run alone
        await traffic.until(faults.links_acknowledged, 20)
        await traffic.until(faults.accepted_uploads, 2)
    await faults.assert_nothing_lost_nothing_doubled()  # every group has consumed it all
    before = await consumers_state(faults)

    async with watching_versions(faults.pool) as watch:
        repeated, copies = await produce_again(faults)
        await settled(lambda: groups_behind(faults, copies), "the groups did not read the repeats")
    after = await consumers_state(faults)

    assert all(repeated[topic] > 0 for topic in TOPICS), repeated
    for part in before:
        assert after[part] == before[part], f"the repeats changed the {part}"
    await faults.assert_nothing_lost_nothing_doubled(watch)
