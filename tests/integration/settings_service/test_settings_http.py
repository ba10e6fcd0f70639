"""settings_service's HTTP API as INTERFACE.md §4 writes it, on a real PostgreSQL database (and
the test broker the service's lifespan connects to)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI

from settings_service.application.settings_app import TooManyConcurrentChanges
from settings_service.bootstrap import create_app
from settings_service.config import SettingsServiceSettings
from tests.identities import bearer, make_token

pytestmark = pytest.mark.integration

FEATURES = "/api/v1/settings/features"
COMMUNITY_SHARING = "/api/v1/admin/settings/community-sharing"
TTS = "/api/v1/admin/settings/tts"
HISTORY = "/api/v1/admin/settings/history"
RFC_3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

ADMIN = bearer(make_token("admin-1", "admin"))
OTHER_ADMIN = bearer(make_token("admin-2", "admin"))
USER = bearer(make_token("user-1", "user"))
PENDING = bearer(make_token("newcomer", "pending"))
NOBODY: dict[str, str] = {}


@pytest.fixture
async def service(
    database_url: str, kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[FastAPI]:
    """The service as uvicorn runs it, lifespan included, on a fresh database and topics."""
    settings = SettingsServiceSettings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=topic_prefix,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(service: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service)
    async with httpx.AsyncClient(transport=transport, base_url="http://settings.test") as client:
        yield client


async def features(client: httpx.AsyncClient) -> dict[str, object]:
    answer = await client.get(FEATURES, headers=USER)
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


async def test_everything_is_off_until_an_admin_turns_it_on(client: httpx.AsyncClient) -> None:
    assert await features(client) == {
        "community_sharing_enabled": False,
        "tts_enabled": False,
        "policy_version": 0,
    }
    answer = await client.get(HISTORY, headers=ADMIN)
    assert (answer.status_code, answer.json()) == (200, {"items": []})


@pytest.mark.parametrize("identity", [ADMIN, USER], ids=["admin", "user"])
async def test_any_user_of_the_instance_reads_the_features(
    client: httpx.AsyncClient, identity: dict[str, str]
) -> None:
    answer = await client.get(FEATURES, headers=identity)
    assert answer.status_code == 200
    assert set(answer.json()) == {"community_sharing_enabled", "tts_enabled", "policy_version"}
    assert "no-store" in answer.headers["cache-control"]


async def test_a_pending_account_may_not_read_the_features(client: httpx.AsyncClient) -> None:
    answer = await client.get(FEATURES, headers=PENDING)
    assert answer.status_code == 403


async def test_without_a_token_the_features_answer_401_with_a_way_to_log_in(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(FEATURES)
    assert answer.status_code == 401
    assert answer.json()["login_url"] == "/auth?redirect=%2Fapi%2Fv1%2Fsettings%2Ffeatures"


ADMIN_CALLS = [
    ("PUT", COMMUNITY_SHARING, {"enabled": True}),
    ("PUT", TTS, {"enabled": True}),
    ("GET", HISTORY, None),
]


@pytest.mark.parametrize(
    ("identity", "status"),
    [(USER, 403), (PENDING, 403), (NOBODY, 401)],
    ids=["user", "pending", "no-token"],
)
async def test_only_an_admin_may_use_the_admin_settings(
    client: httpx.AsyncClient, identity: dict[str, str], status: int
) -> None:
    for method, path, body in ADMIN_CALLS:
        answer = await client.request(method, path, json=body, headers=identity)
        assert answer.status_code == status, (method, path)
        assert answer.json()["detail"]
    assert await features(client) == {
        "community_sharing_enabled": False,
        "tts_enabled": False,
        "policy_version": 0,
    }


async def test_the_admin_turns_community_sharing_on_and_the_next_read_shows_it(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.put(COMMUNITY_SHARING, json={"enabled": True}, headers=ADMIN)
    assert (answer.status_code, answer.json()) == (
        200,
        {"community_sharing_enabled": True, "policy_version": 1},
    )
    assert await features(client) == {
        "community_sharing_enabled": True,
        "tts_enabled": False,
        "policy_version": 1,
    }


async def test_the_admin_turns_text_to_speech_on_and_off(client: httpx.AsyncClient) -> None:
    on = await client.put(TTS, json={"enabled": True}, headers=ADMIN)
    assert (on.status_code, on.json()) == (200, {"tts_enabled": True, "policy_version": 1})
    off = await client.put(TTS, json={"enabled": False}, headers=ADMIN)
    assert (off.status_code, off.json()) == (200, {"tts_enabled": False, "policy_version": 2})
    assert (await features(client))["tts_enabled"] is False


async def test_setting_the_same_value_twice_changes_nothing(client: httpx.AsyncClient) -> None:
    first = await client.put(COMMUNITY_SHARING, json={"enabled": True}, headers=ADMIN)
    again = await client.put(COMMUNITY_SHARING, json={"enabled": True}, headers=OTHER_ADMIN)
    assert first.json() == again.json() == {"community_sharing_enabled": True, "policy_version": 1}
    history = (await client.get(HISTORY, headers=ADMIN)).json()["items"]
    assert [(item["changed_by"], item["policy_version"]) for item in history] == [("admin-1", 1)]


async def test_the_history_shows_every_change_oldest_first(client: httpx.AsyncClient) -> None:
    await client.put(COMMUNITY_SHARING, json={"enabled": True}, headers=ADMIN)
    await client.put(TTS, json={"enabled": True}, headers=OTHER_ADMIN)
    await client.put(COMMUNITY_SHARING, json={"enabled": False}, headers=OTHER_ADMIN)

    answer = await client.get(HISTORY, headers=ADMIN)
    assert answer.status_code == 200
    items = answer.json()["items"]
    assert [{k: v for k, v in item.items() if k != "changed_at"} for item in items] == [
        {"setting": "community_sharing", "value": True, "changed_by": "admin-1", "policy_version": 1},
        {"setting": "tts", "value": True, "changed_by": "admin-2", "policy_version": 2},
        {"setting": "community_sharing", "value": False, "changed_by": "admin-2", "policy_version": 3},
    ]  # fmt: skip
    moments = [item["changed_at"] for item in items]
    assert all(RFC_3339.match(moment) for moment in moments), moments
    parsed = [datetime.fromisoformat(moment) for moment in moments]
    assert parsed == sorted(parsed)


NOT_A_JSON_BOOLEAN = [
    {"enabled": "yes"},
    {"enabled": "true"},
    {"enabled": 1},
    {"enabled": None},
    {},
    ["enabled"],
]


@pytest.mark.parametrize("path", [COMMUNITY_SHARING, TTS], ids=["sharing", "tts"])
async def test_enabled_must_be_a_json_boolean(client: httpx.AsyncClient, path: str) -> None:
    for body in NOT_A_JSON_BOOLEAN:
        answer = await client.put(path, json=body, headers=ADMIN)
        assert answer.status_code == 422, body
        assert answer.json()["detail"]
    assert (await features(client))["policy_version"] == 0


@pytest.mark.parametrize("path", [COMMUNITY_SHARING, TTS], ids=["sharing", "tts"])
async def test_a_switch_without_a_body_is_422(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.put(path, headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["detail"]


async def test_the_api_is_described_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {FEATURES, COMMUNITY_SHARING, TTS, HISTORY} <= set(paths)
    switch = paths[TTS]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert switch == {"$ref": "#/components/schemas/Switch"}


async def test_a_change_that_keeps_losing_the_race_is_503_and_may_be_retried(
    service: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_overtaken(enabled: bool, changed_by: str) -> None:
        raise TooManyConcurrentChanges("overtaken")

    monkeypatch.setattr(service.state.settings_app, "set_tts", always_overtaken)
    answer = await client.put(TTS, json={"enabled": True}, headers=ADMIN)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
