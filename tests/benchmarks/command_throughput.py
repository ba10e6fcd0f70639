"""Share commands per second over HTTP at 16 connections, with p50/p99, against a bare ASGI app
doing one durable INSERT of the same snapshot size into the same PostgreSQL (issue 4: target
≥ 0.25×, p99 ≤ 100 ms). Audited: every 2xx must be a durable new link version."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.services import ServiceSpec, start_service, wait_ready
from devstack.topics import ensure_topics
from tests.benchmarks.infrastructure import MAX_SNAPSHOT_BYTES, BenchInfrastructure
from tests.benchmarks.load import LoadResult, run_wrk
from tests.benchmarks.machine_load import CpuTimes
from tests.benchmarks.process_cpu import CpuSplit, describe, postmaster_pid
from tests.benchmarks.process_memory import stop_measured
from tests.benchmarks.report import Figure, Limit, Report
from tests.chat_feed import ChatFeed, send
from tests.identities import make_token

CHATS = 200
MESSAGES_PER_CHAT = 10
# 10 messages of ~450 characters: a snapshot holds them twice (the visible branch and the whole
# tree), about 12 KB of JSON.
MESSAGE_BYTES = 450
CONNECTIONS = 16
SECONDS = 15
# Both sides run this long before the measured stretch, which measures the steady state: the
# broker's JVM takes its first half minute of load to settle (Kafka's CPU per command in three
# back-to-back 15 s runs on one broker: 0.68, 0.38, 0.31 ms; with C2 allowed it settled later,
# no lower), and the first share of each chat (a create) happens here, not in the measured part.
WARMUP_SECONDS = 20
OWNER = "bench-user"


def start(spec: ServiceSpec, env: dict[str, str], home: Path) -> ManagedProcess:
    process = start_service(spec, env, home / "run", home / "logs")
    wait_ready(spec, process, timeout=120)
    return process


def mirrored_whole(connection: psycopg.Connection[Any]) -> int:
    """How many chats the mirror holds with every message sent."""
    row = connection.execute(
        "SELECT count(*) FROM share_service.mirrored_chats WHERE chat_version = %s",
        (MESSAGES_PER_CHAT + 1,),
    ).fetchone()
    return int(row[0]) if row else 0


def feed_chats(infra: BenchInfrastructure, prefix: str, database_url: str) -> list[str]:
    feeds = [ChatFeed(OWNER) for _ in range(CHATS)]
    events: list[object] = []
    for feed in feeds:
        events.append(feed.created("Benchmark chat"))
        events += [feed.message(f"{i} " + "y" * MESSAGE_BYTES) for i in range(MESSAGES_PER_CHAT)]
    asyncio.run(send(infra.bootstrap, events, prefix))
    with psycopg.connect(database_url) as connection:
        while mirrored_whole(connection) < CHATS:
            time.sleep(0.2)
    return [f"/api/v1/chats/{feed.chat_id}/share" for feed in feeds]


def link_versions(database_url: str) -> int:
    """Durable link versions in share_service's event store: creates plus re-snapshots."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM share_service.share_events WHERE topic LIKE %s OR topic LIKE %s",
            ("%ShareLink.ShareCreated", "%ShareLink.SnapshotUpdated"),
        ).fetchone()
    return int(row[0]) if row else 0


def settled_versions(database_url: str) -> int:
    """The link versions once the commands still in flight when wrk stopped have landed (it
    stops at its deadline, not when the answers are in): two readings in a row that agree."""
    versions = link_versions(database_url)
    while True:
        time.sleep(0.3)
        again = link_versions(database_url)
        if again == versions:
            return versions
        versions = again


def stored_snapshot(database_url: str) -> bytes:
    """One of the run's snapshots, as compact JSON (`snapshot_size` counts these bytes): the
    baseline inserts it, so both sides write snapshots of the same size and make-up."""
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT state FROM share_service.share_events WHERE topic LIKE %s"
            " ORDER BY notification_id DESC LIMIT 1",
            ("%ShareLink.SnapshotUpdated",),
        ).fetchone()
    if row is None:
        raise RuntimeError("the run stored no snapshot")
    snapshot = json.loads(bytes(row[0]))["snapshot"]
    return json.dumps(snapshot, ensure_ascii=False, separators=(",", ":")).encode()


RELAY_POSITION = (
    "SELECT coalesce((SELECT notification_id FROM share_service.outbox_relay_positions"
    " WHERE relay = 'share_service'), 0)"
)
# The link events stored after a notification id, and the last id: counted from where the
# previous sample stopped (an index range), not over the whole table each time — a full scan
# twice a second was some 5 % of the machine's CPU by the end of a run, taken from the system
# it measured.
NEW_EVENTS = (
    "SELECT count(*) FILTER (WHERE topic LIKE '%%ShareLink.%%'), max(notification_id)"
    " FROM share_service.share_events WHERE notification_id > %s"
)
# A link's version counts its events, so the link events stored minus the versions the view rows
# reflect is the number of link events not yet projected.
VIEW_VERSIONS = "SELECT coalesce(sum(version), 0) FROM share_service.share_views"


class LagSampler(threading.Thread):
    """Events stored but not yet published (relay) and not yet in the view store (projection),
    sampled every half second while the load runs."""

    def __init__(self, database_url: str) -> None:
        super().__init__(daemon=True)
        self.database_url = database_url
        self.relay: list[int] = []
        self.projection: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        link_events = last_id = 0
        with psycopg.connect(self.database_url, autocommit=True) as connection:

            def value(query: str, *args: object) -> int:
                row = connection.execute(query, args).fetchone()
                return int(row[0]) if row and row[0] is not None else 0

            while True:
                row = connection.execute(NEW_EVENTS, (last_id,)).fetchone()
                if row is not None and row[1] is not None:
                    link_events, last_id = link_events + int(row[0]), int(row[1])
                if self.stop.is_set():
                    return
                self.relay.append(last_id - value(RELAY_POSITION))
                self.projection.append(link_events - value(VIEW_VERSIONS))
                self.stop.wait(0.5)

    def summary(self) -> str:
        def describe(samples: list[int]) -> str:
            ordered = sorted(samples) or [0]
            return f"median {ordered[len(ordered) // 2]}, max {ordered[-1]} events"

        return f"relay lag {describe(self.relay)}; projection lag {describe(self.projection)}"


def run(infra: BenchInfrastructure, report: Report) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    asyncio.run(ensure_topics(infra.bootstrap, MAX_SNAPSHOT_BYTES, prefix))
    database_url = infra.new_database("bench_commands")
    home = Path(tempfile.mkdtemp(prefix="chatshare-bench-services-"))
    env = {
        **os.environ,
        "CHATSHARE_TOPIC_PREFIX": prefix,
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "CHATSHARE_DATABASE_URL": database_url,
        "BENCH_DATABASE_URL": database_url,
    }
    # As deployed (deploy/k8s): the API in one process, the relay and the consumers (chat
    # mirror, projection, policy) in another; both share the machine with the load generator.
    share = ServiceSpec("share_service", "share_service.bootstrap:create_app", free_port(), "X")
    workers = ServiceSpec("share_workers", "share_service.bootstrap:create_app", free_port(), "X")
    worker_process = start(workers, {**env, "CHATSHARE_ROLES": "relay,consumers"}, home)
    process = start(share, {**env, "CHATSHARE_ROLES": "http"}, home)
    token = make_token(OWNER)
    postgres = partial(postmaster_pid, infra.postgres.data_dir)
    parts: dict[str, Callable[[], int | None]] = {
        "API": process.pid,
        "workers": worker_process.pid,
        "Kafka": infra.kafka.process.pid,
        "PostgreSQL": postgres,
    }
    try:
        paths = feed_chats(infra, prefix, database_url)
        run_wrk(share.url, paths, token, method="POST", connections=CONNECTIONS,
                seconds=WARMUP_SECONDS)  # fmt: skip
        before = settled_versions(database_url)
        sampler = LagSampler(database_url)
        sampler.start()
        cpu, split = CpuTimes.now(), CpuSplit.now(parts)
        measured = run_wrk(
            share.url, paths, token, method="POST", connections=CONNECTIONS, seconds=SECONDS
        )
        busy = CpuTimes.now().busy_since(cpu)
        command_cpu = CpuSplit.now(parts).per_unit_ms(split, measured.requests)
        sampler.stop.set()
        gained = link_versions(database_url) - before
        snapshot = stored_snapshot(database_url)
    finally:
        stop_measured(process, "share commands (API)", report.add_memory)
        stop_measured(worker_process, "share commands (workers)", report.add_memory)
    raw = ServiceSpec("raw_insert", "tests.benchmarks.raw_insert_app:create_app", free_port(), "X")
    snapshot_file = home / "snapshot.json"
    snapshot_file.write_bytes(snapshot)
    raw_process = start_raw(raw, {**env, "BENCH_SNAPSHOT_FILE": str(snapshot_file)}, home)
    raw_parts: dict[str, Callable[[], int | None]] = {
        "app": raw_process.pid,
        "PostgreSQL": postgres,
    }
    try:
        run_wrk(raw.url, paths, token, method="POST", connections=CONNECTIONS,
                seconds=WARMUP_SECONDS)  # fmt: skip
        split = CpuSplit.now(raw_parts)
        baseline = run_wrk(
            raw.url, paths, token, method="POST", connections=CONNECTIONS, seconds=SECONDS
        )
        baseline_cpu = CpuSplit.now(raw_parts).per_unit_ms(split, baseline.requests)
    finally:
        stop_measured(raw_process, "share commands", report.add_memory)
    audit(measured, gained)
    report.add(Figure(
        "share commands over HTTP (16 connections)", "commands/s", measured.per_second,
        f"bare uvicorn app, one durable INSERT of one of its snapshots "
        f"({len(snapshot) / 1024:.1f} KB)", baseline.per_second, target_ratio=0.25,
        limits=(Limit("p99", measured.p99_ms, 100),),
        notes=f"p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms (baseline "
        f"p99 {baseline.p99_ms:.1f} ms); audited: {measured.ok} 2xx, {gained} durable versions; "
        f"API and workers in two processes; each side measured after {WARMUP_SECONDS} s of "
        f"the same load; during the run: {sampler.summary()}; the "
        f"machine's CPUs {busy:.0%} busy; CPU per command: {describe(command_cpu)}; per "
        f"baseline request: {describe(baseline_cpu)}",
    ))  # fmt: skip


def start_raw(spec: ServiceSpec, env: dict[str, str], home: Path) -> ManagedProcess:
    process = ManagedProcess(spec.name, home / "run" / "raw.pid", home / "logs" / "raw.log")
    command = [sys.executable, "-m", "uvicorn", spec.factory, "--factory", "--port", str(spec.port),
               "--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # fmt: skip
    process.spawn(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(
                urllib.request.Request(spec.url, method="POST", data=b""), timeout=2
            )
            return process
        except urllib.error.HTTPError:
            return process  # it answers: that is all we wait for
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the raw baseline app did not start")


def audit(measured: LoadResult, gained: int) -> None:
    # wrk stops counting at its deadline while up to CONNECTIONS requests are still in flight:
    # those may commit without being counted, never the other way round.
    if not measured.ok <= gained <= measured.ok + CONNECTIONS:
        raise SystemExit(
            f"audit failed: {measured.ok} 2xx answers but {gained} durable link versions"
        )
