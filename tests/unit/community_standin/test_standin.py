"""The community-site stand-in behaves as INTERFACE.md §6 says the dev stack's site does."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from community_standin.app import create_app
from community_standin.config import StandinSettings

UPLOAD = "/api/v1/chats/upload"


def upload_body(access: str = "private", request_id: str = "req-1") -> dict[str, Any]:
    return {
        "chat": {
            "title": "Sourdough help",
            "messages": [{"id": "m1", "parent_id": None, "role": "user", "content": "hi"}],
        },
        "access": access,
        "source": {"instance_id": "inst-1", "request_id": request_id, "owner_id": "alice"},
    }


def site_client(token: str = "") -> httpx.AsyncClient:
    app = create_app(StandinSettings(community_token=token))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://site")


@pytest.fixture
async def site() -> AsyncIterator[httpx.AsyncClient]:
    async with site_client() as client:
        yield client


async def test_an_accepted_upload_is_listed_with_its_headers_and_body(
    site: httpx.AsyncClient,
) -> None:
    answer = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})

    assert answer.status_code == 201
    shared = answer.json()
    assert shared["url"] == f"http://site/c/{shared['id']}"
    items = (await site.get("/api/v1/chats")).json()["items"]
    assert len(items) == 1
    assert items[0]["headers"]["idempotency-key"] == "req-1"
    assert items[0]["headers"]["content-type"] == "application/json"
    assert items[0]["body"] == upload_body()


async def test_uploads_are_listed_oldest_first(site: httpx.AsyncClient) -> None:
    for n in range(3):
        body = upload_body(request_id=f"req-{n}")
        await site.post(UPLOAD, json=body, headers={"Idempotency-Key": f"req-{n}"})

    items = (await site.get("/api/v1/chats")).json()["items"]

    assert [i["body"]["source"]["request_id"] for i in items] == ["req-0", "req-1", "req-2"]


async def test_it_fails_the_next_uploads_it_is_told_to_then_accepts(
    site: httpx.AsyncClient,
) -> None:
    control = await site.post("/_control", json={"fail_next": 2, "fail_status": 502})
    assert control.json()["fail_next"] == 2

    statuses = [
        (
            await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})
        ).status_code
        for _ in range(3)
    ]

    assert statuses == [502, 502, 201]
    state = (await site.get("/_control")).json()
    assert state == {
        "attempts": 3,
        "accepted": 1,
        "fail_next": 0,
        "fail_status": 502,
        "delay_ms": 0,
    }


async def test_the_failure_status_defaults_to_503(site: httpx.AsyncClient) -> None:
    await site.post("/_control", json={"fail_next": 1})

    answer = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})

    assert answer.status_code == 503
    assert "detail" in answer.json()


async def test_a_repeated_idempotency_key_gets_the_same_answer_and_no_second_upload(
    site: httpx.AsyncClient,
) -> None:
    first = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})
    again = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == first.json()
    assert len((await site.get("/api/v1/chats")).json()["items"]) == 1
    state = (await site.get("/_control")).json()
    assert (state["attempts"], state["accepted"]) == (2, 1)


async def test_an_upload_without_idempotency_key_is_refused(site: httpx.AsyncClient) -> None:
    answer = await site.post(UPLOAD, json=upload_body())

    assert answer.status_code == 400
    assert isinstance(answer.json()["detail"], str)


async def test_the_token_is_required_when_one_is_set() -> None:
    async with site_client(token="s3cret") as site:
        headers = {"Idempotency-Key": "req-1"}
        missing = await site.post(UPLOAD, json=upload_body(), headers=headers)
        wrong = await site.post(
            UPLOAD, json=upload_body(), headers={**headers, "Authorization": "Bearer nope"}
        )
        right = await site.post(
            UPLOAD, json=upload_body(), headers={**headers, "Authorization": "Bearer s3cret"}
        )

        assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
        items = (await site.get("/api/v1/chats")).json()["items"]
        assert items[0]["headers"]["authorization"] == "Bearer s3cret"


async def test_the_token_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSHARE_COMMUNITY_TOKEN", "from-env")
    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as c:
        answer = await c.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "k"})

    assert answer.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"chat": {"title": "t", "messages": []}, "access": "friends", "source": {}},
        {"chat": {"messages": []}, "access": "public"},
        {
            "chat": {"title": "t", "messages": "not a list"},
            "access": "public",
            "source": {"instance_id": "i", "request_id": "r", "owner_id": "o"},
        },
        ["not", "an", "object"],
    ],
)
async def test_a_body_without_the_upload_shape_is_refused(
    site: httpx.AsyncClient, body: Any
) -> None:
    answer = await site.post(UPLOAD, json=body, headers={"Idempotency-Key": "req-1"})

    assert answer.status_code == 422
    assert (await site.get("/_control")).json()["accepted"] == 0


async def test_a_body_that_is_not_json_is_refused(site: httpx.AsyncClient) -> None:
    answer = await site.post(
        UPLOAD,
        content=b"{not json",
        headers={"Idempotency-Key": "req-1", "Content-Type": "application/json"},
    )

    assert answer.status_code == 422


async def test_full_history_uploads_keep_their_history(site: httpx.AsyncClient) -> None:
    body = upload_body(access="public_full_history")
    body["chat"]["history"] = {"messages": {"m1": {"children_ids": []}}, "current_id": "m1"}

    answer = await site.post(UPLOAD, json=body, headers={"Idempotency-Key": "req-1"})

    assert answer.status_code == 201
    assert (await site.get("/api/v1/chats")).json()["items"][0]["body"] == body


async def test_the_delay_is_applied_and_reported(site: httpx.AsyncClient) -> None:
    control = await site.post("/_control", json={"delay_ms": 5})
    answer = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})

    assert control.json()["delay_ms"] == 5
    assert answer.status_code == 201
    assert (await site.get("/_control")).json()["delay_ms"] == 5


async def test_the_delay_holds_back_the_answer_not_the_upload(site: httpx.AsyncClient) -> None:
    """A publisher that gives up (or dies) while waiting has been uploaded all the same."""
    await site.post("/_control", json={"delay_ms": 400})
    pending = asyncio.create_task(
        site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})
    )
    await asyncio.sleep(0.2)
    assert not pending.done()
    assert (await site.get("/_control")).json()["accepted"] == 1
    assert (await pending).status_code == 201


async def test_each_control_post_sets_all_three_settings(site: httpx.AsyncClient) -> None:
    await site.post("/_control", json={"fail_next": 4, "fail_status": 500, "delay_ms": 7})

    state = (await site.post("/_control", json={"delay_ms": 1})).json()

    assert (state["fail_next"], state["fail_status"], state["delay_ms"]) == (0, 503, 1)


async def test_reset_forgets_uploads_counters_and_settings(site: httpx.AsyncClient) -> None:
    await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})
    await site.post("/_control", json={"fail_next": 1, "delay_ms": 3})

    state = (await site.post("/_control/reset")).json()

    assert state == {
        "attempts": 0,
        "accepted": 0,
        "fail_next": 0,
        "fail_status": 503,
        "delay_ms": 0,
    }
    assert (await site.get("/api/v1/chats")).json() == {"items": []}
    again = await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})
    assert again.status_code == 201


async def test_health(site: httpx.AsyncClient) -> None:
    assert (await site.get("/healthz")).json() == {"status": "ok"}
    assert (await site.get("/readyz")).status_code == 200


async def test_concurrent_repeats_of_one_key_are_accepted_once(site: httpx.AsyncClient) -> None:
    async def send() -> httpx.Response:
        return await site.post(UPLOAD, json=upload_body(), headers={"Idempotency-Key": "req-1"})

    answers = await asyncio.gather(*(send() for _ in range(5)))

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert (await site.get("/_control")).json()["accepted"] == 1
