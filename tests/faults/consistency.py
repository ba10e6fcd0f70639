"""After a fault: let the stack settle, then check what users and operators would — nothing
acknowledged is lost, nothing is applied twice, every view equals a fresh replay.

Each check answers a list of problems (empty: fine); `settled` waits, with a generous deadline,
until they are all empty — the read side is eventually consistent — and fails naming them.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import asyncpg
import httpx
from chatshare_cli.shadow_views import ShadowViews
from chatshare_cli.share_view_replay import ReplayOutcome, ShareViewReplay
from chatshare_cli.stored_share_events import StoredShareEvents

from share_service.bootstrap import EVENT_STORE_SCHEMA, open_sharing_application
from share_service.config import ShareServiceSettings
from tests.faults.event_topics import Topics
from tests.faults.traffic import ADMIN, Ledger

Problems: TypeAlias = list[str]
# Each service's event store (schema = relay name) and its events table.
EVENT_STORES = {
    "share_service": "share_events",
    "settings_service": "settings_events",
    "community_publisher": "community_uploads_events",
}
SETTLE_SECONDS = 120


async def settled(check: Callable[[], Awaitable[Problems]], what: str) -> None:
    """Wait until `check` finds nothing wrong; fail with what it still finds at the deadline."""
    problems: Problems = []
    try:
        async with asyncio.timeout(SETTLE_SECONDS):
            while problems := await check():
                await asyncio.sleep(0.25)
    except TimeoutError:
        shown = "\n  ".join(problems[:15])
        more = f"\n  … and {len(problems) - 15} more" if len(problems) > 15 else ""
        raise AssertionError(f"{what}:\n  {shown}{more}") from None


async def relays_caught_up(pool: asyncpg.Pool) -> Problems:
    """Every event each store holds is published: its relay's position is past the last one."""
    problems = []
    for relay, table in EVENT_STORES.items():
        stored = await pool.fetchval(
            f'SELECT coalesce(max(notification_id), 0) FROM "{relay}".{table}'
        )
        position = await pool.fetchval(
            f'SELECT coalesce(max(notification_id), 0) FROM "{relay}".outbox_relay_positions'
            " WHERE relay = $1",
            relay,
        )
        if position < stored:
            problems.append(f"{relay}'s relay is at {position} of {stored}")
    return problems


# The checks


def lost_or_doubled_link_events(ledger: Ledger, topics: Topics) -> Problems:
    """Every acknowledged (share_id, version) is on share.events; each link's versions count
    1, 2, 3… without a hole, each published for one event only (a re-sent tail repeats the
    same event, never makes a new one)."""
    links = topics.links
    problems = [
        f"acknowledged {share_id} v{version} is not on share.events"
        for share_id, version in sorted(ledger.acknowledged)
        if version not in links.get(share_id, {})
    ]
    for share_id, versions in links.items():
        if sorted(versions) != list(range(1, max(versions) + 1)):
            problems.append(f"{share_id}'s versions on share.events: {sorted(versions)}")
        problems += [
            f"{share_id} v{v} was published as {len(ids)} different events"
            for v, ids in versions.items()
            if len(ids) > 1
        ]
    problems += [
        f"{share_id} answered 204 but its last event is {topics.last_of_link[share_id]['type']}"
        for share_id in ledger.deleted
        if topics.last_of_link.get(share_id, {}).get("type") != "LinkDeleted"
    ]
    return problems


async def views_behind_the_topic(pool: asyncpg.Pool, topics: Topics) -> Problems:
    """The view store has each link at its last version on share.events (a tombstone when that
    is a LinkDeleted), and no link the topic never had."""
    rows = await pool.fetch(
        f'SELECT share_id, version, deleted FROM "{EVENT_STORE_SCHEMA}".share_views'
    )
    views = {row["share_id"]: (row["version"], row["deleted"]) for row in rows}
    wanted = {
        share_id: (event["version"], event["type"] == "LinkDeleted")
        for share_id, event in topics.last_of_link.items()
    }
    return [
        f"view of {share_id}: {views.get(share_id)} (version, deleted), share.events says {wanted.get(share_id)}"
        for share_id in sorted(set(views) | set(wanted))
        if views.get(share_id) != wanted.get(share_id)
    ]


async def mirror_behind_the_chats(pool: asyncpg.Pool, ledger: Ledger) -> Problems:
    """Each chat's mirror holds every event sent once: its chat_version is the count of events
    sent, its messages are the ones sent, each child listed once; a deleted chat is deleted."""
    rows = await pool.fetch(
        f'SELECT chat_id, chat_version, deleted, messages FROM "{EVENT_STORE_SCHEMA}".mirrored_chats'
    )
    mirrored = {row["chat_id"]: row for row in rows}
    problems = []
    for chat in ledger.chats:
        row = mirrored.get(chat.feed.chat_id)
        if row is None:
            problems.append(f"chat {chat.feed.chat_id} is not mirrored")
            continue
        messages = json.loads(row["messages"])
        children = [child for message in messages for child in message["children_ids"]]
        seen = (row["chat_version"], row["deleted"], sorted(m["id"] for m in messages))
        # A deleted chat keeps only what recognises late duplicates: its content went with it.
        sent = (chat.sent, chat.deleted, [] if chat.deleted else sorted(chat.message_ids))
        if seen != sent:
            problems.append(
                f"chat {chat.feed.chat_id}: mirrored {seen} (version, deleted, messages), sent {sent}"
            )
        if len(children) != len(set(children)):
            problems.append(f"chat {chat.feed.chat_id} lists a child twice: {children}")
    return problems


async def links_of_deleted_chats_alive(pool: asyncpg.Pool, ledger: Ledger) -> Problems:
    deleted_chats = [chat.feed.chat_id for chat in ledger.chats if chat.deleted]
    rows = await pool.fetch(
        f'SELECT share_id, chat_id FROM "{EVENT_STORE_SCHEMA}".share_views'
        " WHERE NOT deleted AND chat_id = ANY($1::text[])",
        deleted_chats,
    )
    return [
        f"{row['share_id']} lives on after its chat {row['chat_id']} was deleted" for row in rows
    ]


def community_outcomes(ledger: Ledger, topics: Topics) -> Problems:
    """Every request asked for (acknowledged or not) has one outcome, published — sharing
    stays on all along."""
    requested, outcomes = topics.requests, topics.outcomes
    problems = [
        f"request {r} answered 202 is not on share.events" for r in set(ledger.requests) - requested
    ]
    for request_id in sorted(requested):
        found = list(outcomes.get(request_id, {}).values())
        if len(found) != 1 or found[0]["type"] != "CommunitySharePublished":
            problems.append(f"request {request_id}'s outcomes: {[o['type'] for o in found]}")
    return problems


def uploaded_once(topics: Topics, uploads: list[dict[str, Any]]) -> Problems:
    """The community site took each request exactly once (the stand-in lists what it accepted),
    nothing that was never requested, and under the id that was published."""
    keys = Counter(upload["headers"]["idempotency-key"] for upload in uploads)
    problems = [f"request {key} uploaded {count} times" for key, count in keys.items() if count > 1]
    problems += [f"request {key} never uploaded" for key in topics.requests - set(keys)]
    problems += [f"{key} uploaded, never requested" for key in set(keys) - topics.requests]
    for upload in uploads:
        key = upload["headers"]["idempotency-key"]
        published = [
            outcome["community_id"]
            for outcome in topics.outcomes.get(key, {}).values()
            if outcome["type"] == "CommunitySharePublished"
        ]
        if published != [upload["id"]]:
            problems.append(f"request {key} uploaded as {upload['id']}, published as {published}")
    return problems


async def request_statuses(share: httpx.AsyncClient, ledger: Ledger) -> Problems:
    """What each requester reads: published."""
    limit = asyncio.Semaphore(8)

    async def status(request_id: str) -> str | None:
        async with limit:
            answer = await share.get(
                f"/api/v1/community-shares/{request_id}", headers=ledger.requests[request_id].owner
            )
        found = answer.json().get("status") if answer.status_code == 200 else answer.status_code
        return None if found == "published" else f"request {request_id}: {found}"

    found = await asyncio.gather(*(status(request_id) for request_id in ledger.requests))
    return [problem for problem in found if problem is not None]


async def policy_everywhere(
    settings: httpx.AsyncClient, pool: asyncpg.Pool, ledger: Ledger, topics: Topics
) -> Problems:
    """The admin's history counts 1, 2, 3… with every acknowledged change in it; settings.events
    has each version once as one event; every service's policy view is at the last version."""
    history = (await settings.get("/api/v1/admin/settings/history", headers=ADMIN)).json()["items"]
    versions = [item["policy_version"] for item in history]
    problems = []
    if versions != list(range(1, len(versions) + 1)):
        problems.append(f"the history's policy versions: {versions}")
    problems += [
        f"policy version {v} answered 200 is not in the history"
        for v in ledger.policy_versions - set(versions)
    ]
    published: dict[int, set[str]] = defaultdict(set)
    for event in topics.settings:
        published[event["policy_version"]].add(event["event_id"])
    if sorted(published) != versions:
        problems.append(f"settings.events has versions {sorted(published)}, the history {versions}")
    problems += [
        f"policy version {v} published as {len(ids)} events"
        for v, ids in published.items()
        if len(ids) > 1
    ]
    final = {"community_sharing": False, "tts": False}  # off until an admin turns them on
    for item in history:
        final[item["setting"]] = item["value"]
    for schema in ("share_service", "community_publisher"):
        row = await pool.fetchrow(
            f'SELECT community_sharing_enabled, tts_enabled, policy_version FROM "{schema}".policy_view'
        )
        seen = None if row is None else (row[0], row[1], row[2])
        wanted = (final["community_sharing"], final["tts"], len(versions))
        if seen != wanted:
            problems.append(f"{schema}'s policy view: {seen}, the history: {wanted}")
    return problems


async def replay_differences(settings: ShareServiceSettings, pool: asyncpg.Pool) -> ReplayOutcome:
    """`chatshare replay share-views --dry-run`, as a library: the view store rebuilt from the
    event store into a shadow and compared row by row (every column, the body included)."""
    sharing = await asyncio.to_thread(open_sharing_application, settings)
    try:
        replay = ShareViewReplay(
            StoredShareEvents(sharing), ShadowViews(pool, EVENT_STORE_SCHEMA), page_size=10_000
        )
        return await replay.run(dry_run=True, show=10)
    finally:
        await asyncio.to_thread(sharing.close)
