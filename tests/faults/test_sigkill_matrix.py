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

from tests.faults.fault_harness import FaultStack
from tests.faults.version_watch import watching_versions

Progress = Callable[[FaultStack], Awaitable[int]]  # an unbound FaultStack method


# Each part: what shows the stream flowing through it, and how far that must move before the
# kill and again after the restart.
PARTS: dict[str, tuple[Progress, int]] = {
    # takes the commands
    "share_api": (FaultStack.links_acknowledged, 15),
    # publishes them from the event store to share.events
    "share_relay": (FaultStack.links_acknowledged, 15),
    # applies share.events and community.events to the view store
    "share_projection": (FaultStack.links_acknowledged, 15),
    # applies chat.events; kills the links of deleted chats
    "chat_mirror": (FaultStack.chat_events_sent, 15),
    # the admin's API and its relay to settings.events
    "settings_service": (FaultStack.policy_changes_acknowledged, 5),
    # uploads the community requests, relays their outcomes to community.events
    "community_publisher": (FaultStack.accepted_uploads, 4),
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
