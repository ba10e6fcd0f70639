"""A steady stream of what the platform and its users do — chats written on `chat.events`, links
shared, re-snapshotted and deleted, community shares asked for, the admin's switch flipped — and
the ledger of what chatshare acknowledged, which a fault must not make it forget."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

import contracts
from contracts.topics import CHAT_EVENTS
from tests.chat_feed import ChatFeed
from tests.identities import bearer, make_token

ADMIN = bearer(make_token("fault-admin", "admin"))
PAUSE = 0.05  # between one user's calls: a steady stream, not a benchmark, on a shared machine


@dataclass
class Chat:
    """One chat of the platform, as far as its events were sent (Kafka acknowledged them)."""

    feed: ChatFeed
    sent: int = 0  # the chat_version chat.events holds
    message_ids: list[str] = field(default_factory=list)
    deleted: bool = False
    live_link: str | None = None  # as the last answer said

    @property
    def owner(self) -> dict[str, str]:
        return bearer(make_token(self.feed.owner_id))


@dataclass
class Ledger:
    """What chatshare told its users, over every stream run on one stack."""

    chats: list[Chat] = field(default_factory=list)
    acknowledged: set[tuple[str, int]] = field(default_factory=set)  # (share_id, version) of 2xx
    deleted: set[str] = field(default_factory=set)  # links whose DELETE answered 204
    requests: dict[str, Chat] = field(default_factory=dict)  # community requests answered 202
    policy_versions: set[int] = field(default_factory=set)  # the admin's 200s
    chat_events: int = 0  # sent to chat.events
    answers: Counter[str] = field(default_factory=Counter)  # "share 201", "delete unanswered", …
    unexpected: list[str] = field(default_factory=list)  # answers no such call may give
    served_after_delete: list[str] = field(default_factory=list)


# What each call may answer besides success: a chat deleted meanwhile (404), a chat version the
# mirror had not seen within 5 s (409) — both honest answers while a part is down.
MAY_REFUSE = {
    "share": {404, 409},
    "update": {404, 409},
    "delete": {404},
    "community": {404, 409},
    "tts": set(),
}


class SteadyTraffic:
    """`async with SteadyTraffic(...)`: the stream flows inside the block and stops at its end
    (calls in flight finish)."""

    def __init__(
        self, bootstrap: str, prefix: str, share_url: str, settings_url: str, ledger: Ledger
    ) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.ledger = ledger
        self.share = httpx.AsyncClient(base_url=share_url, timeout=30)
        self.settings = httpx.AsyncClient(base_url=settings_url, timeout=30)
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
        self.stopping = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.random = random.Random()

    async def __aenter__(self) -> SteadyTraffic:
        await self.producer.start()
        for n in range(6):  # new chats each time: some of the older ones were deleted
            chat = Chat(ChatFeed(f"fault-user-{len(self.ledger.chats) + n}"))
            await self._send(chat, chat.feed.created("A chat under fire"))
            await self._send(chat, chat.feed.message("hello"))
            self.ledger.chats.append(chat)
        loops = [self._write_chats, self._flip_tts, *[self._use_links] * 2]
        self.tasks = [asyncio.create_task(loop()) for loop in loops]
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stopping.set()
        try:
            await asyncio.gather(*self.tasks)
        finally:
            await self.producer.stop()
            await self.share.aclose()
            await self.settings.aclose()

    async def until(self, progress: Callable[[], Awaitable[int]], more: int) -> None:
        """Let the stream flow until `progress` has grown by `more` (and say what it was doing
        if it stalls)."""
        start = await progress()
        try:
            async with asyncio.timeout(90):
                while await progress() < start + more:
                    self._raise_if_a_loop_died()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise AssertionError(f"the stream stalled: {dict(self.ledger.answers)}") from None

    def _raise_if_a_loop_died(self) -> None:
        for task in self.tasks:
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # The platform's chat services

    async def _write_chats(self) -> None:
        while not self.stopping.is_set():
            live = self._live_chats()
            chat = self.random.choice(live)
            roll = self.random.random()
            if roll < 0.02 and len(live) > 3:
                await self._send(chat, chat.feed.deleted())
            elif roll < 0.08:
                await self._send(chat, chat.feed.title(f"Retitled {chat.sent}"))
            elif roll < 0.14 and len(chat.message_ids) > 2:
                await self._send(chat, chat.feed.branch(self.random.choice(chat.message_ids)))
            else:
                role = self.random.choice(["user", "assistant"])
                await self._send(chat, chat.feed.message(f"message {chat.sent + 1}", role=role))
            await asyncio.sleep(PAUSE)

    async def _send(self, chat: Chat, event: Any) -> None:
        value = contracts.encode_event(event)
        key = chat.feed.chat_id.encode()
        await self.producer.send_and_wait(self.prefix + CHAT_EVENTS, value, key=key)
        chat.sent = event.chat_version
        self.ledger.chat_events += 1
        if isinstance(event, contracts.MessageAdded):
            chat.message_ids.append(event.message_id)
        elif isinstance(event, contracts.ChatDeleted):
            chat.deleted = True

    def _live_chats(self) -> list[Chat]:
        return [chat for chat in self.ledger.chats if not chat.deleted]

    # Users of share_service

    async def _use_links(self) -> None:
        while not self.stopping.is_set():
            chat = self.random.choice(self._live_chats())
            roll = self.random.random()
            if roll < 0.08:  # the slowest path: uploads one by one, as the policy allows
                await self._ask_community(chat)
            elif roll < 0.5 or chat.live_link is None:
                await self._share(chat)
            elif roll < 0.85:
                await self._update(chat, chat.live_link)
            else:
                await self._delete(chat, chat.live_link)
            await asyncio.sleep(PAUSE)

    async def _share(self, chat: Chat) -> None:
        body = {"chat_version": chat.sent}
        url = f"/api/v1/chats/{chat.feed.chat_id}/share"
        answer = await self._call("share", self.share.post(url, json=body, headers=chat.owner))
        if answer is not None and answer.status_code in (200, 201):
            link = answer.json()
            self.ledger.acknowledged.add((link["share_id"], link["version"]))
            chat.live_link = link["share_id"]

    async def _update(self, chat: Chat, share_id: str) -> None:
        body = {"chat_version": chat.sent}
        url = f"/api/v1/shares/{share_id}/snapshot"
        answer = await self._call("update", self.share.put(url, json=body, headers=chat.owner))
        if answer is not None and answer.status_code == 200:
            self.ledger.acknowledged.add((share_id, answer.json()["version"]))
        elif answer is not None and answer.status_code == 404 and chat.live_link == share_id:
            chat.live_link = None  # it died with its chat

    async def _delete(self, chat: Chat, share_id: str) -> None:
        url = f"/api/v1/shares/{share_id}"
        answer = await self._call("delete", self.share.delete(url, headers=chat.owner))
        if answer is None or answer.status_code not in (204, 404):
            return
        if chat.live_link == share_id:
            chat.live_link = None
        if answer.status_code == 204:
            self.ledger.deleted.add(share_id)
            read = await self._call("read deleted", self.share.get(url, headers=chat.owner))
            if read is not None and read.status_code != 404:
                self.ledger.served_after_delete.append(f"{share_id}: {read.status_code}")

    async def _ask_community(self, chat: Chat) -> None:
        body = {"access": "public", "chat_version": chat.sent}
        url = f"/api/v1/chats/{chat.feed.chat_id}/community-share"
        answer = await self._call("community", self.share.post(url, json=body, headers=chat.owner))
        if answer is not None and answer.status_code == 202:
            self.ledger.requests[answer.json()["request_id"]] = chat

    # The admin

    async def _flip_tts(self) -> None:
        enabled = True
        while not self.stopping.is_set():
            call = self.settings.put(
                "/api/v1/admin/settings/tts", json={"enabled": enabled}, headers=ADMIN
            )
            answer = await self._call("tts", call)
            if answer is not None and answer.status_code == 200:
                self.ledger.policy_versions.add(answer.json()["policy_version"])
                enabled = not enabled
            await asyncio.sleep(10 * PAUSE)

    async def _call(self, name: str, call: Awaitable[httpx.Response]) -> httpx.Response | None:
        """The answer, or None when the process died under the call or is down: then nothing
        was acknowledged."""
        try:
            answer = await call
        except httpx.TransportError:
            self.ledger.answers[f"{name} unanswered"] += 1
            await asyncio.sleep(0.2)  # it is down: don't spin
            return None
        self.ledger.answers[f"{name} {answer.status_code}"] += 1
        refusals = MAY_REFUSE.get(name, {404})
        if not answer.is_success and answer.status_code not in refusals:
            self.ledger.unexpected.append(f"{name} {answer.status_code}: {answer.text[:200]}")
        return answer
