"""Correlation and causation ids: which request or event a piece of work (a log line, a stored
event, a Kafka record, a dead letter) belongs to, carried in a contextvar within a process and
in headers between processes (`servicekit/README.md` says exactly what goes where)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"
EVENT_ID = "event_id"
TRACEPARENT = "traceparent"
# A caller's id is echoed in a response header and written to logs and Kafka headers: accept only
# what cannot smuggle anything into either.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:/+=@-]{1,128}$")


@dataclass(frozen=True)
class MessageContext:
    """`correlation_id` names the whole chain (the first request or event); `causation_id` the
    message that caused this step (None when nothing did)."""

    correlation_id: str
    causation_id: str | None = None
    traceparent: str | None = None  # W3C trace context of the span doing the work, if tracing

    def as_headers(self) -> dict[str, str]:
        headers = {CORRELATION_ID: self.correlation_id}
        if self.causation_id is not None:
            headers[CAUSATION_ID] = self.causation_id
        if self.traceparent is not None:
            headers[TRACEPARENT] = self.traceparent
        return headers


_current: ContextVar[MessageContext | None] = ContextVar("chatshare_message_context", default=None)


def current_context() -> MessageContext | None:
    return _current.get()


@contextmanager
def using_context(context: MessageContext | None) -> Iterator[None]:
    """The work inside belongs to `context` (in this task or thread, and in what it starts)."""
    token = _current.set(context)
    try:
        yield
    finally:
        _current.reset(token)


def safe_id(value: str | None) -> str | None:
    return value if value is not None and _SAFE_ID.match(value) else None


def new_id() -> str:
    """A random (version 4) UUID's text, as `str(uuid.uuid4())` gives it in 40 % of the time:
    every request without a caller's id makes one."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def context_of_request(correlation: str | None, request_id: str | None) -> MessageContext:
    """An HTTP request starts a chain: the caller's `X-Correlation-ID` (else `X-Request-ID`, else
    a new uuid) names it, and the request is its own cause."""
    correlation_id = safe_id(correlation) or safe_id(request_id) or new_id()
    return MessageContext(correlation_id, causation_id=correlation_id)


def context_of_record(headers: Iterable[tuple[str, bytes]] | None) -> MessageContext:
    """A consumed record continues its chain (its `correlation_id`, else its own `event_id`),
    and is the cause of whatever its handler does."""
    found = _decoded(headers or ())
    event_id = safe_id(found.get(EVENT_ID))
    correlation_id = safe_id(found.get(CORRELATION_ID)) or event_id or new_id()
    return MessageContext(correlation_id, event_id, safe_id(found.get(TRACEPARENT)))


def _decoded(headers: Iterable[tuple[str, bytes]]) -> Mapping[str, str]:
    return {key: value.decode(errors="replace") for key, value in headers if value is not None}
