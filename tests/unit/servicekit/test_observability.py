"""Logs are JSON lines carrying the work's correlation ids; tracing is off (nothing set up,
nothing sent) unless OpenTelemetry's own variables ask for it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from servicekit.message_context import MessageContext, using_context
from servicekit.structured_logging import CurrentStderr, JsonFormatter, configure_logging
from servicekit.tracing import tracing_requested

ROOT = Path(__file__).resolve().parents[3]


def formatted(formatter: logging.Formatter, message: str, *args: object) -> dict[str, object]:
    record = logging.LogRecord("chatshare.test", logging.WARNING, __file__, 1, message, args, None)
    entry: dict[str, object] = json.loads(formatter.format(record))
    return entry


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    access = logging.getLogger("uvicorn.access")
    handlers, level = list(root.handlers), root.level
    access_state = list(access.handlers), access.propagate
    access.handlers.clear()
    access.propagate = True
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    access.handlers[:], access.propagate = access_state


def test_a_log_line_is_one_json_object_with_the_work_s_ids() -> None:
    formatter = JsonFormatter("share_service")

    with using_context(MessageContext("corr-1", "event-9")):
        entry = formatted(formatter, "relay %s stands down", "share_service")

    assert entry["message"] == "relay share_service stands down"
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "chatshare.test"
    assert entry["service"] == "share_service"
    assert entry["correlation_id"] == "corr-1"
    assert entry["causation_id"] == "event-9"
    assert str(entry["time"]).endswith("+00:00")


def test_a_log_line_outside_any_work_has_no_ids() -> None:
    entry = formatted(JsonFormatter("settings_service"), "started")

    assert "correlation_id" not in entry
    assert "causation_id" not in entry


@pytest.mark.usefixtures("root_logging")
def test_configuring_twice_leaves_one_json_handler_and_libraries_go_through_it() -> None:
    configure_logging("share_service")
    configure_logging("share_service", "WARNING")

    root = logging.getLogger()
    assert len([h for h in root.handlers if isinstance(h, CurrentStderr)]) == 1
    assert root.level == logging.WARNING
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).propagate


@pytest.mark.usefixtures("root_logging")
@pytest.mark.parametrize("access_log", [False, True])
def test_uvicorn_s_no_access_log_stays_off_and_its_access_log_is_json_when_on(
    access_log: bool,
) -> None:
    # uvicorn configures its loggers when the server is configured, before the app factory
    # (whose configure_logging runs second) is called; each request is logged while
    # the access logger has handlers.
    uvicorn.Config(app="share_service.bootstrap:create_app", factory=True, access_log=access_log)
    configure_logging("share_service")

    access = logging.getLogger("uvicorn.access")
    assert access.hasHandlers() is access_log
    if access_log:
        assert access.handlers == []  # its lines go through the one JSON handler
        assert access.propagate


@pytest.mark.parametrize(
    ("env", "requested"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "share"}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_asked_for_only_by_an_endpoint_or_an_exporter(
    env: dict[str, str], requested: bool
) -> None:
    assert tracing_requested(env) is requested


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_without_otel_variables_a_service_sets_up_no_tracing_at_all() -> None:
    code = (
        "import sys\n"
        "from share_service.bootstrap import create_app\n"
        "from servicekit.tracing import tracer\n"
        "create_app()\n"
        "assert tracer() is None\n"
        "assert 'opentelemetry.sdk.trace' not in sys.modules\n"
        "assert 'opentelemetry.exporter.otlp.proto.http' not in sys.modules\n"
    )
    run_python(code)


def test_with_an_exporter_asked_for_each_request_is_a_span_named_by_its_route() -> None:
    code = (
        "import asyncio, httpx\n"
        "from settings_service.bootstrap import create_app\n"
        "app = create_app()\n"
        "async def main():\n"
        "    transport = httpx.ASGITransport(app=app)\n"
        "    async with httpx.AsyncClient(transport=transport, base_url='http://s') as client:\n"
        "        assert (await client.get('/healthz')).status_code == 200\n"
        "asyncio.run(main())\n"
    )
    spans = run_python(code, OTEL_TRACES_EXPORTER="console").stdout

    assert '"name": "GET /healthz"' in spans
    assert spans.count('"kind": "SpanKind.SERVER"') == 1  # ours, not FastAPI's besides
    assert '"service.name": "settings_service"' in spans
    assert '"chatshare.correlation_id"' in spans
