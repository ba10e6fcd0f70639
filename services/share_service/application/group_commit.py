"""Group commit: commands that arrive within a few milliseconds of each other are decided in one
worker-thread call and saved with one `save`, so one transaction (and one turn at the event
store's table lock, its write bottleneck) carries the whole batch.

Each command keeps its own answer and its own error: a command whose decision fails gets that
error alone; if the combined save fails, every command of the batch is run again on its own.

Commands name what they change with a key (`chat:<id>` for a chat's links): two commands with one
key never share a batch, nor run in two batches at once. The later one waits for the next batch,
so it decides from what the earlier one saved. Without keys, two shares of one chat in batches
saved side by side decided from the same cached link: the second batch's save failed on its
version, and its every command was run again alone, one transaction each — the 200-400 ms
tail of the command benchmark.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from servicekit.message_context import MessageContext, current_context
from servicekit.stored_context import stamp_pending_events
from share_service.application.decision import Decision, StaleRead
from share_service.application.sharing import SharingApplication

T = TypeVar("T")
Decide = Callable[[], Decision[Any]]
Waiting = tuple[Decide, "asyncio.Future[Any]", Hashable | None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A command's answer, or the exception it raised."""

    result: T | None = None
    error: Exception | None = None

    def unwrap(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.result)


@dataclass(frozen=True)
class Decided:
    """One command decided on its own: its decision, or that it read stale state, or its error."""

    decision: Decision[Any] | None = None
    stale: bool = False
    error: Exception | None = None


def decide_one(decide: Decide) -> Decided:
    """Blocking (a cache miss loads from the store): call it from a worker thread."""
    try:
        return Decided(decision=decide())
    except StaleRead:
        return Decided(stale=True)
    except Exception as error:  # this command's own answer, e.g. NotChatOwner
        return Decided(error=error)


def commit_together(app: SharingApplication, commands: Sequence[Decide]) -> list[Outcome[Any]]:
    """Decide every command against the store as it is, save all their aggregates in one
    `save`, and answer each in order. Blocking: call it from a worker thread."""
    return save_decided(app, commands, [decide_one(decide) for decide in commands])


def save_decided(
    app: SharingApplication, commands: Sequence[Decide], decided: Sequence[Decided]
) -> list[Outcome[Any]]:
    """Save the decided commands' aggregates in one `save` and answer each in order.

    A command touching an aggregate an earlier one of the batch already changed decided from a
    state about to be superseded: it runs on its own after the batch is saved.
    """
    outcomes: dict[int, Outcome[Any]] = {}
    batched: list[tuple[int, Decision[Any]]] = []
    alone: list[int] = []
    claimed: set[UUID] = set()
    for index, result in enumerate(decided):
        if result.error is not None:
            outcomes[index] = Outcome(error=result.error)
            continue
        if result.decision is None:
            alone.append(index)
            continue
        touched = {aggregate.id for aggregate in result.decision.aggregates}
        if touched & claimed:
            alone.append(index)
            continue
        claimed |= touched
        batched.append((index, result.decision))
    if _save_batch(app, [decision for _, decision in batched]):
        outcomes.update((index, Outcome(decision.result)) for index, decision in batched)
    else:
        alone.extend(index for index, _ in batched)
    for index in sorted(alone):
        outcomes[index] = _run_alone(app, commands[index])
    return [outcomes[index] for index in range(len(commands))]


def _save_batch(app: SharingApplication, decisions: list[Decision[Any]]) -> bool:
    aggregates = [aggregate for decision in decisions for aggregate in decision.aggregates]
    if not aggregates:
        return True
    try:
        app.save(*aggregates)
    except Exception:  # each command is run again alone, and meets its own error there
        app.forget(*aggregates)  # one of them was stale, perhaps: decide anew from the store
        log.warning("saving %d commands together failed; saving them one by one", len(decisions))
        return False
    return True


def _run_alone(app: SharingApplication, decide: Decide) -> Outcome[Any]:
    try:
        return Outcome(app.run(decide))
    except Exception as error:
        return Outcome(error=error)


def _in_context(decide: Callable[[], Decision[T]], context: MessageContext | None) -> Decide:
    """The batch is saved in another context than its commands': each command's events take
    the context of the request that asked for them."""

    def decide_and_stamp() -> Decision[T]:
        decision = decide()
        stamp_pending_events(decision.aggregates, context)
        return decision

    return decide_and_stamp


def chat_key(chat_id: str) -> str:
    """The key of a command on a chat's links (its live link and the per-chat record)."""
    return f"chat:{chat_id}"


def link_key(share_id: str) -> str:
    """The key of a command on one link known only by its id."""
    return f"link:{share_id}"


class GroupCommitter:
    """The asyncio side: `await committer.run(decide, key)` from request handlers. Commands
    arriving within `window_seconds` of the first of a batch (or until `max_batch` of them) go to
    one `commit_together` call in a worker thread; while `max_in_flight` batches are being saved,
    newcomers wait and form the next, larger batch. A command whose key is in a batch being saved
    (or already in the batch being formed) waits for the next one."""

    def __init__(
        self,
        app: SharingApplication,
        *,
        window_seconds: float = 0.002,
        max_batch: int = 64,
        max_in_flight: int = 2,
    ) -> None:
        self.app = app
        self.window_seconds = window_seconds
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self._waiting: list[Waiting] = []
        self._timer: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._keys_in_flight: set[Hashable] = set()

    async def run(self, decide: Callable[[], Decision[T]], key: Hashable | None = None) -> T:
        """Decide and save in a batch. `key` names what the command changes (None: nothing
        another command changes, like a new community request)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((_in_context(decide, current_context()), future, key))
        if len(self._waiting) >= self.max_batch:
            self._start_batch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.window_seconds, self._start_batch
            )
        return cast(T, await future)

    async def drain(self) -> None:
        """Wait until every command handed in so far is answered (for shutdown)."""
        while self._waiting or self._in_flight:
            self._start_batch()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight))

    def _start_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting or len(self._in_flight) >= self.max_in_flight:
            return  # a finishing batch starts the next one
        batch: list[Waiting] = []
        later: list[Waiting] = []
        keys: set[Hashable] = set()
        for waiting in self._waiting:
            key = waiting[2]
            if len(batch) < self.max_batch and (
                key is None or (key not in keys and key not in self._keys_in_flight)
            ):
                batch.append(waiting)
                if key is not None:
                    keys.add(key)
            else:
                later.append(waiting)
        self._waiting = later
        if not batch:
            return  # each waits on its key's batch in flight, which starts the next one
        self._keys_in_flight |= keys
        task = asyncio.get_running_loop().create_task(self._commit(batch))
        self._in_flight.add(task)
        task.add_done_callback(partial(self._batch_done, keys))

    def _batch_done(self, keys: set[Hashable], task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._keys_in_flight -= keys
        if self._waiting:
            self._start_batch()

    async def _commit(self, batch: list[Waiting]) -> None:
        commands = [decide for decide, _, _ in batch]
        try:
            # Decisions mostly read the aggregate cache, not the database: decide the batch and
            # save it in one trip to a worker thread.
            outcomes = await asyncio.to_thread(commit_together, self.app, commands)
        except asyncio.CancelledError:
            for _, future, _ in batch:
                future.cancel()
            raise
        except Exception as error:  # the worker itself failed: every waiter learns why
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future, _), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its request was cancelled
                continue
            if outcome.error is not None:
                future.set_exception(outcome.error)
            else:
                future.set_result(outcome.result)
