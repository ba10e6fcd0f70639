"""`make bench` writes the peak resident memory of every process a benchmark starts: measured on
a real process that forks, then written as BENCHMARKS.md's table."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

from devstack.process import ManagedProcess
from tests.benchmarks.process_memory import PeakMemory, stop_measured
from tests.benchmarks.report import Report

MIB = 2**20

# A parent holding 64 MiB that forks a child holding 32 MiB more, as a uvicorn with workers
# would; each says when its memory is touched.
FORKING = textwrap.dedent("""
    import os, sys, time
    ready = sys.argv[1]
    held = b"p" * (64 * 2**20)
    if os.fork() == 0:
        also = b"c" * (32 * 2**20)
        open(ready + ".child", "w").close()
    else:
        open(ready + ".parent", "w").close()
    time.sleep(60)
""")


def test_a_forking_process_s_peak_counts_its_children_and_is_written_as_a_table(
    tmp_path: Path,
) -> None:
    process = ManagedProcess("forking_service", tmp_path / "p.pid", tmp_path / "p.log")
    ready = tmp_path / "ready"
    process.spawn([sys.executable, "-c", FORKING, str(ready)], env={})
    deadline = time.monotonic() + 20
    while not all(Path(f"{ready}.{who}").exists() for who in ("parent", "child")):
        assert time.monotonic() < deadline, (tmp_path / "p.log").read_text()
        time.sleep(0.05)
    report = Report()
    stop_measured(process, "fork test", report.add_memory)
    assert not process.alive()

    (peak,) = report.memory
    assert (peak.benchmark, peak.process, peak.processes) == ("fork test", "forking_service", 2)
    assert 96 * MIB <= peak.peak_bytes < 400 * MIB
    report.add_memory(PeakMemory("fork test", "gone_service", 0, 0))
    report.write(tmp_path / "BENCHMARKS.md")
    written = (tmp_path / "BENCHMARKS.md").read_text()
    assert "## Peak memory of each service process" in written
    assert f"| fork test | forking_service | {peak.peak_bytes / MIB:,.1f} MiB | 2 |" in written
    assert "| fork test | gone_service | — (not running when measured) | 0 |" in written
