"""Every HTTP request's message context: the caller's `X-Correlation-ID` (or `X-Request-ID`) or a
new one, bound for the request's logs and the events it stores, echoed in the response's
`X-Correlation-ID`; and, with tracing on, the request's server span."""

from __future__ import annotations

from dataclasses import replace

from opentelemetry.trace import SpanKind, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servicekit.message_context import MessageContext, context_of_request, using_context
from servicekit.tracing import current_traceparent, parent_of

CORRELATION_HEADER = b"x-correlation-id"
WANTED = frozenset((b"x-correlation-id", b"x-request-id", b"traceparent"))


def _wanted_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers this middleware reads, decoded; not every header of every request."""
    found: dict[str, str] = {}
    for key, value in raw:
        name = key.lower()  # servers give them lower-cased already; the ASGI spec asks it
        if name in WANTED:
            found[name.decode("latin-1")] = value.decode("latin-1")  # the last one, as before
    return found


class RequestContext:
    """Pure ASGI middleware (cheap on the hot read path)."""

    def __init__(self, app: ASGIApp, tracer: Tracer | None = None) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _wanted_headers(scope["headers"])
        context = context_of_request(headers.get("x-correlation-id"), headers.get("x-request-id"))
        echo = (CORRELATION_HEADER, context.correlation_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), echo]}
            await send(message)

        if self.tracer is None:
            with using_context(context):
                await self.app(scope, receive, send_with_id)
            return
        await self._traced(scope, receive, send_with_id, context, headers.get("traceparent"))

    async def _traced(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        context: MessageContext,
        traceparent: str | None,
    ) -> None:
        assert self.tracer is not None
        method = scope["method"]
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            method, context=parent_of(traceparent), kind=SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("chatshare.correlation_id", context.correlation_id)
            with using_context(replace(context, traceparent=current_traceparent())):
                try:
                    await self.app(scope, receive, send_with_status)
                finally:
                    route = getattr(scope.get("route"), "path", None)
                    if route is not None:
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
