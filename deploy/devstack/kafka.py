"""A real single-node Kafka 4 broker (KRaft) from the official jars that Maven fetches.

Used by `make up` (data under `.data/kafka`, port 9092) and by the test session (a temporary
folder and free ports), so both run the same broker the same way.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StackError
from devstack.ports import is_listening, require_free
from devstack.process import ManagedProcess, tail

DEPLOY_DIR = Path(__file__).resolve().parent.parent
POM = DEPLOY_DIR / "kafka" / "pom.xml"
LOG4J_CONFIG = DEPLOY_DIR / "kafka" / "log4j2.properties"
READY_LINE = "Kafka Server started"


@dataclass(frozen=True)
class KafkaNode:
    """One broker+controller node: its folder, its two ports and its largest message."""

    home: Path
    port: int
    controller_port: int
    message_max_bytes: int
    heap: str = "512m"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "kafka.log"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("kafka", self.home / "kafka.pid", self.log_file)


def ensure_jars(libs_dir: Path) -> Path:
    """Fetch the broker jars once with Maven; later calls find them in `libs_dir`."""
    if any(libs_dir.glob("kafka_2.13-*.jar")):
        return libs_dir
    if shutil.which("mvn") is None:
        raise StackError(
            "Maven (mvn) is not installed, and it is needed once to fetch the Kafka jars from "
            "Maven Central. Install it (`apt-get install maven`) or point "
            "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS at an existing broker."
        )
    print(
        f"• fetching the Kafka broker jars with Maven into {libs_dir} (first run only)…", flush=True
    )
    partial = libs_dir.with_name(libs_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        "mvn", "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = tail(result.stdout + result.stderr, 5)
        raise StackError(
            "Maven could not fetch the Kafka jars from Maven Central (is the registry reachable, "
            f"and are proxies set in ~/.m2/settings.xml?). Maven said:\n{last}"
        )
    partial.rename(libs_dir)  # all or nothing: a broken download is never mistaken for jars
    return libs_dir


def require_java() -> None:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is not installed; the Kafka broker needs Java 17 or newer "
            "(`apt-get install openjdk-17-jre-headless`)."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match and int(match.group(1)) < 17:
        raise StackError(f"Kafka 4 needs Java 17 or newer, but `java -version` says: {out.strip()}")


def write_config(node: KafkaNode) -> Path:
    """Settings that make a one-node cluster work (DESIGN.md, the Kafka traps)."""
    config = node.home / "server.properties"
    lines = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{node.controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "12",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "12",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(node.message_max_bytes),
        "replica.fetch.max.bytes": str(node.message_max_bytes),
        "log.retention.ms": "-1",
        # Tests kill consumers on purpose; let the group settle quickly.
        "group.consumer.min.session.timeout.ms": "3000",
        "group.min.session.timeout.ms": "3000",
    }
    config.write_text("".join(f"{key}={value}\n" for key, value in lines.items()))
    return config


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes them: never starting with "-", which the storage tool
    would read as an option (one id in 64 would fail the format)."""
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    return cluster_id


def format_storage_once(node: KafkaNode, libs_dir: Path, config: Path) -> None:
    """Format the log folder only when it has never been formatted; refuse a half-done one."""
    if (node.data_dir / "meta.properties").exists():
        return
    if node.data_dir.exists() and any(node.data_dir.iterdir()):
        raise StackError(
            f"The Kafka data folder {node.data_dir} has files but no meta.properties: it was left "
            "half-formatted. Remove that folder (its events are lost) and run again."
        )
    cluster_id = new_cluster_id()
    command = [*java_command(libs_dir, "kafka.tools.StorageTool"), "format", "-t", cluster_id,
               "-c", str(config)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(node.data_dir, ignore_errors=True)
        raise StackError(
            f"Formatting the Kafka storage failed:\n{tail(result.stdout + result.stderr, 8)}"
        )


def java_command(libs_dir: Path, main_class: str, heap: str = "256m") -> list[str]:
    """The JVM for a broker that lives minutes to hours on a small machine (dev, tests, bench).

    C1 only (`TieredStopAtLevel=1`): C2's optimising compiler kept a third to half a core busy
    for the broker's first minutes, on a two-core machine shared with the services it serves.
    Measured on the command benchmark: broker CPU 2.96 → 1.57 ms per command (0.75 → 0.40 of a
    core); the read benchmark's ratio 0.42× → 0.51× in back-to-back runs. A production broker is
    long-lived and runs on machines of its own (deploy/k8s: Strimzi), where C2 pays off.
    """
    return [
        "java", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", f"{libs_dir}/*", main_class,
    ]  # fmt: skip


def start(node: KafkaNode, libs_dir: Path, timeout: float = 120.0) -> None:
    """Start the broker in the background and return once it serves; harmless if it runs."""
    if node.process.alive() and is_listening(node.port):
        return
    require_java()
    require_free(node.port, "Kafka", "CHATSHARE_KAFKA_PORT")
    require_free(node.controller_port, "Kafka's controller", "CHATSHARE_KAFKA_CONTROLLER_PORT")
    node.home.mkdir(parents=True, exist_ok=True)
    config = write_config(node)
    format_storage_once(node, libs_dir, config)
    offset = node.log_file.stat().st_size if node.log_file.exists() else 0
    command = [*java_command(libs_dir, "kafka.Kafka", node.heap), str(config)]
    node.process.spawn(command, env=dict(os.environ))
    wait_ready(node, offset, timeout)


def wait_ready(node: KafkaNode, log_offset: int, timeout: float) -> None:
    """Ready means the broker logged its start and its port accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.process.alive():
            raise StackError(
                f"Kafka exited while starting; the end of {node.log_file}:\n"
                f"{tail(node.log_file.read_text(errors='replace'), 15)}"
            )
        with node.log_file.open("rb") as log:
            log.seek(log_offset)
            started = READY_LINE.encode() in log.read()
        if started and is_listening(node.port):
            return
        time.sleep(0.25)
    node.process.stop()
    raise StackError(f"Kafka did not become ready within {timeout:.0f} s; see {node.log_file}.")


def stop(node: KafkaNode) -> None:
    # A controlled shutdown moves leadership and flushes logs; give it time before SIGKILL.
    node.process.stop(grace=30.0)


if __name__ == "__main__":  # pragma: no cover - manual use
    print(ensure_jars(Path(sys.argv[1])))
