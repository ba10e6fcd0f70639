"""Tokens as the platform's login would issue them, for tests."""

from __future__ import annotations

import time

import jwt

from servicekit.config import DEV_JWT_SECRET


def make_token(
    sub: str = "user-1",
    role: str = "user",
    *,
    secret: str = DEV_JWT_SECRET,
    expires_in: float = 3600,
    **claims: object,
) -> str:
    """A token as the platform's login would issue it."""
    payload = {"sub": sub, "role": role, "exp": int(time.time() + expires_in), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
