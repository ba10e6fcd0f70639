"""Each part of chatshare SIGKILLed while a steady stream of commands and events flows through
it, then started again (issue 8). After each: no acknowledged command lost, no event applied
twice, every view equal to a fresh replay (`FaultStack.assert_nothing_lost_nothing_doubled`).

Also proven elsewhere, closer up: share_service in one process killed mid-burst
(`tests/e2e/test_share_service_crash.py`), the bare outbox relay killed mid-transaction
(`tests/integration/servicekit/test_outbox_relay.py`), the publisher killed after the site took
an upload it never heard answered (`tests/integration/community_publisher/test_publisher_crashes.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.faults.consistency import watching_versions
from tests.faults.fault_harness import FaultStack

Progress = Callable[[FaultStack], Awaitable[int]]


async def links_acknowledged(faults: FaultStack) -> int:
    return len(faults.ledger.acknowledged)


async def chat_events_sent(faults: FaultStack) -> int:
    return faults.ledger.chat_events


async def policy_changes_acknowledged(faults: FaultStack) -> int:
    return len(faults.ledger.policy_versions)


async def uploads_accepted(faults: FaultStack) -> int:
    return await faults.accepted_uploads()


# The part, what shows the stream flowing through it, and how far it must move before the kill
# and again after the restart.
PARTS: dict[str, tuple[Progress, int]] = {
    "share_api": (links_acknowledged, 15),  # takes the commands
    "share_relay": (links_acknowledged, 15),  # publishes them to share.events
    "share_projection": (links_acknowledged, 15),  # applies share.events and community.events
    "chat_mirror": (chat_events_sent, 15),  # applies chat.events, kills links of deleted chats
    "settings_service": (policy_changes_acknowledged, 5),  # the admin's API and its relay
    "community_publisher": (uploads_accepted, 4),  # uploads requests, relays their outcomes
}


@pytest.mark.parametrize("part", PARTS)
async def test_a_part_killed_mid_stream_loses_nothing_and_applies_nothing_twice(
    faults: FaultStack, part: str
) -> None:
    progress, steps = PARTS[part]
    async with watching_versions(faults.pool) as watch:
        async with faults.traffic() as traffic:
            await traffic.until(lambda: progress(faults), steps)  # flowing through the part
            await faults.kill_and_restart(part)
            await traffic.until(lambda: progress(faults), steps)  # flowing through it again
        await faults.assert_nothing_lost_nothing_doubled(watch)
