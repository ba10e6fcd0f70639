"""How busy the machine's CPUs were over a stretch of a benchmark (`/proc/stat`, all cores): a
latency measured on a saturated machine is queueing as much as work, and the report says so."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

STAT = Path("/proc/stat")


@dataclass(frozen=True)
class CpuTimes:
    total: int  # clock ticks of every kind, all cores
    idle: int  # of which idle or waiting for I/O

    @classmethod
    def now(cls) -> CpuTimes:
        fields = [int(value) for value in STAT.read_text().split("\n", 1)[0].split()[1:]]
        return cls(total=sum(fields), idle=fields[3] + fields[4])

    def busy_since(self, start: CpuTimes) -> float:
        """The share of the CPUs' time between `start` and this reading spent working."""
        total = self.total - start.total
        return 0.0 if total <= 0 else 1 - (self.idle - start.idle) / total
