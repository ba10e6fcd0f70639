"""Correlation and causation ids: taken from a request or a record, kept with the events a piece
of work stores, and put on the Kafka records the relay publishes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI

from servicekit.event_store import ServiceApplication, in_memory_env
from servicekit.message_context import (
    MessageContext,
    context_of_record,
    context_of_request,
    current_context,
    using_context,
)
from servicekit.outbox import EventsourcingLog, record_headers
from servicekit.outbox_message import OutboxMessage
from servicekit.request_context import RequestContext
from servicekit.stored_context import stamp_pending_events


class Tally(Aggregate):
    @event("Counted")
    def count(self, n: int) -> None:
        self.last = n


class TallyApp(ServiceApplication):
    pass


def message(_: Any) -> OutboxMessage:
    return OutboxMessage(topic="t", key="k", value=b"{}", event_id=uuid.uuid4())


def contexts_stored(app: TallyApp) -> list[MessageContext | None]:
    return [
        msg.context for _, msg in EventsourcingLog(app, message).read_after(0, 100).items if msg
    ]


def test_a_request_without_ids_gets_a_new_correlation_id_and_is_its_own_cause() -> None:
    context = context_of_request(None, None)

    made = uuid.UUID(context.correlation_id)
    assert (made.version, made.variant) == (4, uuid.RFC_4122)
    assert str(made) == context.correlation_id  # the canonical text, lower-case hex
    assert context.causation_id == context.correlation_id
    assert len({context_of_request(None, None).correlation_id for _ in range(1000)}) == 1000


def test_a_request_keeps_the_callers_correlation_id_else_its_request_id() -> None:
    assert context_of_request("abc-1", "req-9").correlation_id == "abc-1"
    assert context_of_request(None, "req-9").correlation_id == "req-9"


def test_an_id_that_could_smuggle_anything_into_logs_or_headers_is_replaced() -> None:
    for unsafe in ("a b", 'x"y', "line\nbreak", "x" * 129, ""):
        context = context_of_request(unsafe, None)
        assert context.correlation_id != unsafe
        assert uuid.UUID(context.correlation_id)


def test_a_record_continues_its_chain_and_is_the_cause_of_what_follows() -> None:
    headers = [("event_id", b"e-2"), ("correlation_id", b"c-1")]

    assert context_of_record(headers) == MessageContext("c-1", "e-2")


def test_a_record_without_a_correlation_id_starts_a_chain_named_by_its_event_id() -> None:
    assert context_of_record([("event_id", b"e-2")]) == MessageContext("e-2", "e-2")
    assert uuid.UUID(context_of_record(None).correlation_id)


def test_stored_events_keep_the_context_they_were_saved_in_and_the_domain_never_sees_it() -> None:
    app = TallyApp(env=in_memory_env())
    tally = Tally()
    tally.count(7)
    with using_context(MessageContext("corr-1", "cause-1")):
        app.save(tally)

    assert contexts_stored(app) == [MessageContext("corr-1", "cause-1")] * 2
    reloaded = app.repository.get(tally.id)
    assert reloaded.last == 7
    assert all("__chatshare_context__" not in vars(e) for e in app.events.get(tally.id))


def test_events_stamped_by_their_command_keep_its_context_in_a_batch_saved_in_another() -> None:
    app = TallyApp(env=in_memory_env())
    first, second = Tally(), Tally()
    stamp_pending_events([first], MessageContext("request-a"))
    stamp_pending_events([second], MessageContext("request-b"))
    with using_context(MessageContext("the-batch")):
        app.save(first, second)

    assert [c.correlation_id for c in contexts_stored(app) if c] == ["request-a", "request-b"]


def test_events_stored_without_a_context_have_none() -> None:
    app = TallyApp(env=in_memory_env())
    app.save(Tally())

    assert contexts_stored(app) == [None]


def test_the_relay_puts_the_stored_context_on_the_record() -> None:
    stored = OutboxMessage("t", "k", b"{}", uuid.uuid4(), MessageContext("corr-1", "cause-1"))

    headers = dict(record_headers(41, stored))

    assert headers == {
        "event_id": str(stored.event_id).encode(),
        "notification_id": b"41",
        "correlation_id": b"corr-1",
        "causation_id": b"cause-1",
    }


def test_an_event_stored_without_context_is_published_as_the_start_of_its_own_chain() -> None:
    stored = OutboxMessage("t", "k", b"{}", uuid.uuid4())

    headers = dict(record_headers(41, stored))

    assert headers["correlation_id"] == str(stored.event_id).encode()
    assert "causation_id" not in headers


async def test_http_requests_run_in_their_context_and_echo_the_correlation_id() -> None:
    app = FastAPI()
    app.add_middleware(RequestContext)

    @app.get("/where")
    async def where() -> dict[str, str | None]:
        context = current_context()
        return {"correlation_id": context.correlation_id if context else None}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        given = await client.get("/where", headers={"X-Correlation-ID": "from-the-gateway"})
        fresh = await client.get("/where")

    assert given.json() == {"correlation_id": "from-the-gateway"}
    assert given.headers["x-correlation-id"] == "from-the-gateway"
    assert fresh.headers["x-correlation-id"] == fresh.json()["correlation_id"]
    assert current_context() is None
