"""The publisher's own record of each community-share request: what became of it. Recorded
before the request's Kafka offset is committed, so a redelivered request finds its outcome and
is not uploaded again. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate


@dataclass(frozen=True)
class Publication:
    community_id: str
    community_url: str


@dataclass(frozen=True)
class Rejection:
    reason: str


@dataclass(frozen=True)
class Failure:
    reason: str


Outcome = Publication | Rejection | Failure

MAX_REASON_CHARS = 2000  # what `community.events` carries (contracts/community_events.py)


class OutcomeAlreadyRecorded(Exception):
    """A request has one outcome; a second decision about it is a bug or a race lost."""


def upload_id_for(request_id: str) -> UUID:
    """The aggregate's id, derived from the request: two members deciding the same request
    collide on it (the store's optimistic concurrency), instead of recording two outcomes."""
    return uuid5(NAMESPACE_URL, f"chatshare:community-upload:{request_id}")


class CommunityUpload(Aggregate):
    """One request's fate on the community site: published, rejected or failed — once."""

    @staticmethod
    def create_id(request_id: str) -> UUID:
        return upload_id_for(request_id)

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.outcome: Outcome | None = None

    # Stored events name their class by module and qualified name: renaming or moving one needs
    # a registered topic or an upcaster, or the stored history no longer loads.
    class Event(Aggregate.Event):
        pass

    class Received(Aggregate.Created, Event):
        request_id: str

    class Published(Event):
        request_id: str
        community_id: str
        community_url: str

        def apply(self, aggregate: Any) -> None:
            aggregate.outcome = Publication(self.community_id, self.community_url)

    class Rejected(Event):
        request_id: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.outcome = Rejection(self.reason)

    class Failed(Event):
        request_id: str
        reason: str

        def apply(self, aggregate: Any) -> None:
            aggregate.outcome = Failure(self.reason)

    def decide(self, outcome: Outcome) -> None:
        if self.outcome is not None:
            raise OutcomeAlreadyRecorded(f"request {self.request_id} is already {self.outcome}")
        if isinstance(outcome, Publication):
            self.trigger_event(
                self.Published,
                request_id=self.request_id,
                community_id=outcome.community_id,
                community_url=outcome.community_url,
            )
        elif isinstance(outcome, Rejection):
            self.trigger_event(
                self.Rejected, request_id=self.request_id, reason=_fit(outcome.reason)
            )
        else:
            self.trigger_event(self.Failed, request_id=self.request_id, reason=_fit(outcome.reason))


def _fit(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
