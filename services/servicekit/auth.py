"""JWT authentication of the instance's users (INTERFACE.md §2), once for every service.

Only HS256 is accepted. The JSON API reads the `Authorization` header only; the HTML page may
also read the `token` cookie (`bearer_or_cookie`), so no cross-site request can act for a user
through the API.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlencode

import jwt
from fastapi import Depends, Request

from servicekit.config import ServiceSettings

Role = Literal["admin", "user", "pending"]
ROLES: tuple[Role, ...] = ("admin", "user", "pending")


@dataclass(frozen=True)
class Principal:
    """The user a request acts for."""

    user_id: str
    role: Role
    name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AuthError(Exception):
    """A request without a usable identity: 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status_code: int, detail: str, login_url: str | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.login_url = login_url


def login_url_for(settings: ServiceSettings, path: str) -> str:
    separator = "&" if "?" in settings.login_url else "?"
    return f"{settings.login_url}{separator}{urlencode({'redirect': path})}"


class VerifiedTokens:
    """Tokens already verified, until their `exp`: a gateway's client sends the same token with
    every request, and verifying it again (HMAC, JSON, claim checks) was a tenth of a share
    command's time. An entry is the exact token string under the exact secret, issuer and
    audience that verified it; from its `exp` on it is gone, and the token meets the full check
    (and its 401) again. Bounded; the least recently used entry goes first."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, ...], tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Principal | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            principal, expires = entry
            if _now() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return principal

    def put(self, key: tuple[str, ...], principal: Principal, expires: float) -> None:
        with self._lock:
            self._entries[key] = (principal, expires)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)


_verified = VerifiedTokens()


def _now() -> float:
    return time.time()


def decode_token(token: str, settings: ServiceSettings) -> Principal:
    """Verify signature, expiry, issuer and audience; raise `jwt.InvalidTokenError` otherwise."""
    key = (token, settings.jwt_secret, settings.jwt_issuer or "", settings.jwt_audience or "")
    known = _verified.get(key)
    if known is not None:
        return known
    principal, expires = _verify(token, settings)
    _verified.put(key, principal, expires)
    return principal


def _verify(token: str, settings: ServiceSettings) -> tuple[Principal, float]:
    options = {"require": ["sub", "exp"], "verify_aud": settings.jwt_audience is not None}
    claims = jwt.decode(
        token,
        settings.jwt_secret,
        algorithms=["HS256"],  # never the token's own choice: refuses `alg: none` and RS/HS mixups
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        options=options,  # type: ignore[arg-type]
    )
    role = claims.get("role")
    if role not in ROLES:
        raise jwt.InvalidTokenError(f"unknown role {role!r}")
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise jwt.InvalidTokenError("sub must be a non-empty string")
    name = claims.get("name")
    principal = Principal(user_id=subject, role=role, name=name if isinstance(name, str) else None)
    return principal, float(claims["exp"])


def _settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _authenticate(request: Request, token: str | None) -> Principal:
    settings = _settings(request)
    if token is None:
        raise AuthError(
            401, "Authentication required: send a bearer token.", _login_url(request, settings)
        )
    try:
        principal = decode_token(token, settings)
    except jwt.ExpiredSignatureError:
        raise AuthError(
            401, "The token has expired; log in again.", _login_url(request, settings)
        ) from None
    except jwt.InvalidTokenError:
        raise AuthError(
            401, "The token is not valid for this instance.", _login_url(request, settings)
        ) from None
    if principal.role == "pending":
        raise AuthError(403, "Your account is pending approval by an administrator.")
    return principal


def _login_url(request: Request, settings: ServiceSettings) -> str:
    """Where a refused caller logs in, to come back here. Only built for a refusal: parsing the
    request's URL was 4 % of the hot read's CPU when every request paid for it."""
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return login_url_for(settings, path)


def api_user_of(request: Request) -> Principal:
    """Any logged-in, non-pending user, from the `Authorization` header only (for lean routes
    that call it directly rather than as a dependency)."""
    return _authenticate(request, _bearer(request))


def page_user_of(request: Request) -> Principal:
    """For the HTML page: the header, else the `token` cookie."""
    return _authenticate(request, _bearer(request) or request.cookies.get("token") or None)


# The dependencies are `async`: no I/O, so FastAPI need not hop to a worker thread per request.
async def current_user(request: Request) -> Principal:
    return api_user_of(request)


async def page_user(request: Request) -> Principal:
    return page_user_of(request)


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not user.is_admin:
        raise AuthError(403, "Only an administrator can do this.")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
PageUser = Annotated[Principal, Depends(page_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
