"""A delete racing reads under load (issue 8; INTERFACE.md §3: "The link is dead at once: the
very next read of it (API or page) gives 404"). Many readers hammer one link through two API
replicas, by the JSON API and the HTML page, while its owner deletes it through one of them.

Times are taken at the client, on one clock: a read *sent* after the client received the 204
must be a 404, on either replica. A read sent before may legitimately still answer 200, even if
its answer arrives after the 204 — the server may have read the row before the delete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.chat_feed import ChatFeed, send
from tests.faults.fault_harness import FaultStack
from tests.faults.split_stack import SHARE_APP
from tests.faults.traffic import Chat
from tests.identities import bearer, make_token

LINKS = 6
READERS_PER_REPLICA = 12
READS_AROUND_THE_DELETE = 40  # answered before it is sent, and sent after its 204, at least
READER = make_token("curious-colleague")


@dataclass(frozen=True)
class Read:
    replica: str
    path: str
    sent: float  # before the request could leave the client
    answered: float
    status: int


async def read_all_the_time(
    replica: str, client: httpx.AsyncClient, path: str, reads: list[Read], stop: asyncio.Event
) -> None:
    page = path.startswith("/s/")
    while not stop.is_set():
        sent = time.monotonic()
        # The page takes the login cookie; the JSON API only the header.
        headers = {"Cookie": f"token={READER}"} if page else bearer(READER)
        answer = await client.get(path, headers=headers)
        reads.append(Read(replica, path, sent, time.monotonic(), answer.status_code))


async def until(condition: Callable[[], bool], within: float = 60) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)


async def shared_links(faults: FaultStack) -> list[tuple[Chat, str]]:
    """Chats the platform made, each shared once (its view applied)."""
    chats = [Chat(ChatFeed(f"racer-{n}")) for n in range(LINKS)]
    events = []
    for chat in chats:
        created = chat.feed.created("Soon gone")  # versions count in the order events are made
        message = chat.feed.message("read me while you can")
        events += [created, message]
        chat.sent, chat.message_ids = chat.feed.version, [message.message_id]
    await send(faults.processes.bootstrap, events, faults.processes.prefix)
    faults.ledger.chats += chats
    links = []
    for chat in chats:
        answer = await faults.share.post(
            f"/api/v1/chats/{chat.feed.chat_id}/share",
            json={"chat_version": chat.sent},
            headers=chat.owner,
        )
        assert answer.status_code == 201, answer.text
        share_id = answer.json()["share_id"]
        faults.ledger.acknowledged.add((share_id, 1))
        view = await faults.share.get(
            f"/api/v1/shares/{share_id}?min_version=1", headers=bearer(READER)
        )
        assert view.status_code == 200
        links.append((chat, share_id))
    return links


async def race(
    faults: FaultStack, replicas: dict[str, httpx.AsyncClient], chat: Chat, share_id: str
) -> tuple[list[Read], float]:
    """Readers on every replica and both paths; the owner deletes the link once reads flow.
    Answers the reads and when the 204 reached the client."""
    reads: list[Read] = []
    stop = asyncio.Event()
    readers = [
        asyncio.create_task(read_all_the_time(name, client, path, reads, stop))
        for name, client in replicas.items()
        for n in range(READERS_PER_REPLICA)
        for path in [f"/api/v1/shares/{share_id}" if n % 4 else f"/s/{share_id}"]
    ]
    try:
        await until(lambda: len(reads) >= READS_AROUND_THE_DELETE)
        deleted = await faults.share.delete(f"/api/v1/shares/{share_id}", headers=chat.owner)
        answered = time.monotonic()
        assert deleted.status_code == 204, deleted.text
        faults.ledger.deleted.add(share_id)
        await until(lambda: sum(r.sent > answered for r in reads) >= READS_AROUND_THE_DELETE)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    return reads, answered


async def test_no_read_sent_after_the_204_answers_200_on_any_replica(faults: FaultStack) -> None:
    stack = faults.processes
    stack.add("share_api_b", SHARE_APP, CHATSHARE_ROLES="http")  # a second API replica
    await asyncio.to_thread(stack.start, "share_api_b")
    limits = httpx.Limits(max_connections=READERS_PER_REPLICA)
    try:
        async with (
            httpx.AsyncClient(base_url=stack.url("share_api"), limits=limits) as a,
            httpx.AsyncClient(base_url=stack.url("share_api_b"), limits=limits) as b,
        ):
            links = await shared_links(faults)
            outcomes = [await race(faults, {"a": a, "b": b}, *link) for link in links]
    finally:
        await asyncio.to_thread(stack.stop, "share_api_b")

    reads = [read for link_reads, _ in outcomes for read in link_reads]
    assert {read.status for read in reads} == {200, 404}
    late = [
        read
        for link_reads, answered in outcomes
        for read in link_reads
        if read.sent > answered and read.status != 404
    ]
    assert not late, f"answered after the 204: {late[:5]}"
    in_flight = [
        read
        for link_reads, answered in outcomes
        for read in link_reads
        if read.sent < answered < read.answered
    ]
    assert in_flight, "no read was in flight when a 204 came: the race never happened"
    await faults.assert_nothing_lost_nothing_doubled()
