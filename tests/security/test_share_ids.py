"""Share ids cannot be guessed (INTERFACE.md §3): at least 128 random bits, URL-safe, never
repeated; and a guess tells nothing — every miss is the same 404 as a deleted link's."""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from share_service.domain.share_link import new_share_id
from tests.security.conftest import OTHER, OWNER, Stack

pytestmark = pytest.mark.integration

URL_SAFE = string.ascii_letters + string.digits + "-_"
URL_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
GENERATED = 10_000
GUESSES = 1_000


def bits_of(share_id: str) -> float:
    return len(share_id) * math.log2(len(URL_SAFE))


def test_generated_ids_are_url_safe_carry_128_bits_and_never_repeat() -> None:
    ids = [new_share_id() for _ in range(GENERATED)]
    assert len(set(ids)) == GENERATED
    assert all(URL_SAFE_ID.match(share_id) for share_id in ids)
    assert min(bits_of(share_id) for share_id in ids) >= 128


def test_every_position_of_an_id_is_random() -> None:
    """No fixed prefix, counter or timestamp: each position uses the whole alphabet, about
    evenly (a 64-letter alphabet over 10,000 ids: ~156 of each letter per position)."""
    ids = [new_share_id() for _ in range(GENERATED)]
    for position in range(len(ids[0])):
        letters = Counter(share_id[position] for share_id in ids)
        assert len(letters) == len(URL_SAFE), position
        assert max(letters.values()) < 3 * GENERATED / len(URL_SAFE), position


async def test_the_links_the_service_hands_out_are_such_ids(stack: Stack) -> None:
    feeds = [await stack.share.chat("alice", "hello") for _ in range(5)]
    answers = [await stack.share.share(feed, OWNER) for feed in feeds]
    share_ids = [answer.json()["share_id"] for answer in answers]
    assert len(set(share_ids)) == len(share_ids)
    for answer, share_id in zip(answers, share_ids, strict=True):
        assert URL_SAFE_ID.match(share_id)
        assert bits_of(share_id) >= 128
        assert answer.json()["url"].endswith(f"/s/{share_id}")


async def in_batches(calls: list[Callable[[], Awaitable[httpx.Response]]]) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    for start in range(0, len(calls), 50):
        answers += await asyncio.gather(*(call() for call in calls[start : start + 50]))
    return answers


PER_ANSWER_HEADERS = {"date", "x-correlation-id", "traceparent"}  # fresh on every answer


def headers_of(answer: httpx.Response) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in answer.headers.items() if k not in PER_ANSWER_HEADERS))


async def deleted_link(stack: Stack) -> str:
    feed = await stack.share.chat("alice", "soon gone")
    share_id: str = (await stack.share.share(feed, OWNER)).json()["share_id"]
    assert (
        await stack.share.client.delete(f"/api/v1/shares/{share_id}", headers=OWNER)
    ).status_code == 204
    return share_id


async def test_random_guesses_never_hit_and_all_miss_alike(stack: Stack) -> None:
    client = stack.share.client
    guesses = [secrets.token_urlsafe(24) for _ in range(GUESSES)]
    gone = await deleted_link(stack)

    def read(path: str) -> Callable[[], Awaitable[httpx.Response]]:
        return lambda: client.get(path, headers=OTHER)

    api = await in_batches([read(f"/api/v1/shares/{guess}") for guess in [*guesses, gone]])
    pages = await in_batches([read(f"/s/{guess}") for guess in [*guesses, gone]])
    for answers in (api, pages):
        assert {answer.status_code for answer in answers} == {404}
        assert len({answer.content for answer in answers}) == 1
        assert len({headers_of(answer) for answer in answers}) == 1
        assert all(
            guess.encode() not in answer.content
            for guess, answer in zip(guesses, answers[:GUESSES], strict=True)
        )
    assert {answer.headers["content-type"] for answer in api} == {"application/json"}
