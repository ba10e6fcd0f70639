"""Logs as one JSON object per line on stderr: time, level, logger, message, service, and the
correlation and causation ids of the work being done (and the trace id while a span records).
Set up by `configure_logging`, which every service's `create_app` calls; never at import."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from servicekit.message_context import current_context

# Libraries that install handlers of their own (uvicorn before it builds the app, faststream at
# import): their records are sent through ours instead.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream")
ACCESS_LOGGER = "uvicorn.access"
BROKER_LOGGER = "faststream.kafka"  # given to each KafkaBroker, which would colour its own


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service,
        }
        context = current_context()
        if context is not None:
            entry["correlation_id"] = context.correlation_id
            if context.causation_id is not None:
                entry["causation_id"] = context.causation_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class CurrentStderr(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is now (test runners swap it), never a closed copy."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _: TextIO) -> None:
        pass


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every log record, uvicorn's and faststream's included, to one JSON handler. Idempotent: a second
    call (tests build many apps) replaces the first one's handler.

    uvicorn's `--no-access-log` is honoured: uvicorn turns its access logger off (no handler, not
    propagating) before it calls the app factory, and writes an access line for each request
    only while that logger `hasHandlers()`. Sending it through ours would switch the access log
    back on: a JSON line and some 10 % of the API's CPU per request on the hot paths."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, CurrentStderr)]:
        root.removeHandler(handler)
    handler = CurrentStderr()
    handler.setFormatter(JsonFormatter(service))
    root.addHandler(handler)
    root.setLevel(level)
    access = logging.getLogger(ACCESS_LOGGER)
    access_log_off = not access.handlers and not access.propagate
    for name in LIBRARY_LOGGERS:
        if name == ACCESS_LOGGER and access_log_off:
            continue
        library_logger = logging.getLogger(name)
        library_logger.handlers.clear()
        library_logger.propagate = True
