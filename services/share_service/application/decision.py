"""A command's decision: the aggregates it changed in memory and its answer once they are
saved. Deciding stores nothing, so several decisions can be saved in one `save` (group commit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from eventsourcing.domain import Aggregate

T = TypeVar("T")


class StaleRead(Exception):
    """A decision read aggregates as of different moments (a chat's live link, then the link
    already deleted by someone else): decide again from a fresh load."""


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What one command decided: the aggregates holding its new events, and its answer once
    they are saved. Deciding changes nothing stored; only saving does."""

    result: T
    aggregates: tuple[Aggregate, ...] = ()

    @classmethod
    def of(cls, result: T, *aggregates: Aggregate) -> Decision[T]:
        """Keeps only the aggregates that have something to save."""
        return cls(result, tuple(a for a in aggregates if a.pending_events))
