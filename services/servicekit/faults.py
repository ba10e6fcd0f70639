"""What counts as a passing fault of the infrastructure — PostgreSQL or Kafka unreachable,
restarting or shutting down — rather than a fault of the work itself. Consumers and relays wait
such a fault out (never dead-letter for it); the HTTP edge answers it 503 with Retry-After."""

from __future__ import annotations

import asyncpg
import eventsourcing.persistence
import psycopg
from aiokafka.errors import KafkaError

TRANSIENT: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    OSError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,  # starting up, shutting down
    asyncpg.AdminShutdownError,  # "terminating connection due to administrator command"
    asyncpg.CrashShutdownError,
    # asyncpg's protocol left mid-operation on a connection the server ended under it.
    asyncpg.InternalClientError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    psycopg.OperationalError,
    # eventsourcing re-raises psycopg's errors as its own, once its recorder's retries ran out.
    eventsourcing.persistence.OperationalError,
    eventsourcing.persistence.InterfaceError,
)

RETRY_AFTER_SECONDS = 1


def is_transient(error: BaseException) -> bool:
    """Faults of the infrastructure, not of the message or request: wait them out."""
    return isinstance(error, TRANSIENT)
