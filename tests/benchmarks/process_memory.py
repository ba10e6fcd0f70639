"""Peak resident memory of the processes a benchmark starts: the kernel's high-water mark
(`VmHWM` in /proc/<pid>/status), read just before the process is stopped, for the process and
every process of its session — the workers a uvicorn may fork (`ManagedProcess` starts each in
a session of its own)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devstack.process import ManagedProcess, stat_fields

PROC = Path("/proc")


@dataclass(frozen=True)
class PeakMemory:
    benchmark: str
    process: str
    peak_bytes: int  # the sum of each process's own peak: an upper bound of the tree's peak
    processes: int  # 0: it was not running any more when measured


def peak_resident_bytes(pid: int) -> int | None:
    """The process's peak resident set, or None when it is gone (or a zombie: no memory left)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", f"unexpected unit in {line!r}"
            return int(value) * 1024
    return None


def session_members(leader: int) -> list[int]:
    """The leader and every live process of its session."""
    members = [leader]
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader:
            continue
        fields = stat_fields(int(entry.name))  # None: ended while we looked
        if fields is not None and int(fields[3]) == leader:
            members.append(int(entry.name))
    return members


def measure(benchmark: str, process: ManagedProcess) -> PeakMemory:
    """The peak of the process and its session so far."""
    pid = process.pid()
    members = session_members(pid) if pid is not None else []
    peaks = [peak for member in members if (peak := peak_resident_bytes(member))]
    return PeakMemory(benchmark, process.name, sum(peaks), len(peaks))


def stop_measured(
    process: ManagedProcess, benchmark: str, record: Callable[[PeakMemory], None]
) -> None:
    """Read the peak just before stopping: a stopped process has no memory left to read."""
    record(measure(benchmark, process))
    process.stop()
