"""The HTTP edge every service shares: health, readiness and metrics routes, error bodies that
say why in one sentence, and request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.auth import AuthError
from servicekit.faults import RETRY_AFTER_SECONDS, TRANSIENT

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[str | None]]
"""Returns None when ready, else a short reason ("kafka unreachable: …")."""


class Readiness:
    """Named checks behind `/readyz`; services add theirs in the lifespan."""

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def add(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def report(self) -> dict[str, str]:
        results: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                problem = await check()
            except Exception as error:  # a failing check is an answer, not a crash
                problem = f"{type(error).__name__}: {error}"
            results[name] = "ok" if problem is None else problem
        return results


def install_operational_routes(
    app: FastAPI, readiness: Readiness, registry: CollectorRegistry
) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await readiness.report()
        ready = all(result == "ok" for result in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    return f"{where}: {error.get('msg', 'invalid')}"


class RequestProblem(BaseModel):
    loc: list[str | int] = Field(description="Where: the part of the request, then the field.")
    msg: str = Field(description="What is wrong there.")


class RequestRejected(BaseModel):
    """The body of every 422: the request is not valid."""

    detail: str = Field(description="Every problem, in one sentence.")
    errors: list[RequestProblem]


SCHEMA_REF = "#/components/schemas/{model}"


def document_rejections(app: FastAPI) -> None:
    """FastAPI documents every 422 with its own default body; `invalid_request` answers
    `RequestRejected`, and the OpenAPI document must say so (clients are generated from it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for default in ("HTTPValidationError", "ValidationError"):
            schemas.pop(default, None)
        rejected = RequestRejected.model_json_schema(ref_template=SCHEMA_REF)
        schemas.update(rejected.pop("$defs", {}))
        schemas[RequestRejected.__name__] = rejected
        reference = {"$ref": SCHEMA_REF.format(model=RequestRejected.__name__)}
        for methods in document.get("paths", {}).values():
            for operation in methods.values():
                if "422" in operation.get("responses", {}):
                    operation["responses"]["422"]["content"] = {
                        "application/json": {"schema": reference}
                    }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


UNAVAILABLE = {
    "detail": "This service cannot reach its database or message broker right now; "
    "try again shortly."
}


def unavailable_answer() -> JSONResponse:
    """503 for a request that met an infrastructure outage (servicekit.faults)."""
    return JSONResponse(
        UNAVAILABLE, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


def install_error_handlers(app: FastAPI) -> None:
    document_rejections(app)

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning(
            "%s %s met an infrastructure fault: %r", request.method, request.url.path, error
        )
        return unavailable_answer()

    for kind in TRANSIENT:
        app.add_exception_handler(kind, unavailable)

    @app.exception_handler(AuthError)
    async def auth_error(_: Request, error: AuthError) -> JSONResponse:
        body: dict[str, str] = {"detail": error.detail}
        if error.login_url is not None:
            body["login_url"] = error.login_url
        return JSONResponse(body, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_describe(item) for item in error.errors()]
        return JSONResponse(
            {"detail": "The request is not valid: " + "; ".join(problems) + ".",
             "errors": [{"loc": list(item.get("loc", ())), "msg": str(item.get("msg", "invalid"))} for item in error.errors()]},
            status_code=422,
        )  # fmt: skip


@dataclass(frozen=True)
class RouteTemplate:
    """What `RequestMetrics` and the server span read from `scope["route"]`: set by a lean ASGI
    path that answers before FastAPI's router would have set the route itself."""

    path: str


class RequestMetrics:
    """Pure ASGI middleware (cheap on the hot read path) counting requests by route and status."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds", "Time to answer an HTTP request", ["method", "route"],
            registry=registry, buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        # Routes are templates and statuses few: the series stay as few as the labels allow.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            key = (scope["method"], template, status)
            series = self._series.get(key)
            if series is None:  # label lookups take a lock each: once per series, not per request
                series = self._series[key] = (
                    self.requests.labels(scope["method"], template, str(status)),
                    self.latency.labels(scope["method"], template),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - started)
