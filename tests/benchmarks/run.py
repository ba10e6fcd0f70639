"""`make bench`: run every benchmark on a broker and database of its own; write BENCHMARKS.md."""

from __future__ import annotations

import logging

from tests.benchmarks import command_throughput, read_path, relay_throughput, replay_speed
from tests.benchmarks.infrastructure import ROOT, bench_infrastructure
from tests.benchmarks.report import Report

BENCHMARKS = (read_path, command_throughput, relay_throughput, replay_speed)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    report = Report()
    with bench_infrastructure() as infra:
        for benchmark in BENCHMARKS:
            name = benchmark.__name__.rsplit(".", 1)[-1]
            try:
                benchmark.run(infra, report)
            except (Exception, SystemExit) as error:  # an audit failure is a SystemExit
                # One benchmark failing must not throw away the others' figures: it is named
                # in BENCHMARKS.md, and make bench fails.
                logging.exception("benchmark %s failed", name)
                report.add_failure(name, error)
    report.write(ROOT / "BENCHMARKS.md")
    print(f"wrote {ROOT / 'BENCHMARKS.md'}")
    if report.failures:
        raise SystemExit(f"{len(report.failures)} benchmark(s) failed: see BENCHMARKS.md")


if __name__ == "__main__":
    main()
