"""HTTP load from a second process: wrk (Debian's package) with a Lua script, and its report.

wrk, not a Python client, so the load generator does not steal the service's interpreter time;
both a benchmark and its baseline get the same wrk, connections and duration.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

REQUEST_SCRIPT = """
local paths = {%(paths)s}
local headers = {["Authorization"] = "Bearer %(token)s", ["Content-Type"] = "application/json"}
local body = %(body)s
local i = 0
request = function()
  i = i + 1
  return wrk.format("%(method)s", paths[(i %% #paths) + 1], headers, body)
end
done = function(summary, latency, requests)
  io.write(string.format("CHATSHARE requests=%%d errors_status=%%d p50_us=%%d p99_us=%%d\\n",
    summary.requests, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    non_2xx: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds


def require_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("make bench needs wrk (Debian's package): apt-get install wrk")
    return wrk


def run_wrk(
    base_url: str, paths: list[str], token: str, *, method: str = "GET", body: str | None = None,
    connections: int = 16, seconds: int = 10, threads: int = 2,
) -> LoadResult:  # fmt: skip
    lua_paths = ", ".join(f'"{path}"' for path in paths)
    lua_body = "nil" if body is None else f"[[{body}]]"
    script = REQUEST_SCRIPT % {
        "paths": lua_paths,
        "token": token,
        "body": lua_body,
        "method": method,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        require_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "-s",
        handle.name,
        base_url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    Path(handle.name).unlink()
    found = re.search(
        r"CHATSHARE requests=(\d+) errors_status=(\d+) p50_us=(\d+) p99_us=(\d+)", output
    )
    if found is None:
        raise RuntimeError(f"wrk said:\n{output}")
    requests, errors, p50, p99 = (int(group) for group in found.groups())
    elapsed = re.search(r"requests in ([\d.]+)(m?s)", output)
    duration = (
        float(elapsed.group(1)) / (1000 if elapsed and elapsed.group(2) == "ms" else 1)
        if elapsed
        else seconds
    )
    return LoadResult(requests, errors, duration, p50 / 1000, p99 / 1000)
