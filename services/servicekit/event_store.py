"""Where a service's eventsourcing application keeps its events: PostgreSQL, in a schema of the
service's own (memory in unit tests), configured from the service's settings and nothing else."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit
from uuid import UUID

import psycopg
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    InterfaceError,
    JSONTranscoder,
    Mapper,
    OperationalError,
    Recording,
    StoredEvent,
    TrackingRecorder,
    Transcoder,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment, EnvType, get_topic, retry
from psycopg import sql
from pydantic_core import to_json

from servicekit.stored_context import ContextMapper
from servicekit.table_setup import creating_tables_blocking

POSTGRES_MODULE = "eventsourcing.postgres"
POPO_MODULE = "eventsourcing.popo"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_URL_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")


def eventsourcing_env(database_url: str, schema: str) -> dict[str, str]:
    """The eventsourcing settings for a `postgresql://user:pass@host:port/db` URL, with the
    application's tables in `schema`."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema {schema!r} is not a lower-case SQL identifier")
    parts = urlsplit(database_url)
    if parts.scheme not in _URL_SCHEMES:
        raise ValueError(f"the database URL must start with postgresql://, not {parts.scheme!r}")
    if parts.query or parts.fragment:
        raise ValueError("the event store takes no options in the database URL (?…)")
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not parts.username or not dbname:
        raise ValueError("the database URL must name a user, a host and a database")
    return {
        "PERSISTENCE_MODULE": POSTGRES_MODULE,
        "POSTGRES_DBNAME": dbname,
        "POSTGRES_HOST": parts.hostname,
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "CREATE_TABLE": "y",
        # Commands are short and the HTTP layer runs them in worker threads: a few connections
        # suffice, and waiting for one is better than exhausting the server.
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "12",
        # How long a call waits for a pooled connection (eventsourcing passes it to the pool as
        # its timeout). Short, because with the database unreachable every call waits this long
        # per attempt, and eventsourcing's recorders make up to ten: see `RECONNECT_SECONDS`.
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECTION_WAIT_SECONDS),
        # Recycle connections now and then. No ping on every checkout: it costs a round trip per
        # query on the hot path, and eventsourcing's recorder already retries a statement that
        # meets a broken connection, so a database restart heals without it.
        "POSTGRES_CONN_MAX_AGE": "600",
        "POSTGRES_PRE_PING": "n",
        # Writers queue on the events table's lock; a stuck one should fail, not hang forever.
        "POSTGRES_LOCK_TIMEOUT": "5",
        "APPLICATION_RECORDER_TOPIC": get_topic(OneTripRecorder),
    }


# With the database unreachable, psycopg's pool retries a lost connection in the background with
# exponential backoff (1, 2, 4, 8 … s, for up to five minutes) while callers wait for it: after
# a 40 s outage the event store stayed unusable for 20 s after the database was back. So the pool
# gives up on a failed reconnection after a second; the next caller's wait starts a fresh attempt,
# and a caller's retry finds the database within about `CONNECTION_WAIT_SECONDS` of its return.
CONNECTION_WAIT_SECONDS = 1
RECONNECT_SECONDS = 1.0


def in_memory_env() -> dict[str, str]:
    """Plain Python objects in memory: for unit tests."""
    return {"PERSISTENCE_MODULE": POPO_MODULE}


def _connect(env: Mapping[str, str]) -> psycopg.Connection:
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"],
        host=env["POSTGRES_HOST"],
        port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"],
        password=env["POSTGRES_PASSWORD"],
        connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
        autocommit=True,
    )


def ensure_schema(env: Mapping[str, str]) -> None:
    """Create the env's PostgreSQL schema if it is missing (eventsourcing creates tables only)."""
    create = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
        sql.Identifier(env["POSTGRES_SCHEMA"])
    )
    # Two processes starting at once can both pass the IF NOT EXISTS check; then the schema exists.
    with _connect(env) as connection, contextlib.suppress(psycopg.errors.UniqueViolation):
        connection.execute(create)


class OneTripRecorder(PostgresApplicationRecorder):
    """eventsourcing's PostgreSQL recorder, saving in one round trip.

    eventsourcing saves with LOCK TABLE … IN EXCLUSIVE MODE, NOTIFY, INSERT and COMMIT sent from
    the client, so the table lock (which every writer queues on, so that notification ids commit
    in order and the outbox relay never passes over a gap) stays held while the Python thread
    waits for its turn at the GIL between those statements: under load, most of a save's time.
    Here one function call in an implicit transaction does all four on the server. (The
    library's optional database functions leave the lock out, which would let the relay skip
    events; the settings never switch them on.)
    """

    def __init__(self, datastore: PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = sql.Identifier(self.datastore.schema)
        function = sql.Identifier(f"chatshare_insert_{self.events_table_name}")
        id_type = sql.SQL(self.datastore.originator_id_type)  # uuid or text, as the table's
        self.sql_create_statements.append(
            sql.SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids {id_type}[], versions bigint[], topics text[], states bytea[])"
                " RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN"
                " SET LOCAL lock_timeout = '{lock_timeout}s';"
                " LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
                " NOTIFY {channel};"
                " RETURN QUERY INSERT INTO {schema}.{table}"
                " (originator_id, originator_version, topic, state)"
                " SELECT * FROM unnest(ids, versions, topics, states)"
                " RETURNING notification_id;"
                " END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                id_type=id_type,
                lock_timeout=sql.Literal(self.datastore.lock_timeout),
                table=sql.Identifier(self.events_table_name),
                channel=sql.Identifier(self.channel_name),
            )
        )
        # One array per column, in binary: no composite values to escape as text in Python.
        self._call_insert = sql.SQL(
            "SELECT id FROM {schema}.{function}"
            "(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[]) AS id"
        ).format(schema=schema, function=function, id_type=id_type)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        if not stored_events:
            return []
        columns = (
            [event.originator_id for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            assert connection.autocommit  # one statement, one implicit transaction
            cursor.execute(self._call_insert, columns, prepare=True)
            return [row["id"] for row in cursor.fetchall()]


class PlainFieldsJSONTranscoder(JSONTranscoder):
    """eventsourcing's JSON, with the named fields of an event's state written by pydantic-core.

    eventsourcing's transcoder writes with the standard library's encoder: ~40 µs for a 12 KB
    share snapshot, 15 % of the CPU of a Copy Link in share_service's API. Fields that hold
    plain JSON data only need none of its transcodings, and pydantic-core writes the same JSON
    in a quarter of the time; the event's other fields (its datetime among them) still go
    through eventsourcing's encoder. Reading is eventsourcing's own, unchanged: only the key
    order differs (the plain fields come last), and a JSON object has none. pydantic-core would
    write a datetime or UUID inside a plain field as a string, where eventsourcing would have
    transcoded it: such values do not belong in a field declared plain.
    """

    def __init__(self, plain_fields: frozenset[str]) -> None:
        super().__init__()
        self.plain_fields = plain_fields

    def encode(self, obj: Any) -> bytes:
        if type(obj) is not dict or not self.plain_fields.intersection(obj):
            return super().encode(obj)
        rest = super().encode({k: v for k, v in obj.items() if k not in self.plain_fields})
        plain = {k: v for k, v in obj.items() if k in self.plain_fields}
        if rest == b"{}":
            return to_json(plain)
        return rest[:-1] + b"," + to_json(plain)[1:]


class ServiceApplication(Application[UUID]):
    """An eventsourcing application configured only by the env it is given.

    eventsourcing itself merges `os.environ` into the env, where a stray (or application-prefixed)
    variable could switch stores or turn on database functions; a service's settings class is
    the one place its configuration comes from.
    """

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        merged = dict(type(self).env)
        if type(self).is_snapshotting_enabled or type(self).snapshotting_intervals:
            merged["IS_SNAPSHOTTING_ENABLED"] = "y"
        merged.update(env or {})
        # Only what the settings give: eventsourcing's database functions must stay off (they drop
        # the table lock around inserts, and the outbox relay would then skip events).
        return Environment(name, merged)

    # Fields of the events' states that hold plain JSON data only (strings, numbers, booleans,
    # null, lists and dicts of them), by the application's word: `PlainFieldsJSONTranscoder`.
    plain_json_fields: ClassVar[frozenset[str]] = frozenset()

    def construct_transcoder(self) -> Transcoder:
        if not self.plain_json_fields:
            return super().construct_transcoder()
        transcoder = PlainFieldsJSONTranscoder(self.plain_json_fields)
        self.register_transcodings(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        """Stored events keep the correlation and causation ids of the work that made them."""
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=ContextMapper
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """`Application.save`, collecting aggregates' events with a plain class check.

        eventsourcing's `ProcessingEvent.collect_events` asks two `typing` runtime protocols
        about each object; on Python 3.11 each such `isinstance` walks the protocol's members,
        some 45 µs, and every command saves one or two aggregates. Anything that is not an
        `Aggregate` (a bare event, None) still goes through eventsourcing's own collection.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        others = []
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                others.append(obj)
        processing_event.collect_events(*others, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # eventsourcing's deprecated hook, kept as it calls it
        return recordings

    def construct_recorder(self) -> ApplicationRecorder:
        """eventsourcing creates its tables here: one process of the database at a time
        (`table_setup`), or replicas started together crash."""
        if self.env.get("PERSISTENCE_MODULE") != POSTGRES_MODULE:
            return super().construct_recorder()
        with _connect(self.env) as connection, creating_tables_blocking(connection):
            return super().construct_recorder()

    def construct_factory(self, env: Environment) -> InfrastructureFactory[TrackingRecorder]:
        if env.get("PERSISTENCE_MODULE") == POSTGRES_MODULE and env.get("POSTGRES_SCHEMA"):
            ensure_schema(env)
        factory = super().construct_factory(env)
        if isinstance(factory, PostgresFactory):
            factory.datastore.pool.reconnect_timeout = RECONNECT_SECONDS
        return factory
