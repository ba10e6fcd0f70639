"""What the infrastructure-restart tests check once the stack is back, as a user and an operator
would: nothing acknowledged lost, nothing applied twice, views equal to a fresh replay, nothing
dead-lettered, no bare 500, every service ready again."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
from chatshare_cli.kafka_reads import read_until, topic_reader

from contracts.topics import CONSUMER_GROUPS, SHARE_EVENTS, dead_letter_topic
from tests.faults.infra_load import NO_ANSWER, READER, StreamLoad
from tests.faults.infra_stack import InfraStack, wait_until_ready, wait_until_settled
from tests.identities import bearer, make_token
from tests.integration.operators.cli_runner import chatshare


async def eventually_2xx(
    call: Callable[[], Awaitable[httpx.Response]], within: float = 60
) -> httpx.Response:
    """A call retried while the stack heals (5xx, 409 while the mirror catches up, no answer)."""
    answer: httpx.Response | None = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        try:
            answer = await call()
        except httpx.TransportError:
            answer = None
        if answer is not None and answer.is_success:
            return answer
        await asyncio.sleep(0.5)
    assert answer is not None, "no answer at all"
    return answer


async def published_share_events(stack: InfraStack) -> tuple[Counter[tuple[str, int]], set[str]]:
    """Every committed link event on share.events: (share_id, version) of the snapshots, counted
    (the relay may publish a tail twice), and the share_ids deleted."""
    snapshots: Counter[tuple[str, int]] = Counter()
    deleted: set[str] = set()
    async with topic_reader(stack.settings, [SHARE_EVENTS]) as (consumer, partitions):
        starts = await consumer.beginning_offsets(partitions)
        ends = await consumer.end_offsets(partitions)
        async for batch, _ in read_until(consumer, starts, ends):
            for record in batch:
                event = json.loads(record.value)
                if event["type"] in ("ShareCreated", "SnapshotUpdated"):
                    snapshots[(event["share_id"], event["version"])] += 1
                elif event["type"] == "LinkDeleted":
                    deleted.add(event["share_id"])
    return snapshots, deleted


async def dead_letters(stack: InfraStack) -> dict[str, int]:
    """Records on each group's dead-letter topic: an outage must never park a valid event."""
    topics = [dead_letter_topic(group) for group in CONSUMER_GROUPS]
    async with topic_reader(stack.settings, topics) as (consumer, partitions):
        ends = await consumer.end_offsets(partitions)
        first = await consumer.beginning_offsets(partitions)
    parked: Counter[str] = Counter()
    for partition in partitions:
        parked[partition.topic] += ends[partition] - first[partition]
    return {topic: count for topic, count in parked.items() if count}


def refusals(answers: Counter[str]) -> dict[str, int]:
    """Calls that were not served: any 5xx, or no answer at all."""
    return {
        answer: count
        for answer, count in answers.items()
        if answer.endswith(NO_ANSWER) or answer.split()[-1].startswith("5")
    }


def server_errors(answers: Counter[str]) -> dict[str, int]:
    """The 5xx answers other than 503 (a clear "try again"): a bare 500 is a crash's answer."""
    return {
        answer: count
        for answer, count in answers.items()
        if answer.split()[-1].isdigit() and int(answer.split()[-1]) >= 500
        and not answer.endswith(" 503")
    }  # fmt: skip


async def share_every_chat_at_its_last_version(load: StreamLoad) -> None:
    """Each live chat shared once more, at the last version sent: the chat mirror has every
    chat event (it waits up to 5 s for that version; retried while the stack heals)."""
    for line in load.live_lines():
        share = partial(
            load.client.post,
            load.share_url(f"/api/v1/chats/{line.feed.chat_id}/share"),
            json={"chat_version": line.feed.version},
            headers=line.owner,
        )
        shared = await eventually_2xx(share)
        assert shared.is_success, shared.text
        load.ledger.link(line.feed.chat_id, shared.json())
        line.share_id = shared.json()["share_id"]


async def snapshots_hold_every_message_once(load: StreamLoad) -> None:
    """The last snapshot of each chat shows every message sent, in order, each once: no chat
    event lost, none applied twice."""
    for line in load.live_lines():
        assert line.share_id is not None
        view = await load.client.get(
            load.share_url(f"/api/v1/shares/{line.share_id}"), headers=READER
        )
        assert view.status_code == 200, view.text
        assert view.json()["version"] == load.ledger.acknowledged[line.share_id]
        assert [m["content"] for m in view.json()["messages"]] == line.contents
        for message in view.json()["history"]["messages"].values():
            children = message["children_ids"]
            assert len(children) == len(set(children)), message


async def views_answer_what_was_acknowledged(load: StreamLoad) -> None:
    """Every acknowledged link reads as acknowledged: at its version or later, or 404 once its
    delete was acknowledged (or its chat deleted)."""
    ledger = load.ledger
    doomed = {line.feed.chat_id for line in load.lines if line.doomed}
    for share_id, version in ledger.acknowledged.items():
        view = await load.client.get(load.share_url(f"/api/v1/shares/{share_id}"), headers=READER)
        if share_id in ledger.deleted or ledger.chat_of[share_id] in doomed:
            assert view.status_code == 404, f"{share_id} was deleted, yet answers {view.text}"
        elif share_id not in ledger.unsure:
            assert view.status_code == 200, f"{share_id}: {view.text}"
            assert view.json()["version"] >= version


async def community_requests_published_once(load: StreamLoad) -> None:
    """Every accepted request (202) ends `published`, and the site took it once."""
    site = load.stack.url("community_standin")
    uploads = (await load.client.get(site + "/api/v1/chats")).json()["items"]
    uploaded = Counter(item["body"]["source"]["request_id"] for item in uploads)
    for request_id, requester in load.ledger.requests.items():
        status = await load.client.get(
            load.share_url(f"/api/v1/community-shares/{request_id}"),
            headers=bearer(make_token(requester)),
        )
        assert status.status_code == 200, status.text
        assert status.json()["status"] == "published", status.json()
        assert uploaded[request_id] == 1, f"{request_id} uploaded {uploaded[request_id]} times"


async def tts_switch_reached_the_views(load: StreamLoad) -> None:
    """The admin's last TTS switch is what a shared page shows: the policy events flowed."""
    features = await load.client.get(
        load.stack.url("settings_service") + "/api/v1/settings/features", headers=READER
    )
    line = load.live_lines()[0]
    view = await load.client.get(load.share_url(f"/api/v1/shares/{line.share_id}"), headers=READER)
    assert view.status_code == 200, view.text
    assert view.json()["tts_enabled"] == features.json()["tts_enabled"]


async def assert_nothing_lost(stack: InfraStack, load: StreamLoad) -> dict[str, Any]:
    async with load.timed("ready again"):
        ready = await wait_until_ready(stack)
    assert not stack.crashed(), f"crashed: {stack.crashed()}"
    assert all(status == 200 for status, _ in ready.values()), ready
    async with load.timed("last snapshots"):
        await share_every_chat_at_its_last_version(load)
    async with load.timed("settled"):
        relays, lagging = await wait_until_settled(stack)
    assert not any(relays.values()), f"relays still behind: {relays}"
    assert not lagging, f"groups still behind: {lagging}"
    for phase, answers in load.ledger.answers.items():
        assert not server_errors(answers), (phase, server_errors(answers))
    assert not await dead_letters(stack), await dead_letters(stack)
    await snapshots_hold_every_message_once(load)

    snapshots, deleted = await published_share_events(stack)
    lost = load.ledger.versions - set(snapshots)
    assert not lost, (
        f"{len(lost)} acknowledged snapshots never reached share.events: {sorted(lost)[:5]}"
    )
    assert load.ledger.deleted <= deleted, load.ledger.deleted - deleted
    await views_answer_what_was_acknowledged(load)
    await community_requests_published_once(load)
    await tts_switch_reached_the_views(load)

    async with load.timed("replay"):
        replay = await chatshare(stack.settings, "replay", "share-views", "--dry-run")
    assert replay.code == 0, replay.stdout + replay.stderr
    assert replay.summary["changed"] == 0, replay.stdout
    return {
        "answers": {phase: dict(counts) for phase, counts in load.ledger.answers.items()},
        "acknowledged": len(load.ledger.versions),
        "republished": sum(1 for count in snapshots.values() if count > 1),
        "chat_sends_retried": load.ledger.chat_sends_retried,
        "requests": len(load.ledger.requests),
        "views": replay.summary["views"],
        "seconds": load.ledger.seconds,
    }
