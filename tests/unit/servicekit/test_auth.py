"""JWT rules of INTERFACE.md §2, on a tiny app using the shared dependencies."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, tzinfo

import httpx
import pytest
from fastapi import FastAPI

from servicekit.auth import AdminUser, CurrentUser, PageUser
from servicekit.config import DEV_JWT_SECRET, ServiceSettings
from servicekit.http import install_error_handlers
from tests.identities import bearer, make_token


def app_with(settings: ServiceSettings) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings
    install_error_handlers(app)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"sub": user.user_id, "role": user.role}

    @app.get("/admin")
    async def admin(user: AdminUser) -> dict[str, str]:
        return {"sub": user.user_id}

    @app.get("/page")
    async def page(user: PageUser) -> dict[str, str]:
        return {"sub": user.user_id}

    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = app_with(ServiceSettings(login_url="/auth"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_a_valid_user_token_is_accepted(client: httpx.AsyncClient) -> None:
    answer = await client.get("/me", headers=bearer(make_token("alice", "user")))
    assert answer.status_code == 200
    assert answer.json() == {"sub": "alice", "role": "user"}


async def test_no_token_is_401_with_a_login_url_back_to_the_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/me?x=1")
    assert answer.status_code == 401
    assert answer.json()["login_url"] == "/auth?redirect=%2Fme%3Fx%3D1"
    assert answer.json()["detail"]


async def test_a_token_signed_with_another_secret_is_401(client: httpx.AsyncClient) -> None:
    forged = make_token("alice", "admin", secret="another-secret-of-at-least-32-bytes!")
    answer = await client.get("/me", headers=bearer(forged))
    assert answer.status_code == 401


async def test_an_expired_token_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.get("/me", headers=bearer(make_token("alice", expires_in=-10)))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


async def test_alg_none_is_refused(client: httpx.AsyncClient) -> None:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'sub': 'eve', 'role': 'admin', 'exp': 9999999999})}."
    answer = await client.get("/admin", headers=bearer(unsigned))
    assert answer.status_code == 401


async def test_a_pending_account_is_403(client: httpx.AsyncClient) -> None:
    answer = await client.get("/me", headers=bearer(make_token("bob", "pending")))
    assert answer.status_code == 403
    assert "pending" in answer.json()["detail"]


async def test_an_unknown_role_is_401(client: httpx.AsyncClient) -> None:
    answer = await client.get("/me", headers=bearer(make_token("bob", "superuser")))
    assert answer.status_code == 401


async def test_admin_only_route_refuses_a_user_and_accepts_an_admin(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/admin", headers=bearer(make_token("u", "user")))).status_code == 403
    assert (await client.get("/admin", headers=bearer(make_token("a", "admin")))).status_code == 200


async def test_the_api_ignores_the_cookie_but_the_page_reads_it(client: httpx.AsyncClient) -> None:
    client.cookies.set("token", make_token("carol"))
    assert (await client.get("/me")).status_code == 401
    assert (await client.get("/page")).status_code == 200


async def test_issuer_and_audience_must_match_when_configured() -> None:
    app = app_with(ServiceSettings(jwt_issuer="https://chat.example", jwt_audience="chatshare"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        good = make_token("a", iss="https://chat.example", aud="chatshare")
        wrong = make_token("a", iss="https://evil.example", aud="chatshare")
        assert (await c.get("/me", headers=bearer(good))).status_code == 200
        assert (await c.get("/me", headers=bearer(wrong))).status_code == 401
        assert (await c.get("/me", headers=bearer(make_token("a")))).status_code == 401


def test_production_refuses_the_dev_secret_and_short_secrets() -> None:
    with pytest.raises(ValueError, match="development default"):
        ServiceSettings(env="production", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        ServiceSettings(env="production", jwt_secret="short")
    assert ServiceSettings(env="production", jwt_secret="x" * 32).env == "production"


# Verified tokens are remembered until their exp: never past it, never across secrets.


async def test_a_token_accepted_before_is_refused_once_it_expires(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make_token("alice", "user", expires_in=60)
    assert (await client.get("/me", headers=bearer(token))).status_code == 200

    later = time.time() + 61
    monkeypatch.setattr("servicekit.auth._now", lambda: later)
    monkeypatch.setattr("jwt.api_jwt.datetime", _clock_at(later))
    answer = await client.get("/me", headers=bearer(token))

    assert answer.status_code == 401


async def test_a_token_accepted_under_one_secret_is_refused_under_another() -> None:
    token = make_token("alice", "user")
    first = app_with(ServiceSettings(login_url="/auth"))
    other = app_with(ServiceSettings(login_url="/auth", jwt_secret="another secret " * 4))
    for app, expected in ((first, 200), (other, 401)):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            assert (await client.get("/me", headers=bearer(token))).status_code == expected


def _clock_at(moment: float) -> type[datetime]:
    """PyJWT's own clock, moved to `moment`."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Clock:
            return cls.fromtimestamp(moment, tz)

    return Clock
