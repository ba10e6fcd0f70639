"""The publisher's event store: one `CommunityUpload` per request, with its outcome. Its
notification log feeds `community.events` through the outbox relay.

Synchronous, like eventsourcing itself: the publisher calls it from worker threads.
"""

from __future__ import annotations

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from community_publisher.domain.community_upload import CommunityUpload, Outcome, upload_id_for
from servicekit.event_store import ServiceApplication


class UploadRecords(ServiceApplication):
    name = "community_uploads"  # tables: <schema>.community_uploads_events

    def outcome_of(self, request_id: str) -> Outcome | None:
        """What became of the request, or None while nothing was decided."""
        try:
            upload: CommunityUpload = self.repository.get(upload_id_for(request_id))
        except AggregateNotFoundError:
            return None
        return upload.outcome

    def record(self, request_id: str, outcome: Outcome) -> Outcome:
        """Store the request's outcome; the one already stored wins, and is returned."""
        upload = CommunityUpload(request_id)
        upload.decide(outcome)
        try:
            self.save(upload)
        except IntegrityError:
            # Another member (after a rebalance) decided the same request first: one outcome.
            recorded = self.outcome_of(request_id)
            if recorded is None:
                raise
            return recorded
        return outcome
