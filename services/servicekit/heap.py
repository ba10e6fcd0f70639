"""The garbage collector, tuned for a long-running service.

CPython's cycle collector runs a young collection every 700 net allocations and now and then a
full one, which walks every tracked object: the imported libraries (FastAPI, pydantic,
faststream, OpenTelemetry…) and, in share_service, the cached aggregates with their snapshots.
Measured on the command benchmark (API and workers in two processes, 16 connections): full
collections paused a process for up to 300 ms, 1 s of a 20 s run, and set the p99; young
collections ran about 40 times a second.

So, for every service process:
- `tune()` at start: young collections every 20,000 allocations (the service's garbage is
  short-lived request data, freed by reference counting; cycles are rare and small).
- `settle()` once started: collect, then freeze what survived start-up (modules, routes,
  schemas, pools) out of every later collection — it lives as long as the process.

Same run after both: the API's CPU per command 2.64 → 2.16 ms, the workers' 1.57 → 1.31 ms, p99
292 → 134 ms.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_EVERY = 20_000  # net allocations (CPython's default: 700)
MIDDLE_EVERY = 20  # young collections per middle one (default 10)
FULL_EVERY = 10  # middle collections per full one, at most (default 10)


def tune() -> None:
    gc.set_threshold(YOUNG_COLLECTION_EVERY, MIDDLE_EVERY, FULL_EVERY)


def settle() -> None:
    gc.collect()
    gc.freeze()
