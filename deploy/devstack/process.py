"""Background processes that outlive `make up`: started in their own session, found again by a
pid file, stopped by `make down` even after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


def tail(text: str, lines: int) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def stat_fields(pid: int) -> list[str] | None:
    """The fields of `/proc/<pid>/stat` after the command name, which may hold spaces (so the
    text is split after its closing bracket): state is [0], ppid [1], session [3], utime [11],
    stime [12], cutime [13], cstime [14], start time [19]. None once the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`: tells our process from a later one with the same pid."""
    fields = stat_fields(pid)
    return None if fields is None else fields[19]


@dataclass(frozen=True)
class ManagedProcess:
    name: str
    pid_file: Path
    log_file: Path

    def pid(self) -> int | None:
        try:
            pid_text, started = self.pid_file.read_text().split()
        except (OSError, ValueError):
            return None
        pid = int(pid_text)
        return pid if _start_time(pid) == started else None

    def alive(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        fields = stat_fields(pid)
        return fields is not None and fields[0] != "Z"

    def spawn(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None = None,
        user: int | None = None,
    ) -> int:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            child = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=cwd,
                start_new_session=True,  # survives `make up`; stopped as a group by `make down`
                user=user,
            )
        self.pid_file.write_text(f"{child.pid} {_start_time(child.pid)}\n")
        return child.pid

    def signal(self, signum: int) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.killpg(pid, signum)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL what is left after `grace` seconds."""
        if not self.signal(signal.SIGTERM):
            self.pid_file.unlink(missing_ok=True)
            return False
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.alive():
            self.signal(signal.SIGKILL)
            while self.alive():
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing gets to clean up."""
        self.signal(signal.SIGKILL)
        while self.alive():
            time.sleep(0.05)
