"""Every part of chatshare that can fail alone, as a process of its own on the test session's
Kafka and PostgreSQL (its own database and topic prefix): share_service split by
`CHATSHARE_ROLES` and `CHATSHARE_CONSUMER_GROUPS` into API, relay, projection and chat mirror,
beside settings_service, community_publisher and the community-site stand-in. A test SIGKILLs
any of them by name and starts it again."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack import postgres
from devstack.kafka import KafkaNode
from devstack.ports import free_port
from devstack.process import ManagedProcess
from devstack.services import ServiceSpec, start_service, wait_ready
from share_service.config import ShareServiceSettings
from tests.conftest import ROOT, TEST_MAX_SNAPSHOT_BYTES

SHARE_APP = "share_service.bootstrap:create_app"

# name → (uvicorn factory, the variables only this process gets)
PARTS: dict[str, tuple[str, dict[str, str]]] = {
    "community_standin": ("community_standin.app:create_app", {}),
    "settings_service": ("settings_service.bootstrap:create_app", {}),
    "share_api": (SHARE_APP, {"CHATSHARE_ROLES": "http"}),
    "share_relay": (SHARE_APP, {"CHATSHARE_ROLES": "relay"}),
    "share_projection": (
        SHARE_APP,
        {"CHATSHARE_ROLES": "consumers", "CHATSHARE_CONSUMER_GROUPS": "share-projection"},
    ),
    "chat_mirror": (
        SHARE_APP,
        {
            "CHATSHARE_ROLES": "consumers",
            "CHATSHARE_CONSUMER_GROUPS": "chat-mirror,share-service-policy",
        },
    ),
    "community_publisher": ("community_publisher.bootstrap:create_app", {}),
}


@dataclass
class SplitStack:
    env: dict[str, str]  # what every process gets
    home: Path
    specs: dict[str, ServiceSpec] = field(default_factory=dict)
    env_of: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return self.env["CHATSHARE_TOPIC_PREFIX"]

    @property
    def bootstrap(self) -> str:
        return self.env["CHATSHARE_KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def database_url(self) -> str:
        return self.env["CHATSHARE_DATABASE_URL"]

    def url(self, name: str) -> str:
        return self.specs[name].url

    def share_settings(self) -> ShareServiceSettings:
        """share_service's settings, as an operator's `chatshare` reads them."""
        return ShareServiceSettings(
            database_url=self.database_url,
            kafka_bootstrap_servers=self.bootstrap,
            topic_prefix=self.prefix,
            max_snapshot_bytes=TEST_MAX_SNAPSHOT_BYTES,
        )

    def add(self, name: str, factory: str, port: int | None = None, **variables: str) -> None:
        """A process of the stack, not started yet."""
        self.specs[name] = ServiceSpec(name, factory, port or free_port(), "-")
        self.env_of[name] = {**self.env, **variables}

    def spawn(self, name: str) -> None:
        spec = self.specs[name]
        self.processes[name] = start_service(
            spec, self.env_of[name], self.home / "run", self.home / "logs"
        )

    def wait_ready(self, name: str) -> None:
        """Until its `/readyz` says Kafka and PostgreSQL are reachable and every consumer of
        the process holds its partitions."""
        wait_ready(self.specs[name], self.processes[name], timeout=120)

    def start(self, name: str) -> None:
        self.spawn(name)
        self.wait_ready(name)

    def start_all(self) -> None:
        for name in self.specs:  # side by side: they boot in parallel
            self.spawn(name)
        for name in self.specs:
            self.wait_ready(name)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash: nothing gets to clean up, whatever it was doing."""
        self.processes[name].kill()

    def stop(self, name: str) -> None:
        self.processes.pop(name).stop(grace=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop(grace=10)


def new_split_stack(kafka: KafkaNode, database: postgres.PostgresNode, prefix: str) -> SplitStack:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    postgres.ensure_database(database, name)
    standin_port = free_port()
    env = {
        "CHATSHARE_ENV": "test",
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "CHATSHARE_DATABASE_URL": f"postgresql://postgres:postgres@127.0.0.1:{database.port}/{name}",
        "CHATSHARE_TOPIC_PREFIX": prefix,
        "CHATSHARE_MAX_SNAPSHOT_BYTES": str(TEST_MAX_SNAPSHOT_BYTES),
        "CHATSHARE_KAFKA_SESSION_TIMEOUT_MS": "6000",  # a killed member's partitions move soon
        "CHATSHARE_COMMUNITY_URL": f"http://127.0.0.1:{standin_port}",
        "CHATSHARE_UPLOAD_BACKOFF_SECONDS": "0.05",
        "CHATSHARE_UPLOAD_MAX_BACKOFF_SECONDS": "0.2",
        "CHATSHARE_POLICY_WAIT_SECONDS": "2",
        "CHATSHARE_PUBLIC_URL": "https://chat.example",
    }
    stack = SplitStack(env, Path(tempfile.mkdtemp(prefix="chatshare-test-faults-")))
    for part, (factory, variables) in PARTS.items():
        port = standin_port if part == "community_standin" else None
        stack.add(part, factory, port, **variables)
    return stack


def keep_logs(stack: SplitStack) -> None:
    """The processes' logs stay where a failed run can be read (git-ignored)."""
    shutil.copytree(
        stack.home / "logs", ROOT / "test-artifacts" / "faults-logs", dirs_exist_ok=True
    )
    shutil.rmtree(stack.home, ignore_errors=True)
