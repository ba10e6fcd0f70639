"""The read side's benchmarks (issue 5):
- GET /api/v1/shares/{id} with a real token at 32 connections over many links, against a bare
  uvicorn app reading the same ready body by primary key (target ≥ 0.5×, p99 ≤ 20 ms);
- freshness: from a create's 201 to the first 200 read, at 100 creates/s (median ≤ 50 ms,
  p99 ≤ 250 ms), against one GET of a row that already exists (the floor any read pays)."""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from devstack.ports import free_port
from devstack.services import ServiceSpec
from devstack.topics import ensure_topics
from tests.benchmarks.command_throughput import start, start_raw
from tests.benchmarks.infrastructure import MAX_SNAPSHOT_BYTES, BenchInfrastructure
from tests.benchmarks.lean_http import LeanClient, run_on_uvloop
from tests.benchmarks.load import run_wrk
from tests.benchmarks.machine_load import CpuTimes
from tests.benchmarks.process_memory import stop_measured
from tests.benchmarks.report import Figure, Limit, Report
from tests.chat_feed import ChatFeed, send
from tests.identities import bearer, make_token

LINKS = 500
FRESHNESS_CREATES = 600
CREATES_PER_SECOND = 100
# Freshness when the system is nearly idle too: what a waiting consumer costs shows there (a
# blind 200 ms sleep in faststream's batch poll once made its p99 183 ms; servicekit/README.md).
QUIET_CREATES = 60
QUIET_CREATES_PER_SECOND = 5
READER = "bench-reader"
OWNER = "bench-owner"


async def feed(infra: BenchInfrastructure, prefix: str, chats: int) -> list[ChatFeed]:
    feeds = [ChatFeed(OWNER) for _ in range(chats)]
    events = [
        e
        for f in feeds
        for e in (f.created("Read benchmark"), *(f.message("z" * 400) for _ in range(10)))
    ]
    await send(infra.bootstrap, events, prefix)
    return feeds


async def share_all(base_url: str, feeds: list[ChatFeed]) -> list[str]:
    headers = bearer(make_token(OWNER))
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        semaphore = asyncio.Semaphore(8)

        async def share(f: ChatFeed) -> str:
            async with semaphore:
                answer = await client.post(
                    f"/api/v1/chats/{f.chat_id}/share",
                    json={"chat_version": f.version},
                    headers=headers,
                )
                answer.raise_for_status()
                link = answer.json()
                await client.get(
                    f"/api/v1/shares/{link['share_id']}?min_version=1", headers=headers
                )
                return str(link["share_id"])

        return list(await asyncio.gather(*(share(f) for f in feeds)))


async def freshness(
    base_url: str, feeds: list[ChatFeed], per_second: float = CREATES_PER_SECOND
) -> tuple[list[float], list[float], float, float]:
    """Per create: ms from its 201 to the first 200 read; and a GET of an existing row. Also the
    pace the creates were actually sent at (per second), to show the load was the one asked for,
    and how busy the machine's CPUs were meanwhile (everything runs on this one machine).

    The client is `lean_http` on uvloop: httpx cost more CPU than the service it measured."""
    owner, reader = bearer(make_token(OWNER)), bearer(make_token(READER))
    client = LeanClient(base_url, connections=64)

    async def one(f: ChatFeed) -> tuple[float, float]:
        created = await client.request(
            "POST", f"/api/v1/chats/{f.chat_id}/share", owner, {"chat_version": f.version}
        )
        created.raise_for_status()
        acknowledged = time.perf_counter()
        link = created.json()
        url = f"/api/v1/shares/{link['share_id']}"
        # Read-your-writes as a client does it: the 201's version as `min_version`; the
        # service answers as soon as its view has it (a 404 would mean it never came).
        first = await client.request("GET", f"{url}?min_version={link['version']}", reader)
        first.raise_for_status()
        fresh = time.perf_counter()
        (await client.request("GET", url, reader)).raise_for_status()  # one read's own cost
        return (fresh - acknowledged) * 1000, (time.perf_counter() - fresh) * 1000

    try:
        tasks = []
        cpu = CpuTimes.now()
        started = time.perf_counter()
        for n, f in enumerate(feeds):  # an even pace of creates, each followed by its reader
            tasks.append(asyncio.create_task(one(f)))
            await asyncio.sleep(max(0.0, started + (n + 1) / per_second - time.perf_counter()))
        pace = len(feeds) / (time.perf_counter() - started)
        results = await asyncio.gather(*tasks)
        busy = CpuTimes.now().busy_since(cpu)
    finally:
        await client.close()
    return [r[0] for r in results], [r[1] for r in results], pace, busy


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(infra: BenchInfrastructure, report: Report) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    asyncio.run(ensure_topics(infra.bootstrap, MAX_SNAPSHOT_BYTES, prefix))
    database_url = infra.new_database("bench_reads")
    home = Path(tempfile.mkdtemp(prefix="chatshare-bench-reads-"))
    env = {**os.environ, "CHATSHARE_TOPIC_PREFIX": prefix, "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
           "CHATSHARE_DATABASE_URL": database_url, "BENCH_DATABASE_URL": database_url}  # fmt: skip
    # As deployed (deploy/k8s) and as the command benchmark runs it: the API in one process,
    # the relay and the consumers (mirror, projection, policy) in another.
    share = ServiceSpec("share_service", "share_service.bootstrap:create_app", free_port(), "X")
    workers = ServiceSpec("share_workers", "share_service.bootstrap:create_app", free_port(), "X")
    worker_process = start(workers, {**env, "CHATSHARE_ROLES": "relay,consumers"}, home)
    process = start(share, {**env, "CHATSHARE_ROLES": "http"}, home)
    try:
        feeds = asyncio.run(feed(infra, prefix, LINKS + FRESHNESS_CREATES + QUIET_CREATES))
        time.sleep(2)  # let the mirror take the chats in
        share_ids = asyncio.run(share_all(share.url, feeds[:LINKS]))
        paths = [f"/api/v1/shares/{share_id}" for share_id in share_ids]
        reads = run_wrk(share.url, paths, make_token(READER), connections=32, seconds=15)
        busy = feeds[LINKS : LINKS + FRESHNESS_CREATES]
        fresh, floor, pace, cpu_busy = run_on_uvloop(lambda: freshness(share.url, busy))
        quiet, quiet_floor, quiet_pace, quiet_busy = run_on_uvloop(
            lambda: freshness(share.url, feeds[-QUIET_CREATES:], QUIET_CREATES_PER_SECOND)
        )
    finally:
        stop_measured(process, "read path (API)", report.add_memory)
        stop_measured(worker_process, "read path (workers)", report.add_memory)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE raw_views AS SELECT share_id AS id, body FROM share_service.share_views"
        )
        connection.execute("ALTER TABLE raw_views ADD PRIMARY KEY (id)")
    raw = ServiceSpec("raw_read", "tests.benchmarks.raw_read_app:create_app", free_port(), "X")
    raw_process = start_raw(raw, env, home)
    try:
        baseline = run_wrk(raw.url, paths, make_token(READER), connections=32, seconds=15)
    finally:
        stop_measured(raw_process, "read path", report.add_memory)
    report.add(Figure(
        "GET /api/v1/shares/{id} (32 connections)", "requests/s", reads.per_second,
        "bare uvicorn + asyncpg, same body by primary key", baseline.per_second, target_ratio=0.5,
        limits=(Limit("p99", reads.p99_ms, 20),),
        notes=f"p50 {reads.p50_ms:.1f} ms, p99 {reads.p99_ms:.1f} ms (baseline p99 "
        f"{baseline.p99_ms:.1f} ms); {LINKS} links of ~4.5 KB; non-2xx: {reads.non_2xx}",
    ))  # fmt: skip
    report.add(Figure(
        "freshness: create 201 → first 200 read (median)", "ms", statistics.median(fresh),
        "one GET of an existing row (median)", statistics.median(floor), higher_is_better=False,
        limits=(Limit("median", statistics.median(fresh), 50),
                Limit("p99", percentile(fresh, 0.99), 250)),
        notes=f"read with `?min_version=` the 201's version; "
        f"p99 {percentile(fresh, 0.99):.1f} ms at "
        f"{CREATES_PER_SECOND} creates/s (sent at {pace:.0f}/s), {FRESHNESS_CREATES} creates; floor p99 {percentile(floor, 0.99):.1f} ms; "
        f"the machine's CPUs {cpu_busy:.0%} busy meanwhile (services, Kafka, PostgreSQL, this client)",
    ))  # fmt: skip
    report.add(Figure(
        f"freshness at {QUIET_CREATES_PER_SECOND} creates/s (median)", "ms",
        statistics.median(quiet), "one GET of an existing row (median)",
        statistics.median(quiet_floor), higher_is_better=False,
        notes=f"p99 {percentile(quiet, 0.99):.1f} ms (sent at {quiet_pace:.1f}/s), "
        f"{QUIET_CREATES} creates; CPUs {quiet_busy:.0%} busy; no target: shows what an idle "
        "pipeline adds",
    ))  # fmt: skip
