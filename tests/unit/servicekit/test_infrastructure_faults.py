"""A request that meets an outage of PostgreSQL or Kafka is answered 503 with Retry-After and a
sentence — never a bare 500 — while a bug in the service still is one."""

from __future__ import annotations

import asyncpg
import eventsourcing.persistence
import httpx
import pytest
from fastapi import FastAPI

from servicekit.faults import is_transient
from servicekit.http import install_error_handlers

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    eventsourcing.persistence.OperationalError("the connection pool timed out"),
]


def app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/command")
    async def command() -> None:
        raise error

    return app


@pytest.mark.parametrize("error", OUTAGES, ids=lambda error: type(error).__name__)
async def test_an_outage_is_answered_503_with_retry_after(error: Exception) -> None:
    transport = httpx.ASGITransport(app=app_raising(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.post("/command")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "1"
    assert "database or message broker" in answer.json()["detail"]
    assert is_transient(error)


async def test_a_bug_is_still_a_500() -> None:
    transport = httpx.ASGITransport(app=app_raising(KeyError("oops")), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        answer = await client.post("/command")
    assert answer.status_code == 500
    assert not is_transient(KeyError("oops"))
