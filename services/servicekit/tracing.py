"""OpenTelemetry tracing, switched on only by its standard environment variables: an OTLP
endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an exporter
(`OTEL_TRACES_EXPORTER=otlp|console`). Without them nothing is set up and nothing is sent;
`OTEL_SERVICE_NAME` only renames the service, `OTEL_SDK_DISABLED=true` keeps it all off.

Spans: one per HTTP request, per relay batch and per consumed batch; the W3C `traceparent`
travels with the message context (stored events, Kafka headers), so a trace follows a request
through the relay into the consumers of other services.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_propagator = TraceContextTextMapPropagator()
_tracer: Tracer | None = None  # set once per process, by the first service app built


def tracing_requested(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporter_names(env)
    if exporters == ["none"]:
        return False
    return bool(exporters) or any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure_tracing(service: str, env: Mapping[str, str] | None = None) -> Tracer | None:
    """The process's tracer, set up on the first call if the environment asks for tracing;
    None (and nothing initialised) if it does not."""
    global _tracer
    env = os.environ if env is None else env
    if _tracer is None and tracing_requested(env):
        _tracer = _new_provider(service, env).get_tracer("chatshare.servicekit")
    return _tracer


def tracer() -> Tracer | None:
    return _tracer


def _new_provider(service: str, env: Mapping[str, str]) -> trace.TracerProvider:
    # Imported only when asked for: a service without tracing loads none of the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
    )

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in _exporter_names(env) or ["otlp"]:
        if name == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name != "none":
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console)", name)
    trace.set_tracer_provider(provider)
    log.info("tracing on for %s", service)
    return provider


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    names = env.get("OTEL_TRACES_EXPORTER", "")
    return [name.strip().lower() for name in names.split(",") if name.strip()]


def current_traceparent() -> str | None:
    """The `traceparent` of the span now recording, None without one."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def parent_of(traceparent: str | None) -> Context | None:
    return _propagator.extract({"traceparent": traceparent}) if traceparent else None


def links_to(traceparents: Iterable[str | None]) -> list[Link]:
    """Links to the spans that made a batch's messages (a batch has many parents)."""
    links = []
    for traceparent in traceparents:
        parent = parent_of(traceparent)
        span = trace.get_current_span(parent).get_span_context() if parent else None
        if span is not None and span.is_valid:
            links.append(Link(span))
    return links
