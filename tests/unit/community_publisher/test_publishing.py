"""The publisher's use case on an in-memory store, with the policy and the site acted out: it
sends only while sharing is on, retries what may heal, records one outcome per request, and a
redelivered request sends nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from community_publisher.adapters.community_events import to_outbox_message
from community_publisher.application.metrics import PublisherMetrics
from community_publisher.application.publishing import (
    SHARING_DISABLED,
    CommunityPublisher,
    PolicyNotReached,
)
from community_publisher.application.upload_records import UploadRecords
from community_publisher.domain.community_upload import Failure, Publication, Rejection
from community_publisher.domain.upload_attempts import (
    Accepted,
    AttemptResult,
    Backoff,
    Refused,
    TryAgain,
)
from community_publisher.domain.upload_request import UploadRequest
from servicekit.event_store import in_memory_env
from servicekit.faults import is_transient
from servicekit.policy import Policy, PolicyUnknown
from tests.community_requests import branched_snapshot

ON = Policy(community_sharing_enabled=True, policy_version=1)
OFF = Policy(community_sharing_enabled=False, policy_version=2)


@dataclass
class ActedPolicy:
    """The view's answers: `seen` for the version wait, then one per `caught_up`."""

    seen: Policy = ON
    caught_up_answers: list[Policy] = field(default_factory=list)

    async def wait_for_version(self, version: int, within: float) -> Policy:
        if self.seen.policy_version < version:
            raise PolicyUnknown(f"policy version {version} not seen within {within} s")
        return self.seen

    async def caught_up(self, within: float) -> Policy:
        return self.caught_up_answers.pop(0) if self.caught_up_answers else self.seen


@dataclass
class ActedSite:
    answers: list[AttemptResult] = field(default_factory=list)
    uploads: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    async def upload(self, request_id: str, body: Mapping[str, Any]) -> AttemptResult:
        self.uploads.append((request_id, body))
        return self.answers.pop(0) if self.answers else Accepted("c-1", "https://c/c-1")


@dataclass
class World:
    publisher: CommunityPublisher
    policy: ActedPolicy
    site: ActedSite
    records: UploadRecords
    waits: list[float]
    registry: CollectorRegistry

    def metric(self, name: str) -> float:
        return self.registry.get_sample_value(name) or 0.0


@pytest.fixture
def world() -> Iterator[World]:
    records = UploadRecords(env=in_memory_env())
    policy, site, waits, registry = ActedPolicy(), ActedSite(), [], CollectorRegistry()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    publisher = CommunityPublisher(
        records=records, policy=policy, site=site,
        backoff=Backoff(max_attempts=3, first_delay=0.5, max_delay=10.0),
        metrics=PublisherMetrics(registry), instance_id="instance-1",
        policy_wait_seconds=0.1, sleep=sleep, draw=lambda: 1.0,
    )  # fmt: skip
    yield World(publisher, policy, site, records, waits, registry)
    records.close()


def request(access: str = "public", policy_version: int = 1) -> UploadRequest:
    snapshot = branched_snapshot().model_dump(mode="json")
    return UploadRequest("req-1", "chat-1", "alice", access, policy_version, snapshot)  # type: ignore[arg-type]


def published_events(records: UploadRecords) -> list[Any]:
    notifications = records.recorder.select_notifications(start=None, limit=100)
    messages = [to_outbox_message(records.mapper.to_domain_event(n)) for n in notifications]
    return [m for m in messages if m is not None]


async def test_an_allowed_request_is_uploaded_once_and_published(world: World) -> None:
    outcome = await world.publisher.publish(request())
    assert outcome == Publication("c-1", "https://c/c-1")
    ((request_id, body),) = world.site.uploads
    assert request_id == "req-1"
    assert body["source"] == {
        "instance_id": "instance-1",
        "request_id": "req-1",
        "owner_id": "alice",
    }
    assert world.records.outcome_of("req-1") == outcome
    (message,) = published_events(world.records)
    assert (message.topic, message.key) == ("community.events", "req-1")
    assert world.metric("community_uploads_sent_total") == 1
    assert world.metric("community_uploads_published_total") == 1
    assert world.metric("community_upload_duration_seconds_count") == 1


async def test_a_redelivered_request_sends_nothing(world: World) -> None:
    first = await world.publisher.publish(request())
    again = await world.publisher.publish(request())
    assert again == first
    assert len(world.site.uploads) == 1
    assert len(published_events(world.records)) == 1
    assert world.metric("community_requests_repeated_total") == 1


async def test_sharing_off_when_sent_rejects_and_sends_nothing(world: World) -> None:
    world.policy.caught_up_answers = [OFF]  # on when asked (version 1), off by the time of sending
    outcome = await world.publisher.publish(request(policy_version=1))
    assert outcome == Rejection(SHARING_DISABLED)
    assert world.site.uploads == []
    assert world.metric("community_uploads_rejected_total") == 1


async def test_a_view_behind_the_request_is_transient_not_a_rejection(world: World) -> None:
    with pytest.raises(PolicyNotReached) as raised:
        await world.publisher.publish(request(policy_version=5))
    assert is_transient(raised.value)  # the consumer group waits and retries: no dead letter
    assert world.records.outcome_of("req-1") is None
    assert world.site.uploads == []


async def test_faults_that_may_heal_are_retried_with_growing_waits(world: World) -> None:
    world.site.answers = [TryAgain("answered 503"), TryAgain("answered 503")]
    outcome = await world.publisher.publish(request())
    assert outcome == Publication("c-1", "https://c/c-1")
    assert len(world.site.uploads) == 3
    assert {key for key, _ in world.site.uploads} == {"req-1"}  # one idempotency key
    assert world.waits == [0.5, 1.0]
    assert world.metric("community_uploads_retried_total") == 2


async def test_after_the_last_attempt_the_request_failed_and_says_why(world: World) -> None:
    world.site.answers = [TryAgain("the community site answered 503")] * 3
    outcome = await world.publisher.publish(request())
    assert outcome == Failure("gave up after 3 attempt(s): the community site answered 503")
    assert len(world.site.uploads) == 3
    assert world.metric("community_uploads_failed_total") == 1
    (message,) = published_events(world.records)
    assert b'"type":"CommunityShareFailed"' in message.value


async def test_a_refusal_is_not_retried(world: World) -> None:
    world.site.answers = [Refused("the community site answered 422")]
    outcome = await world.publisher.publish(request())
    assert outcome == Failure("the community site answered 422")
    assert len(world.site.uploads) == 1
    assert world.waits == []


async def test_sharing_turned_off_between_retries_stops_them(world: World) -> None:
    world.site.answers = [TryAgain("answered 503")]
    world.policy.caught_up_answers = [ON, OFF]
    outcome = await world.publisher.publish(request())
    assert outcome == Rejection(SHARING_DISABLED)
    assert len(world.site.uploads) == 1


async def test_a_second_member_deciding_the_same_request_keeps_the_first_outcome(
    world: World,
) -> None:
    first = world.records.record("req-1", Publication("c-1", "https://c/c-1"))
    assert world.records.record("req-1", Failure("late")) == first
    assert len(published_events(world.records)) == 1


def test_outcome_events_have_stable_ids(world: World) -> None:
    world.records.record("req-1", Rejection(SHARING_DISABLED))
    first, again = published_events(world.records), published_events(world.records)
    assert [m.event_id for m in first] == [m.event_id for m in again]
    assert b'"reason":"community sharing is disabled"' in first[0].value
