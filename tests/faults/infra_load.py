"""A stream of work that keeps flowing while the infrastructure fails under it: the platform's chat
events (messages appended, some chats deleted), users' share commands (Copy Link, Update and
Copy Link, Delete this link, Share to Community), a colleague reading the shared links, and the
admin's TTS switch.

It writes down what was acknowledged — every 2xx, with its `(share_id, version)` — and how
every call was answered in each phase (before, during and after the outage), so the test can
check afterwards that nothing acknowledged was lost.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

import contracts
from contracts.topics import CHAT_EVENTS
from tests.chat_feed import ChatFeed
from tests.faults.infra_stack import InfraStack
from tests.identities import bearer, make_token

ADMIN = bearer(make_token("infra-admin", "admin"))
READER = bearer(make_token("infra-reader", "user"))
REQUEST_TIMEOUT = 10.0
SEND_TIMEOUT = 5.0
NO_ANSWER = "no answer"
# Between one call and the next of each actor: a steady stream that leaves the two cores room
# for a broker to start again (a JVM starting beside a flood takes three times as long).
PAUSE = 0.1


@dataclass
class ChatLine:
    """One chat of the stream: what was sent for it, and its owner's live link."""

    feed: ChatFeed
    contents: list[str] = field(default_factory=list)  # the messages sent, in order
    doomed: bool = False  # deleted by the platform when the outage starts
    deletion_sent: bool = False
    share_id: str | None = None

    @property
    def owner(self) -> dict[str, str]:
        return bearer(make_token(self.feed.owner_id))


@dataclass
class Ledger:
    acknowledged: dict[str, int] = field(default_factory=dict)  # share_id → highest 2xx version
    versions: set[tuple[str, int]] = field(default_factory=set)  # every 2xx (share_id, version)
    chat_of: dict[str, str] = field(default_factory=dict)  # share_id → chat_id
    deleted: set[str] = field(default_factory=set)  # 204s
    unsure: set[str] = field(default_factory=set)  # deletes that got no answer or a 5xx
    requests: dict[str, str] = field(default_factory=dict)  # 202 request_id → requester
    answers: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    chat_sends_retried: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # how long each step took

    def link(self, chat_id: str, body: dict[str, Any]) -> None:
        share_id, version = body["share_id"], body["version"]
        self.versions.add((share_id, version))
        self.chat_of[share_id] = chat_id
        self.acknowledged[share_id] = max(version, self.acknowledged.get(share_id, 0))


class StreamLoad:
    def __init__(self, stack: InfraStack, name: str, chats: int = 10, doomed: int = 2) -> None:
        self.stack = stack
        self.lines = [
            ChatLine(ChatFeed(f"{name}-owner-{i}"), doomed=i < doomed) for i in range(chats)
        ]
        self.ledger = Ledger()
        self.phase = "before"
        self.back_at: float | None = None  # when the infrastructure was back (phase "after")
        self.stopping = asyncio.Event()
        self.client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT)

    async def close(self) -> None:
        await self.client.aclose()

    @asynccontextmanager
    async def timed(self, step: str) -> AsyncIterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.ledger.seconds[step] = round(time.monotonic() - started, 1)

    def count(self, phase: str, what: str, status: int | str) -> None:
        """An answer, under the phase in which its call was made."""
        self.ledger.answers[phase][f"{what} {status}"] += 1

    # ---- the platform's chat events -------------------------------------------------------

    async def prepare(self) -> None:
        """Every chat created with a first exchange, mirrored, and shared once."""
        async with ChatProducer(self.stack) as send:
            for line in self.lines:
                await send(line.feed.created(f"Chat of {line.feed.owner_id}"))
                for text in ("Hello", "Hi, how can I help?"):
                    await send(
                        line.feed.message(text, role="user" if text == "Hello" else "assistant")
                    )
                    line.contents.append(text)
        for line in self.lines:
            answer = await self.client.post(
                self.share_url(f"/api/v1/chats/{line.feed.chat_id}/share"),
                json={"chat_version": line.feed.version},
                headers=line.owner,
            )
            assert answer.status_code == 201, answer.text
            self.ledger.link(line.feed.chat_id, answer.json())
            line.share_id = answer.json()["share_id"]

    async def feed_chats(self) -> None:
        """Messages appended round the chats, one at a time, each sent until Kafka takes it
        (a send that failed may still have landed: the mirror must take the repeat as one)."""
        async with ChatProducer(self.stack, self.ledger) as send:
            for n in itertools.count():
                if self.stopping.is_set():
                    return
                if self.phase != "before":
                    for line in self.lines:
                        if line.doomed and not line.deletion_sent:
                            await send(line.feed.deleted())
                            line.deletion_sent = True
                line = self.live_lines()[n % len(self.live_lines())]
                text = f"message {n} of {line.feed.chat_id}"
                await send(line.feed.message(text, role="user" if n % 2 else "assistant"))
                line.contents.append(text)
                await asyncio.sleep(PAUSE / 2)

    def live_lines(self) -> list[ChatLine]:
        return [line for line in self.lines if not line.doomed]

    # ---- users' commands ------------------------------------------------------------------

    def share_url(self, path: str) -> str:
        return self.stack.url("share_service") + path

    async def command(self, line: ChatLine, n: int) -> None:
        chat_id = line.feed.chat_id
        if line.share_id and n % 6 == 5:
            what, call = (
                "delete",
                self.client.delete(
                    self.share_url(f"/api/v1/shares/{line.share_id}"), headers=line.owner
                ),
            )
        elif line.share_id and n % 3 == 1:
            what, call = (
                "update",
                self.client.put(
                    self.share_url(f"/api/v1/shares/{line.share_id}/snapshot"), headers=line.owner
                ),
            )
        else:
            what, call = (
                "share",
                self.client.post(
                    self.share_url(f"/api/v1/chats/{chat_id}/share"), headers=line.owner
                ),
            )
        target, phase = line.share_id, self.phase
        try:
            answer = await call
        except httpx.TransportError:
            self.count(phase, what, NO_ANSWER)
            if what == "delete" and target:
                self.ledger.unsure.add(target)
            return
        self.count(phase, what, answer.status_code)
        if what == "delete" and target:
            if answer.status_code == 204:
                self.ledger.deleted.add(target)
                line.share_id = None
            elif answer.status_code >= 500:
                self.ledger.unsure.add(target)
        elif answer.is_success:
            self.ledger.link(chat_id, answer.json())
            line.share_id = answer.json()["share_id"]
        if answer.is_success and self.back_at is not None:
            # How soon commands succeed again once the infrastructure is back: the heal.
            healed = round(time.monotonic() - self.back_at, 1)
            self.ledger.seconds.setdefault("first command answered 2xx after", healed)

    async def user(self, worker: int, workers: int) -> None:
        for n in itertools.count(worker, workers):
            if self.stopping.is_set():
                return
            await self.command(self.lines[n % len(self.lines)], n // len(self.lines))
            await asyncio.sleep(PAUSE)

    async def reader(self) -> None:
        """A colleague opens the shared links (the hot read path)."""
        for n in itertools.count():
            if self.stopping.is_set():
                return
            links = sorted(self.ledger.acknowledged)
            share_id, phase = links[n * 7 % len(links)], self.phase
            try:
                answer = await self.client.get(
                    self.share_url(f"/api/v1/shares/{share_id}"), headers=READER
                )
                self.count(phase, "read", answer.status_code)
            except httpx.TransportError:
                self.count(phase, "read", NO_ANSWER)
            await asyncio.sleep(PAUSE)

    async def community_requests(self) -> None:
        for n in itertools.count():
            if self.stopping.is_set():
                return
            line, phase = self.live_lines()[n % len(self.live_lines())], self.phase
            try:
                answer = await self.client.post(
                    self.share_url(f"/api/v1/chats/{line.feed.chat_id}/community-share"),
                    json={"access": "public"},
                    headers=line.owner,
                )
            except httpx.TransportError:
                self.count(phase, "community-share", NO_ANSWER)
            else:
                self.count(phase, "community-share", answer.status_code)
                if answer.status_code == 202:
                    self.ledger.requests[answer.json()["request_id"]] = line.feed.owner_id
            await asyncio.sleep(0.4)

    async def admin(self) -> None:
        """The admin flips text-to-speech now and then."""
        url = self.stack.url("settings_service") + "/api/v1/admin/settings/tts"
        for n in itertools.count():
            if self.stopping.is_set():
                return
            phase = self.phase
            try:
                answer = await self.client.put(url, json={"enabled": n % 2 == 0}, headers=ADMIN)
                self.count(phase, "tts", answer.status_code)
            except httpx.TransportError:
                self.count(phase, "tts", NO_ANSWER)
            await asyncio.sleep(1.0)

    async def run(self, workers: int = 2) -> None:
        """Until `stopping` is set."""
        await asyncio.gather(
            self.feed_chats(),
            self.reader(),
            self.community_requests(),
            self.admin(),
            *(self.user(worker, workers) for worker in range(workers)),
        )


class ChatProducer:
    """Sends chat events keyed by chat id, each until Kafka acknowledges it: a broker that is
    down is waited for, with a new producer when the old one gave up."""

    def __init__(self, stack: InfraStack, ledger: Ledger | None = None) -> None:
        self.bootstrap = stack.kafka.bootstrap_servers
        self.ledger = ledger
        self.producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Any:
        return self.send

    async def __aexit__(self, *exc: object) -> None:
        await self._drop()

    async def send(self, event: Any) -> None:
        value = contracts.encode_event(event)
        while True:
            try:
                producer = await self._producer()
                async with asyncio.timeout(SEND_TIMEOUT):
                    await producer.send_and_wait(CHAT_EVENTS, value, key=event.chat_id.encode())
                return
            except (KafkaError, TimeoutError, OSError):
                if self.ledger is not None:
                    self.ledger.chat_sends_retried += 1
                await self._drop()
                await asyncio.sleep(0.5)

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, enable_idempotence=True, request_timeout_ms=4000
            )
            self.producer = producer  # stopped by `_drop` even if it never started
            async with asyncio.timeout(SEND_TIMEOUT):
                await producer.start()
        return self.producer

    async def _drop(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await producer.stop()
            except (KafkaError, TimeoutError, OSError):
                pass  # a producer that cannot reach its broker is dropped all the same
