"""Which answers of the community site are worth another attempt, how long the publisher waits
before it, and what the site's client sends."""

from __future__ import annotations

import json

import httpx
import pytest

from community_publisher.adapters.community_site import CommunitySiteClient, read_answer
from community_publisher.domain.upload_attempts import (
    Accepted,
    Backoff,
    Refused,
    TryAgain,
    is_worth_retrying,
)

BACKOFF = Backoff(max_attempts=5, first_delay=0.5, max_delay=4.0)


def test_the_backoff_doubles_up_to_its_ceiling() -> None:
    ceilings = [BACKOFF.delay(retry, draw=1.0) for retry in range(1, 7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_jitter_takes_off_at_most_half() -> None:
    assert BACKOFF.delay(2, draw=0.0) == 0.5
    assert BACKOFF.delay(2, draw=0.5) == 0.75
    assert all(0.5 <= BACKOFF.delay(2, draw=d / 10) <= 1.0 for d in range(11))


def test_a_very_late_retry_still_waits_the_ceiling() -> None:
    assert BACKOFF.delay(10_000, draw=1.0) == 4.0


def test_attempts_are_bounded() -> None:
    assert [BACKOFF.allows_another(n) for n in (1, 4, 5, 6)] == [True, True, False, False]
    assert not Backoff(max_attempts=1, first_delay=0.1, max_delay=0.1).allows_another(1)


@pytest.mark.parametrize(
    ("max_attempts", "first_delay", "max_delay"), [(0, 0.1, 1.0), (3, -1.0, 1.0), (3, 2.0, 1.0)]
)
def test_a_backoff_that_cannot_work_is_refused(
    max_attempts: int, first_delay: float, max_delay: float
) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(max_attempts, first_delay, max_delay)


@pytest.mark.parametrize(
    ("status", "worth"),
    [(status, True) for status in (500, 502, 503, 408, 429)]
    + [(status, False) for status in (400, 401, 403, 404, 409, 422)],
)
def test_server_errors_and_throttling_are_retried_other_client_errors_are_not(
    status: int, worth: bool
) -> None:
    assert is_worth_retrying(status) is worth
    result = read_answer(httpx.Response(status, json={"detail": "no"}))
    assert isinstance(result, TryAgain if worth else Refused)
    assert result.reason == f"the community site answered {status}: no"


def test_a_2xx_with_id_and_url_is_accepted() -> None:
    answer = httpx.Response(201, json={"id": "c-1", "url": "https://community.example/c/c-1"})
    assert read_answer(answer) == Accepted("c-1", "https://community.example/c/c-1")


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1]",
        b'{"id": "c-1"}',
        b'{"id": "", "url": "u"}',
        b'{"id": "x", "url": "' + b"u" * 3000 + b'"}',
    ],
)
def test_a_2xx_without_a_usable_id_and_url_is_refused(body: bytes) -> None:
    assert isinstance(read_answer(httpx.Response(200, content=body)), Refused)


def recording_client(token: str | None) -> tuple[CommunitySiteClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": "c-1", "url": "https://c/c-1"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return CommunitySiteClient(client, "https://c/api/v1/chats/upload", token), seen


@pytest.mark.parametrize(
    ("token", "authorization"), [("s3cret", "Bearer s3cret"), ("", None), (None, None)]
)
async def test_the_upload_carries_its_idempotency_key_and_the_token_only_when_set(
    token: str | None, authorization: str | None
) -> None:
    site, seen = recording_client(token)
    body = {"chat": {"title": "t", "messages": []}, "access": "public"}
    assert await site.upload("req-9", body) == Accepted("c-1", "https://c/c-1")
    (request,) = seen
    assert (request.method, str(request.url)) == ("POST", "https://c/api/v1/chats/upload")
    assert request.headers["Idempotency-Key"] == "req-9"
    assert request.headers.get("Authorization") == authorization
    assert json.loads(request.content) == body


async def test_timeouts_and_connection_errors_are_worth_another_attempt() -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refusing(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    for fault, words in ((timing_out, "did not answer in time"), (refusing, "could not reach")):
        client = httpx.AsyncClient(transport=httpx.MockTransport(fault))
        result = await CommunitySiteClient(client, "https://c/upload", None).upload("r", {})
        assert isinstance(result, TryAgain)
        assert words in result.reason
