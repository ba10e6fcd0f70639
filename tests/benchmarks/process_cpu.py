"""Where a benchmark's CPU went: the CPU time of each part of the system (a service, the Kafka
broker, PostgreSQL) over the measured stretch, read from /proc, to divide by the work done.

A part is a process and its descendants; a child that ended in the stretch (a PostgreSQL backend
whose connection closed) still counts, as the kernel adds a reaped child's time to its parent's
(`cutime`/`cstime`): the difference of two readings is the part's CPU in between either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.process import stat_fields

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (fields := stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of `root` and every live descendant, with the ones they have reaped."""
    children = _children()
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        fields = stat_fields(pid)
        if fields is not None:
            total += sum(int(value) for value in fields[11:15])  # u, s, cu, cs time
            pending += children.get(pid, [])
    return total / TICKS


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds per part at one moment; `per_unit` compares two moments."""

    seconds: Mapping[str, float]

    @classmethod
    def now(cls, parts: Mapping[str, Callable[[], int | None]]) -> CpuSplit:
        """`parts`: a name and how to find the part's root pid (None: not running, counts 0)."""
        return cls({
            name: 0.0 if (pid := root()) is None else tree_cpu_seconds(pid)
            for name, root in parts.items()
        })  # fmt: skip

    def per_unit_ms(self, start: CpuSplit, units: int) -> dict[str, float]:
        """Milliseconds of CPU each part spent per unit of work (a command, a request)."""
        return {
            name: (self.seconds[name] - start.seconds.get(name, 0.0)) * 1000 / max(units, 1)
            for name in self.seconds
        }


def postmaster_pid(data_dir: Path) -> int | None:
    """PostgreSQL's postmaster, from the first line of its `postmaster.pid`."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def describe(split: Mapping[str, float]) -> str:
    """`API 0.53 ms, Kafka 0.30 ms, …; 1.64 ms in all`."""
    parts = ", ".join(f"{name} {ms:.2f}" for name, ms in split.items())
    return f"{parts} (ms); {sum(split.values()):.2f} ms in all"
