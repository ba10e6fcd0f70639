"""`chatshare replay share-views`: the share view store rebuilt from share_service's event store
(the truth) into a shadow table, compared with the live table, and swapped in.

Pages of notifications are read in order in a worker thread while the previous page is written,
each mapped to its contract event (`to_contract`, as the relay publishes it) and applied with
the projection's own code (`apply_link_events`), so the same events make the same rows. The swap
applies whatever was stored meanwhile with the live table locked; events stored after the swap
reach the new table through the running projection, whose version-checked writes make the
overlap harmless.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import asyncpg

from chatshare_cli.errors import OperationFailed, ReplayRunning
from chatshare_cli.shadow_views import Difference, ShadowViews
from chatshare_cli.stored_share_events import Page, StoredShareEvents
from share_service.entrypoints.share_projection import apply_link_events

REPLAY_LOCK = "chatshare:replay:share-views"
# Pages are counted in notifications but sized in bytes: two are in memory at once (one read,
# one written), and snapshots run from a few hundred bytes to CHATSHARE_MAX_SNAPSHOT_BYTES.
PAGE_BYTES = 16 * 2**20
SMALLEST_PAGE = 50

OnPage = Callable[[int, int], None]  # (notifications read so far, last notification id read)


@dataclass
class ReplayOutcome:
    views: int = 0  # rows of the rebuilt table
    changed: int = 0  # rows that differed from the live table before the swap
    events: int = 0  # notifications read from the event store
    link_events: int = 0  # of which links' events, applied
    seconds: float = 0.0
    swapped: bool = False
    differences: list[Difference] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        return {
            "views": self.views, "changed": self.changed, "events": self.events,
            "link_events": self.link_events, "seconds": round(self.seconds, 3),
            "swapped": self.swapped,
        }  # fmt: skip


class ShareViewReplay:
    def __init__(
        self,
        events: StoredShareEvents,
        shadow: ShadowViews,
        page_size: int,
        on_page: OnPage | None = None,
    ) -> None:
        self.events = events
        self.shadow = shadow
        self.page_size = self.largest_page = page_size
        self.on_page = on_page or (lambda read, position: None)
        self.position = 0
        self.outcome = ReplayOutcome()

    async def run(self, *, dry_run: bool, show: int, allow_empty: bool = False) -> ReplayOutcome:
        started = time.perf_counter()
        async with replay_lock(self.shadow.pool):
            await self.shadow.create()
            try:
                await self.replay()
                await self.shadow.analyze()
                self.outcome.changed, self.outcome.differences = await self.shadow.compare(show)
                self.outcome.views = await self.shadow.rows(self.shadow.shadow)
                if not dry_run:
                    await self._refuse_to_empty(allow_empty)
                    await self.shadow.swap(self._last_events_and_count)
                    self.outcome.swapped = True
            finally:
                await self.shadow.drop()  # after a swap there is none left to drop
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    async def _refuse_to_empty(self, allow_empty: bool) -> None:
        """An event store with no link at all beside a store full of views is far more likely
        the wrong database than the truth: no swap unless asked for."""
        if self.outcome.views or allow_empty:
            return
        live = await self.shadow.rows(self.shadow.live)
        if live:
            raise OperationFailed(
                f"the event store rebuilds no view, and the live store has {live:,}: not "
                "swapped (is CHATSHARE_DATABASE_URL right? --allow-empty swaps all the same)"
            )

    async def replay(self, connection: asyncpg.Connection | None = None) -> None:
        """Every notification after `position`, page by page: the next page is read (in a
        thread) while this one is written."""

        def read(after: int) -> asyncio.Future[Page]:
            return asyncio.ensure_future(
                asyncio.to_thread(self.events.read_after, after, self.page_size)
            )

        pending = read(self.position)
        try:
            while (page := await pending).notifications:
                self._size_pages(page)
                pending = read(page.position)
                await self._apply(page, connection)
        finally:
            pending.cancel()

    def _size_pages(self, page: Page) -> None:
        """The next page as large as PAGE_BYTES of events like these, within the page size asked
        for."""
        fitting = page.notifications * PAGE_BYTES // max(page.stored_bytes, 1)
        self.page_size = max(SMALLEST_PAGE, min(self.largest_page, fitting))

    async def _apply(self, page: Page, connection: asyncpg.Connection | None) -> None:
        if connection is None:
            async with self.shadow.pool.acquire() as acquired, acquired.transaction():
                await apply_link_events(acquired, self.shadow.shadow, page.links)
        else:
            await apply_link_events(connection, self.shadow.shadow, page.links)
        self.position = page.position
        self.outcome.events += page.notifications
        self.outcome.link_events += len(page.links)
        self.on_page(self.outcome.events, self.position)

    async def _last_events_and_count(self, connection: asyncpg.Connection) -> None:
        """Inside the swap, the live table locked: what was stored since the last page. If the
        swap's transaction fails, its pages are undone with it: read them again next time."""
        before = (self.position, self.outcome.events, self.outcome.link_events)
        try:
            await self.replay(connection)
            self.outcome.views = int(
                await connection.fetchval(f"SELECT count(*) FROM {self.shadow.shadow.table}")
            )
        except BaseException:
            self.position, self.outcome.events, self.outcome.link_events = before
            raise


@asynccontextmanager
async def replay_lock(pool: asyncpg.Pool) -> AsyncIterator[None]:
    """One replay of the share views at a time (they share the shadow table)."""
    async with pool.acquire() as connection:
        if not await connection.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", REPLAY_LOCK):
            raise ReplayRunning("another `chatshare replay share-views` is running")
        try:
            yield
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext($1))", REPLAY_LOCK)
