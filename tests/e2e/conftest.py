"""The services as real processes (uvicorn, as `make up` runs them) on the test session's own
Kafka and PostgreSQL, on free ports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import postgres
from devstack.kafka import KafkaNode
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.services import ServiceSpec, default_services, start_service, wait_ready
from tests.conftest import ROOT, TEST_MAX_SNAPSHOT_BYTES


@dataclass
class RunningStack:
    services: dict[str, ServiceSpec]
    processes: dict[str, ManagedProcess]
    env: dict[str, str]

    def url(self, name: str) -> str:
        return self.services[name].url


@pytest.fixture(scope="session")
def running_stack(
    kafka_node: KafkaNode, postgres_node: postgres.PostgresNode
) -> Iterator[RunningStack]:
    database = "e2e"
    postgres.ensure_database(postgres_node, database)
    standin_port = free_port()
    env = {
        "CHATSHARE_ENV": "test",
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": kafka_node.bootstrap_servers,
        "CHATSHARE_DATABASE_URL": f"postgresql://postgres:postgres@127.0.0.1:{postgres_node.port}/{database}",
        "CHATSHARE_MAX_SNAPSHOT_BYTES": str(TEST_MAX_SNAPSHOT_BYTES),
        "CHATSHARE_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CHATSHARE_COMMUNITY_URL": f"http://127.0.0.1:{standin_port}",
        "CHATSHARE_STANDIN_PORT": str(standin_port),
        "CHATSHARE_SETTINGS_PORT": str(free_port()),
        "CHATSHARE_SHARE_PORT": str(free_port()),
        "CHATSHARE_PUBLISHER_PORT": str(free_port()),
    }
    env["CHATSHARE_PUBLIC_URL"] = f"http://127.0.0.1:{env['CHATSHARE_SHARE_PORT']}"
    home = Path(tempfile.mkdtemp(prefix="chatshare-test-services-"))
    specs = {spec.name: spec for spec in default_services(env)}
    processes = {
        name: start_service(spec, env, home / "run", home / "logs") for name, spec in specs.items()
    }
    try:
        for name, spec in specs.items():
            wait_ready(spec, processes[name], timeout=120)
        yield RunningStack(specs, processes, env)
    finally:
        for process in processes.values():
            process.stop(grace=10)
        # Keep the services' logs where a failed run can be read (git-ignored).
        shutil.copytree(home / "logs", ROOT / "test-artifacts" / "e2e-logs", dirs_exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)
