"""A tiny event-sourced application for testing the outbox relay on its own, and a way to run
its relay as a separate process (so a test can SIGKILL it):

    python -m tests.integration.servicekit.counter_store DATABASE_URL BOOTSTRAP TOPIC
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from typing import Any

import asyncpg
from eventsourcing.domain import Aggregate, event
from prometheus_client import CollectorRegistry

from servicekit.config import ServiceSettings
from servicekit.event_store import ServiceApplication, eventsourcing_env
from servicekit.outbox import EventsourcingLog, OutboxRelay, RelayConfig, RelayMetrics
from servicekit.outbox_message import OutboxMessage

SCHEMA = "relay_test"


class Tally(Aggregate):
    @event("Counted")
    def count(self, n: int) -> None:
        self.last = n


class TallyApp(ServiceApplication):
    def count(self, tally_id: uuid.UUID | None, numbers: range) -> uuid.UUID:
        tally = self.repository.get(tally_id) if tally_id else Tally()
        for n in numbers:
            tally.count(n)
        self.save(tally)
        return tally.id  # type: ignore[no-any-return]


def message_for(topic: str) -> Any:
    def to_message(domain_event: Any) -> OutboxMessage | None:
        if not isinstance(domain_event, Tally.Counted):
            return None  # the aggregate's creation is not published
        value = {"n": domain_event.n, "version": domain_event.originator_version}
        return OutboxMessage(
            topic=topic,
            key=str(domain_event.originator_id),
            value=json.dumps(value).encode(),
            event_id=uuid.uuid5(domain_event.originator_id, str(domain_event.originator_version)),
        )

    return to_message


def build_relay(
    database_url: str,
    bootstrap: str,
    topic: str,
    pool: asyncpg.Pool,
    name: str = "tally",
    topic_prefix: str = "",
) -> OutboxRelay:
    """The relay publishes to `topic_prefix` + `topic`."""
    app = TallyApp(env=eventsourcing_env(database_url, SCHEMA))
    settings = ServiceSettings(
        database_url=database_url, kafka_bootstrap_servers=bootstrap, topic_prefix=topic_prefix
    )
    return OutboxRelay(
        RelayConfig(name=name, schema=SCHEMA, batch_size=50, standby_interval=0.2),
        EventsourcingLog(app, message_for(topic)),
        pool,
        settings,
        RelayMetrics(CollectorRegistry()),
    )


async def run_relay_forever(database_url: str, bootstrap: str, topic: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    await build_relay(database_url, bootstrap, topic, pool).run()


if __name__ == "__main__":
    # Import ourselves by name: under `-m` this file is `__main__`, and its classes would not be
    # the ones the stored events' topics name.
    from tests.integration.servicekit import counter_store

    logging.basicConfig(level=logging.INFO)
    asyncio.run(counter_store.run_relay_forever(*sys.argv[1:4]))
