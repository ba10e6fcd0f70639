"""`make up` / `make down` / `make status`: the local stack in the background under `.data/`.

Kafka and PostgreSQL are started here unless `CHATSHARE_KAFKA_BOOTSTRAP_SERVERS` /
`CHATSHARE_DATABASE_URL` point at ones you already run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from devstack import kafka, postgres
from devstack.errors import StackError
from devstack.services import default_services, process_for, readiness, start_service, wait_ready
from devstack.topics import DEFAULT_MAX_SNAPSHOT_BYTES, ensure_topics

ROOT = Path(__file__).resolve().parents[2]


class Layout:
    """Where the stack keeps its state: `.data/` at the repository root (git-ignored)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.data = Path(os.environ.get("CHATSHARE_DATA_DIR", root / ".data"))
        self.cache = root / ".cache"
        self.run = self.data / "run"
        self.logs = self.data / "logs"
        env = os.environ
        self.max_snapshot_bytes = int(
            env.get("CHATSHARE_MAX_SNAPSHOT_BYTES", DEFAULT_MAX_SNAPSHOT_BYTES)
        )
        self.external_kafka = env.get("CHATSHARE_KAFKA_BOOTSTRAP_SERVERS")
        self.external_postgres = env.get("CHATSHARE_DATABASE_URL")
        self.kafka = kafka.KafkaNode(
            home=self.data / "kafka",
            port=int(env.get("CHATSHARE_KAFKA_PORT", 9092)),
            controller_port=int(env.get("CHATSHARE_KAFKA_CONTROLLER_PORT", 9093)),
            message_max_bytes=kafka_message_bytes(self.max_snapshot_bytes),
        )
        self.postgres = postgres.PostgresNode(
            home=postgres.data_home(self.data / "postgres"),
            port=int(env.get("CHATSHARE_POSTGRES_PORT", 55432)),
        )

    @property
    def bootstrap_servers(self) -> str:
        return self.external_kafka or self.kafka.bootstrap_servers

    @property
    def database_url(self) -> str:
        return self.external_postgres or self.postgres.url


def kafka_message_bytes(max_snapshot_bytes: int) -> int:
    from contracts.topics import max_message_bytes

    return max_message_bytes(max_snapshot_bytes)


def step(message: str) -> None:
    print(f"• {message}", flush=True)


def up(layout: Layout) -> None:
    started = time.monotonic()
    if layout.external_kafka:
        step(f"using the Kafka at {layout.external_kafka}")
    else:
        libs = kafka.ensure_jars(layout.cache / "kafka-libs")
        step(f"starting Kafka on {layout.kafka.bootstrap_servers}")
        kafka.start(layout.kafka, libs)
    if layout.external_postgres:
        step("using the PostgreSQL at CHATSHARE_DATABASE_URL")
    else:
        step(f"starting PostgreSQL on 127.0.0.1:{layout.postgres.port}")
        postgres.start(layout.postgres)
    created = asyncio.run(ensure_topics(layout.bootstrap_servers, layout.max_snapshot_bytes))
    step(f"topics ready ({len(created)} created)")
    env = {
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": layout.bootstrap_servers,
        "CHATSHARE_DATABASE_URL": layout.database_url,
    }
    specs = default_services(os.environ)
    processes = [(spec, start_service(spec, env, layout.run, layout.logs)) for spec in specs]
    for spec, process in processes:
        wait_ready(spec, process)
        step(f"{spec.name} ready")
    print(f"\nchatshare is up ({time.monotonic() - started:.1f} s):")
    print(f"  Kafka               {layout.bootstrap_servers}")
    print(f"  PostgreSQL          {_hide_password(layout.database_url)}")
    for spec in specs:
        print(f"  {spec.name:<19} {spec.url}")
    print(f"  logs                {layout.logs}/")


def _hide_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def down(layout: Layout) -> None:
    for spec in reversed(default_services(os.environ)):
        if process_for(spec, layout.run, layout.logs).stop():
            step(f"stopped {spec.name}")
    if layout.postgres.process.pid() is not None:
        postgres.stop(layout.postgres)
        step("stopped PostgreSQL")
    if layout.kafka.process.pid() is not None:
        kafka.stop(layout.kafka)
        step("stopped Kafka")
    step("down (data kept in .data/)")


def status(layout: Layout) -> int:
    all_ready = True
    for spec in default_services(os.environ):
        ready, _ = readiness(spec)
        all_ready &= ready
        print(f"{spec.name:<20} {'ready' if ready else 'not ready'}  {spec.url}")
    return 0 if all_ready else 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="chatshare-stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "fetch-kafka"])
    args = parser.parse_args()
    layout = Layout()
    try:
        if args.command == "up":
            up(layout)
        elif args.command == "down":
            down(layout)
        elif args.command == "fetch-kafka":
            kafka.ensure_jars(layout.cache / "kafka-libs")
        else:
            sys.exit(status(layout))
    except StackError as error:
        print(f"\nerror: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
