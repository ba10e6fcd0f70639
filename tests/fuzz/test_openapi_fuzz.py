"""Schemathesis against share_service's and settings_service's own OpenAPI documents, on the
services served by uvicorn (lifespans, the real broker and database): for every operation, as a
user and as an admin, with generated and with invalid input, and with the ids of a real chat,
link and community request. No answer is a 5xx, and every answer matches the document."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import response_schema_conformance

from devstack import postgres
from devstack.ports import free_port
from settings_service.bootstrap import create_app as create_settings_app
from settings_service.config import SettingsServiceSettings
from share_service.bootstrap import create_app as create_share_app
from share_service.config import ShareServiceSettings
from tests.chat_feed import ChatFeed, send
from tests.identities import bearer, make_token
from tests.running_services import new_database, new_topic_prefix

pytestmark = [
    pytest.mark.integration,
    # schemathesis's own strategies draw from `random`; hypothesis warns about it, not about us.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]

MAX_EXAMPLES = 20
OWNER = "fuzzer"
IDENTITIES = {
    "user": bearer(make_token(OWNER, "user")),
    "admin": bearer(make_token("root", "admin")),
}
CHECKS = [not_a_server_error, response_schema_conformance]


def run_async(work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Async set-up from this synchronous module, on a loop of its own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work()).result()


class ServedApp:
    """An app served by uvicorn on a free port, in a thread with its own event loop."""

    def __init__(self, app: FastAPI) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app at {self.url} did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@dataclass
class Served:
    urls: dict[str, str]
    schemas: dict[str, BaseSchema]
    known: dict[str, str]  # path parameter → the id of something that exists


def shared_chat(share_url: str, settings: ShareServiceSettings) -> tuple[str, str]:
    """A chat of the fuzzer's with a live link, as the platform and the user make them."""
    feed = ChatFeed(OWNER)
    events = [feed.created("Fuzzed"), feed.message("hello"), feed.message("hi", role="assistant")]
    run_async(lambda: send(settings.kafka_bootstrap_servers, events, settings.topic_prefix))
    with httpx.Client(base_url=share_url, headers=IDENTITIES["user"]) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = client.post(f"/api/v1/chats/{feed.chat_id}/share", json={"chat_version": 3})
            if answer.status_code == 201:
                return feed.chat_id, answer.json()["share_id"]
        raise AssertionError(f"the chat never reached share_service: {answer.text}")


def community_request(share_url: str, settings_url: str, chat_id: str) -> str:
    with httpx.Client(base_url=settings_url, headers=IDENTITIES["admin"]) as settings:
        on = settings.put("/api/v1/admin/settings/community-sharing", json={"enabled": True})
        assert on.status_code == 200, on.text
    with httpx.Client(base_url=share_url, headers=IDENTITIES["user"]) as share:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until share_service's policy view has it
            answer = share.post(
                f"/api/v1/chats/{chat_id}/community-share", json={"access": "public"}
            )
            if answer.status_code == 202:
                return str(answer.json()["request_id"])
            time.sleep(0.05)
        raise AssertionError(f"community sharing never came on: {answer.text}")


@pytest.fixture(scope="module")
def served(postgres_node: postgres.PostgresNode, kafka_bootstrap: str) -> Iterator[Served]:
    common: dict[str, Any] = {
        "database_url": new_database(postgres_node),
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": run_async(lambda: new_topic_prefix(kafka_bootstrap)),
    }
    share_settings = ShareServiceSettings(
        **common, chat_version_wait_seconds=0.05, min_version_wait_seconds=0.05
    )
    share_app = create_share_app(share_settings)
    settings_app = create_settings_app(SettingsServiceSettings(**common))
    with ServedApp(share_app) as share_url, ServedApp(settings_app) as settings_url:
        chat_id, share_id = shared_chat(share_url, share_settings)
        request_id = community_request(share_url, settings_url, chat_id)
        yield Served(
            urls={"share": share_url, "settings": settings_url},
            schemas={
                "share": schemathesis.openapi.from_dict(share_app.openapi()),
                "settings": schemathesis.openapi.from_dict(settings_app.openapi()),
            },
            known={"chat_id": chat_id, "share_id": share_id, "request_id": request_id},
        )


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    has_input: bool  # a body or a query: something that can be sent invalid

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


def operations() -> list[Operation]:
    """Every documented operation; deletes last, so the known link lives through the others."""
    found = []
    for service, app in (("share", create_share_app()), ("settings", create_settings_app())):
        for path, methods in app.openapi()["paths"].items():
            for method, spec in methods.items():
                query = any(p["in"] == "query" for p in spec.get("parameters", []))
                found.append(
                    Operation(service, method.upper(), path, query or "requestBody" in spec)
                )
    return sorted(found, key=lambda operation: operation.method == "DELETE")


def runs() -> Iterator[Any]:
    """Each operation, as each identity: with generated input; with invalid input where it
    has any to make invalid; and with the ids of a real chat, link and request in its path."""
    for operation in operations():
        modes = ["generated"]
        modes += ["invalid"] if operation.has_input else []
        modes += ["known ids"] if "{" in operation.path else []
        for identity in IDENTITIES:
            for mode in modes:
                name = f"{operation.name} as {identity}, {mode}"
                yield pytest.param(operation, identity, mode, id=name)


@pytest.mark.parametrize(("operation", "identity", "mode"), list(runs()))
def test_no_operation_answers_5xx_or_off_its_document(
    served: Served, operation: Operation, identity: str, mode: str
) -> None:
    service, path = operation.service, operation.path
    pinned = {name: value for name, value in served.known.items() if f"{{{name}}}" in path}
    strategy = served.schemas[service][path][operation.method].as_strategy(
        generation_mode=GenerationMode.NEGATIVE if mode == "invalid" else GenerationMode.POSITIVE,
        path_parameters=pinned if mode == "known ids" else None,
    )
    headers = IDENTITIES[identity]

    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=strategy)
    def answers_within_the_document(case: schemathesis.Case) -> None:
        response = case.call(base_url=served.urls[service], headers=headers, timeout=15)
        case.validate_response(response, checks=CHECKS, headers=headers)

    answers_within_the_document()
