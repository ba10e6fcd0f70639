"""The `chatshare` console script as an operator runs it: a process of its own, configured only by
CHATSHARE_* variables, with what it printed and its exit code."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicekit.config import ServiceSettings

CHATSHARE = Path(sys.executable).parent / "chatshare"


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any]:
        """The last line, one JSON object."""
        last: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return last

    @property
    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


def environment(settings: ServiceSettings) -> dict[str, str]:
    return {
        **os.environ,
        "CHATSHARE_DATABASE_URL": settings.database_url,
        "CHATSHARE_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CHATSHARE_TOPIC_PREFIX": settings.topic_prefix,
        "COLUMNS": "200",  # rich's tables: room for a share_id
    }


async def start_cli(
    settings: ServiceSettings, *args: str, extra: Mapping[str, str] | None = None
) -> asyncio.subprocess.Process:
    """The script with the settings' CHATSHARE_* variables, and `extra` ones (another service's,
    such as CHATSHARE_COMMUNITY_URL)."""
    return await asyncio.create_subprocess_exec(
        str(CHATSHARE), *args, env={**environment(settings), **(extra or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def chatshare(
    settings: ServiceSettings,
    *args: str,
    within: float = 120,
    extra: Mapping[str, str] | None = None,
) -> Ran:
    process = await start_cli(settings, *args, extra=extra)
    async with asyncio.timeout(within):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, stdout.decode(), stderr.decode())
