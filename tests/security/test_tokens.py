"""Tokens that must not open anything (INTERFACE.md §2): forged, expired, unsigned, of another
algorithm, missing a claim, of an unknown role, for another issuer or audience. Each is a 401
with a way to log in on the JSON API — share_service's and settings_service's — and a 302 to
the login page on the shared-chat page, sent as the header or as the cookie alike."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from devstack import postgres
from servicekit.config import DEV_JWT_SECRET
from share_service.config import ShareServiceSettings
from tests.identities import bearer
from tests.integration.share_service.share_harness import ShareService, running_share_service
from tests.running_services import new_database, new_topic_prefix
from tests.security.conftest import OWNER, Stack

pytestmark = [
    pytest.mark.integration,
    # HS384/HS512 tokens signed with the 37-byte dev secret: refused anyway, no need to warn.
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]

ISSUER = "https://login.chat.example"
AUDIENCE = "chatshare"
Claims = dict[str, Any]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def crafted(header: dict[str, Any], claims: Claims, signature: bytes | None = None) -> str:
    """A token put together by hand; signed with the instance's secret (HMAC-SHA256) unless a
    signature is given."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if signature is None:
        signature = hmac.new(
            DEV_JWT_SECRET.encode(), signing_input.encode(), hashlib.sha256
        ).digest()
    return f"{signing_input}.{b64(signature)}"


def signed(claims: Claims, secret: str = DEV_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def without(claims: Claims, name: str) -> Claims:
    return {key: value for key, value in claims.items() if key != name}


def tampered(claims: Claims) -> str:
    """A user's valid token whose payload was rewritten to claim the admin role."""
    header, _, signature = signed(claims).split(".")
    payload = b64(json.dumps({**claims, "role": "admin"}).encode())
    return f"{header}.{payload}.{signature}"


@dataclass(frozen=True)
class BadToken:
    name: str
    build: Callable[[Claims], str]  # from the claims a valid token of the service would carry


BAD_TOKENS = [
    BadToken("signed with another secret",
             lambda c: signed(c, secret="another-instance-secret-0123456789abcdef")),
    BadToken("expired a minute ago", lambda c: signed({**c, "exp": int(time.time()) - 60})),
    BadToken("not valid for an hour yet", lambda c: signed({**c, "nbf": int(time.time()) + 3600})),
    BadToken("alg none, unsigned", lambda c: crafted({"alg": "none", "typ": "JWT"}, c, b"")),
    BadToken("alg None, unsigned", lambda c: crafted({"alg": "None", "typ": "JWT"}, c, b"")),
    BadToken("alg none, with a valid HS256 signature",
             lambda c: crafted({"alg": "none", "typ": "JWT"}, c)),
    BadToken("RS256 header, HMAC-signed with the secret",
             lambda c: crafted({"alg": "RS256", "typ": "JWT"}, c)),
    BadToken("RS256 header, random signature",
             lambda c: crafted({"alg": "RS256", "typ": "JWT"}, c, secrets.token_bytes(256))),
    BadToken("HS384 with the instance's secret", lambda c: signed(c, algorithm="HS384")),
    BadToken("HS512 with the instance's secret", lambda c: signed(c, algorithm="HS512")),
    BadToken("payload raised to admin", tampered),
    BadToken("no sub", lambda c: signed(without(c, "sub"))),
    BadToken("empty sub", lambda c: signed({**c, "sub": ""})),
    BadToken("sub not a string", lambda c: signed({**c, "sub": 42})),
    BadToken("no exp", lambda c: signed(without(c, "exp"))),
    BadToken("exp not a number", lambda c: signed({**c, "exp": "tomorrow"})),
    BadToken("no role", lambda c: signed(without(c, "role"))),
    BadToken("unknown role", lambda c: signed({**c, "role": "superuser"})),
    BadToken("role in capitals", lambda c: signed({**c, "role": "Admin"})),
    BadToken("role as a list", lambda c: signed({**c, "role": ["admin"]})),
    BadToken("not a JWT", lambda c: "not-a-token"),
    BadToken("three empty parts", lambda c: ".."),
]  # fmt: skip

WRONG_ISSUER_OR_AUDIENCE = [
    BadToken("another issuer", lambda c: signed({**c, "iss": "https://evil.example"})),
    BadToken("no issuer", lambda c: signed(without(c, "iss"))),
    BadToken("another audience", lambda c: signed({**c, "aud": "another-service"})),
    BadToken("no audience", lambda c: signed(without(c, "aud"))),
]


def valid_claims(**extra: Any) -> Claims:
    return {"sub": "alice", "role": "user", "exp": int(time.time()) + 3600, **extra}


@dataclass
class Target:
    """A share_service with a live link of alice's, and the JSON routes to knock on."""

    share: ShareService
    link: str
    api: list[tuple[httpx.AsyncClient, str]]

    @property
    def page(self) -> str:
        return f"/s/{self.link}"


async def live_link(share: ShareService, headers: dict[str, str]) -> str:
    feed = await share.chat("alice", "hello")
    answer = await share.share(feed, headers)
    assert answer.status_code == 201, answer.text
    share_id: str = answer.json()["share_id"]
    shown = await share.client.get(f"/api/v1/shares/{share_id}?min_version=1", headers=headers)
    assert shown.status_code == 200
    return share_id


def routes_of(share: ShareService, link: str) -> list[tuple[httpx.AsyncClient, str]]:
    # The dependency-injected route and the lean hot route check tokens by different paths.
    return [(share.client, "/api/v1/shares?owner=me"), (share.client, f"/api/v1/shares/{link}")]


@pytest.fixture(scope="module")
async def default_target(stack: Stack) -> Target:
    link = await live_link(stack.share, OWNER)
    settings_route = (stack.settings.client, "/api/v1/settings/features")
    return Target(stack.share, link, [*routes_of(stack.share, link), settings_route])


@pytest.fixture(scope="module")
async def configured_target(
    postgres_node: postgres.PostgresNode, kafka_bootstrap: str
) -> AsyncIterator[Target]:
    """share_service with CHATSHARE_JWT_ISSUER and CHATSHARE_JWT_AUDIENCE set."""
    settings = ShareServiceSettings(
        database_url=new_database(postgres_node),
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=await new_topic_prefix(kafka_bootstrap),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    async with running_share_service(settings) as share:
        valid = bearer(signed(valid_claims(iss=ISSUER, aud=AUDIENCE)))
        link = await live_link(share, valid)
        yield Target(share, link, routes_of(share, link))


async def assert_refused(target: Target, token: str) -> None:
    for client, path in target.api:
        answer = await client.get(path, headers=bearer(token))
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["detail"]
        assert answer.json()["login_url"] == f"/auth?redirect={quote(path, safe='')}"
    login = f"/auth?redirect={quote(target.page, safe='')}"
    for headers in (bearer(token), {"Cookie": f"token={token}"}):
        page = await target.share.client.get(target.page, headers=headers)
        assert (page.status_code, page.headers.get("location")) == (302, login), headers


async def assert_accepted(target: Target, token: str) -> None:
    for client, path in target.api:
        answer = await client.get(path, headers=bearer(token))
        assert answer.status_code == 200, (path, answer.text)
    for headers in (bearer(token), {"Cookie": f"token={token}"}):
        page = await target.share.client.get(target.page, headers=headers)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]


@pytest.mark.parametrize("bad", BAD_TOKENS, ids=lambda bad: bad.name)
async def test_a_bad_token_is_401_on_the_api_and_a_redirect_to_login_on_the_page(
    default_target: Target, bad: BadToken
) -> None:
    await assert_refused(default_target, bad.build(valid_claims()))


@pytest.mark.parametrize("bad", BAD_TOKENS + WRONG_ISSUER_OR_AUDIENCE, ids=lambda bad: bad.name)
async def test_with_an_issuer_and_audience_configured_a_token_must_name_them(
    configured_target: Target, bad: BadToken
) -> None:
    await assert_refused(configured_target, bad.build(valid_claims(iss=ISSUER, aud=AUDIENCE)))


@pytest.mark.parametrize(
    "claims",
    [valid_claims(), valid_claims(name="Alice"), valid_claims(iss=ISSUER, aud=AUDIENCE)],
    ids=["plain", "with a name", "with an unchecked issuer and audience"],
)
async def test_a_valid_token_opens_the_api_and_the_page(
    default_target: Target, claims: Claims
) -> None:
    await assert_accepted(default_target, signed(claims))


async def test_a_valid_token_for_the_configured_issuer_and_audience_opens_them(
    configured_target: Target,
) -> None:
    await assert_accepted(configured_target, signed(valid_claims(iss=ISSUER, aud=AUDIENCE)))


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic YWxpY2U6c2VjcmV0", f"Token {signed(valid_claims())}"],
    ids=["empty", "scheme only", "scheme and a space", "basic", "another scheme"],
)
async def test_an_authorization_header_without_a_bearer_token_is_no_login(
    default_target: Target, authorization: str
) -> None:
    for client, path in default_target.api:
        answer = await client.get(path, headers={"Authorization": authorization})
        assert answer.status_code == 401, (path, authorization)
    page = await default_target.share.client.get(
        default_target.page, headers={"Authorization": authorization}
    )
    assert page.status_code == 302
