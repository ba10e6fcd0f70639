"""chatshare's HTTP services as background processes, each started with uvicorn and waited for
on its `/readyz` (Kafka and PostgreSQL reachable, every consumer holding its partitions)."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import StackError
from devstack.ports import is_listening, require_free
from devstack.process import ManagedProcess, tail


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    factory: str
    port: int
    port_variable: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def default_services(env: Mapping[str, str]) -> tuple[ServiceSpec, ...]:
    """The dev stack's services on INTERFACE.md §1's ports (each can be moved by a variable)."""

    def port(variable: str, default: int) -> int:
        return int(env.get(variable, default))

    return (
        ServiceSpec("community_standin", "community_standin.app:create_app",
                    port("CHATSHARE_STANDIN_PORT", 8090), "CHATSHARE_STANDIN_PORT"),
        ServiceSpec("settings_service", "settings_service.bootstrap:create_app",
                    port("CHATSHARE_SETTINGS_PORT", 8001), "CHATSHARE_SETTINGS_PORT"),
        ServiceSpec("share_service", "share_service.bootstrap:create_app",
                    port("CHATSHARE_SHARE_PORT", 8000), "CHATSHARE_SHARE_PORT"),
        ServiceSpec("community_publisher", "community_publisher.bootstrap:create_app",
                    port("CHATSHARE_PUBLISHER_PORT", 8002), "CHATSHARE_PUBLISHER_PORT"),
    )  # fmt: skip


def process_for(spec: ServiceSpec, run_dir: Path, log_dir: Path) -> ManagedProcess:
    return ManagedProcess(spec.name, run_dir / f"{spec.name}.pid", log_dir / f"{spec.name}.log")


def start_service(
    spec: ServiceSpec, env: Mapping[str, str], run_dir: Path, log_dir: Path
) -> ManagedProcess:
    """Start one service unless it already runs; does not wait (see `wait_ready`)."""
    process = process_for(spec, run_dir, log_dir)
    if process.alive():
        return process
    require_free(spec.port, spec.name, spec.port_variable)
    command = [
        sys.executable, "-m", "uvicorn", spec.factory, "--factory",
        "--host", "127.0.0.1", "--port", str(spec.port),
        "--no-access-log", "--timeout-graceful-shutdown", "10",
    ]  # fmt: skip
    process.spawn(command, env={**os.environ, **env})
    return process


def readiness(spec: ServiceSpec) -> tuple[bool, str]:
    path = "/healthz" if spec.name == "community_standin" else "/readyz"
    try:
        with urllib.request.urlopen(spec.url + path, timeout=2) as answer:
            return answer.status == 200, answer.read().decode()
    except urllib.error.HTTPError as error:
        return False, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as error:
        return False, str(error)


def wait_ready(spec: ServiceSpec, process: ManagedProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not process.alive():
            log = process.log_file.read_text(errors="replace") if process.log_file.exists() else ""
            raise StackError(
                f"{spec.name} exited while starting; the end of {process.log_file}:\n{tail(log, 20)}"
            )
        if is_listening(spec.port):
            ready, last = readiness(spec)
            if ready:
                return
        time.sleep(0.3)
    raise StackError(
        f"{spec.name} did not become ready within {timeout:.0f} s; /readyz said: "
        f"{_short(last)} (log: {process.log_file})"
    )


def _short(body: str) -> str:
    try:
        checks = json.loads(body).get("checks", {})
    except (ValueError, AttributeError):
        return body[:300]
    return ", ".join(f"{name}: {state}" for name, state in checks.items() if state != "ok")
