"""The publisher's record of outcomes on PostgreSQL, in its own schema: two replicas deciding the
same request end with one outcome, and a replica that restarts finds it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest
from anyio import to_thread

from community_publisher.application.upload_records import UploadRecords
from community_publisher.bootstrap import EVENT_STORE_SCHEMA, open_upload_records
from community_publisher.domain.community_upload import Failure, Publication

pytestmark = pytest.mark.integration


@pytest.fixture
def replicas(database_url: str) -> Iterator[list[UploadRecords]]:
    opened = [open_upload_records(database_url) for _ in range(2)]
    yield opened
    for records in opened:
        records.close()


async def test_two_replicas_deciding_one_request_keep_one_outcome(
    replicas: list[UploadRecords], database_url: str
) -> None:
    first, second = replicas
    published, failed = Publication("c-1", "https://c/c-1"), Failure("answered 503")
    outcomes = await asyncio.gather(
        to_thread.run_sync(first.record, "req-1", published),
        to_thread.run_sync(second.record, "req-1", failed),
    )
    assert outcomes[0] == outcomes[1] in (published, failed)
    restarted = await to_thread.run_sync(open_upload_records, database_url)
    try:
        assert restarted.outcome_of("req-1") == outcomes[0]
        assert restarted.outcome_of("req-2") is None
        assert len(restarted.recorder.select_notifications(start=None, limit=10)) == 2
    finally:
        restarted.close()
    with psycopg.connect(database_url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (EVENT_STORE_SCHEMA,),
        ).fetchall()
    assert ("community_uploads_events",) in tables
