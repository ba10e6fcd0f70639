"""Each service starts as `make up` starts it and answers health, readiness and metrics."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import RunningStack

pytestmark = pytest.mark.e2e

SERVICES = ["share_service", "settings_service", "community_publisher"]


@pytest.mark.parametrize("service", SERVICES)
async def test_service_is_alive_ready_and_exports_metrics(
    running_stack: RunningStack, service: str
) -> None:
    async with httpx.AsyncClient(base_url=running_stack.url(service), timeout=5) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["kafka"] == "ok"
        assert ready.json()["checks"]["postgresql"] == "ok"
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert "http_requests_total" in metrics.text


async def test_the_community_standin_accepts_an_upload(running_stack: RunningStack) -> None:
    async with httpx.AsyncClient(
        base_url=running_stack.url("community_standin"), timeout=5
    ) as client:
        body = {
            "chat": {"title": "t", "messages": []},
            "access": "public",
            "source": {"instance_id": "i", "request_id": "r-1", "owner_id": "o"},
        }
        answer = await client.post(
            "/api/v1/chats/upload", json=body, headers={"Idempotency-Key": "r-1"}
        )
        assert answer.status_code == 201
        assert (await client.get("/_control")).json()["accepted"] >= 1
