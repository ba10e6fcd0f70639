"""A service's database URL becomes eventsourcing's settings; nothing else configures the store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex
from eventsourcing.popo import POPOApplicationRecorder

from servicekit.event_store import (
    PlainFieldsJSONTranscoder,
    ServiceApplication,
    eventsourcing_env,
    in_memory_env,
)


def test_a_database_url_becomes_the_event_stores_settings() -> None:
    env = eventsourcing_env("postgresql://chat:s3cret@db.internal:6543/chatshare", "share_service")
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (
        env["POSTGRES_DBNAME"],
        env["POSTGRES_HOST"],
        env["POSTGRES_PORT"],
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_SCHEMA"],
    ) == ("chatshare", "db.internal", "6543", "chat", "s3cret", "share_service")
    assert env["CREATE_TABLE"] == "y"
    assert int(env["POSTGRES_POOL_SIZE"]) <= 5
    assert env["POSTGRES_PRE_PING"] == "n"  # a round trip per query; the recorder retries instead
    assert float(env["POSTGRES_CONN_MAX_AGE"]) > 0


def test_the_port_defaults_to_5432_and_escaped_characters_are_decoded() -> None:
    env = eventsourcing_env("postgresql://us%40er:p%2Fss%3Aw@127.0.0.1/my%20db", "s")
    assert env["POSTGRES_PORT"] == "5432"
    assert env["POSTGRES_USER"] == "us@er"
    assert env["POSTGRES_PASSWORD"] == "p/ss:w"
    assert env["POSTGRES_DBNAME"] == "my db"


def test_a_url_without_password_gives_an_empty_one() -> None:
    assert (
        eventsourcing_env("postgres://postgres@localhost:55432/chatshare", "s")["POSTGRES_PASSWORD"]
        == ""
    )


def test_the_asyncpg_flavour_of_the_url_is_accepted() -> None:
    env = eventsourcing_env("postgresql+asyncpg://u:p@h:1/db", "s")
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("h", "1")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:p@h/db",
        "postgresql://u:p@h:5432/",
        "postgresql://u:p@/db",
        "postgresql://h/db",
        "postgresql://u:p@h/db?sslmode=require",
    ],
)
def test_an_unusable_url_is_refused_with_a_reason(url: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        eventsourcing_env(url, "s")


@pytest.mark.parametrize("schema", ["", "Share", "share-service", "1st", "x" * 64, 'a"; drop'])
def test_a_schema_must_be_a_plain_identifier(schema: str) -> None:
    with pytest.raises(ValueError, match="schema"):
        eventsourcing_env("postgresql://u:p@h/db", schema)


class _Probe(ServiceApplication):
    pass


def test_the_process_environment_does_not_configure_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PERSISTENCE_MODULE", "eventsourcing.sqlite")
    monkeypatch.setenv("_PROBE_PERSISTENCE_MODULE", "eventsourcing.sqlite")
    app = _Probe(env=in_memory_env())
    try:
        assert isinstance(app.recorder, POPOApplicationRecorder)
    finally:
        app.close()


class _Counter(Aggregate):
    def __init__(self) -> None:
        self.count = 0

    @event("Counted")
    def count_up(self) -> None:
        self.count += 1


def test_save_records_each_aggregates_events_in_order_and_once() -> None:
    """`ServiceApplication.save` collects aggregates itself (a plain class check, not typing's
    slow protocol checks); what it records must be what eventsourcing's `save` records."""
    app = _Probe(env=in_memory_env())
    try:
        first, second = _Counter(), _Counter()
        first.count_up()
        second.count_up()
        second.count_up()
        recordings = app.save(first, None, second)
        assert [(r.domain_event.originator_id, r.domain_event.originator_version) for r in recordings] == [
            (first.id, 1), (first.id, 2), (second.id, 1), (second.id, 2), (second.id, 3)
        ]  # fmt: skip
        assert first.pending_events == []
        assert second.pending_events == []
        assert app.save(first) == []  # nothing pending: nothing recorded again
        stored = app.repository.get(second.id)
        assert (stored.count, stored.version) == (2, 3)
        first.count_up()
        (recording,) = app.save(first.collect_events()[0])  # a bare event still saves
        assert recording.domain_event.originator_version == 3
        assert app.repository.get(first.id).count == 2
    finally:
        app.close()


def _transcoders() -> tuple[JSONTranscoder, PlainFieldsJSONTranscoder]:
    plain, fast = JSONTranscoder(), PlainFieldsJSONTranscoder(frozenset({"snapshot"}))
    for transcoder in (plain, fast):
        for transcoding in (UUIDAsHex(), DatetimeAsISO()):
            transcoder.register(transcoding)
    return plain, fast


TRICKY = 'quotes " and \\ back, ünïcødé ✈, \u2028, \x01, <script>'


def test_plain_fields_are_written_by_pydantic_core_and_read_back_as_eventsourcing_reads() -> None:
    plain, fast = _transcoders()
    state = {
        "timestamp": datetime(2026, 11, 27, 8, 30, 24, 475365, tzinfo=UTC),
        "share_id": TRICKY,
        "owner": UUID("12345678-1234-5678-1234-567812345678"),
        "snapshot": {
            "title": TRICKY,
            "messages": [{"id": "m-1", "parent_id": None, "content": TRICKY, "n": 3}],
            "history": {"messages": {"m-1": {"children_ids": []}}, "current_id": "m-1"},
        },
    }

    written = fast.encode(state)

    assert fast.decode(written) == state  # the datetime and the UUID come back as such
    assert plain.decode(written) == plain.decode(plain.encode(state))
    assert json.loads(written) == json.loads(plain.encode(state))  # the same JSON, keys aside


def test_a_state_without_plain_fields_is_written_as_eventsourcing_writes_it() -> None:
    plain, fast = _transcoders()
    state = {"timestamp": datetime(2026, 1, 1, tzinfo=UTC), "share_id": "s-1", "n": 1}
    assert fast.encode(state) == plain.encode(state)
    assert fast.decode(fast.encode({"snapshot": {"title": "t"}})) == {"snapshot": {"title": "t"}}
