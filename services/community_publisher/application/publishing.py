"""Publish one community-share request on the community site: only while the admin's policy
allows it — on when asked, still on when sent — and at most once per request.

The outcome is recorded in the publisher's own store before the caller lets Kafka move on, so a
redelivered request finds it and sends nothing; the Idempotency-Key covers the one gap left (an
upload the site took just before the publisher died, with nothing recorded yet).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from anyio import to_thread

from community_publisher.application.metrics import PublisherMetrics
from community_publisher.application.upload_records import UploadRecords
from community_publisher.domain.community_upload import Failure, Outcome, Publication, Rejection
from community_publisher.domain.upload_attempts import (
    Accepted,
    AttemptResult,
    Backoff,
    Refused,
)
from community_publisher.domain.upload_request import UploadRequest, upload_body
from servicekit.policy import Policy, PolicyUnknown

log = logging.getLogger(__name__)

SHARING_DISABLED = "community sharing is disabled"


class PolicyNotReached(TimeoutError):
    """The publisher's view of the policy is behind: a transient state (the consumer group waits
    and retries), never a reason to reject or dead-letter a request."""


class PolicyGate(Protocol):
    async def wait_for_version(self, version: int, within: float) -> Policy: ...

    async def caught_up(self, within: float) -> Policy: ...


class CommunitySite(Protocol):
    async def upload(self, request_id: str, body: Mapping[str, Any]) -> AttemptResult: ...


@dataclass
class CommunityPublisher:
    records: UploadRecords
    policy: PolicyGate
    site: CommunitySite
    backoff: Backoff
    metrics: PublisherMetrics
    instance_id: str
    policy_wait_seconds: float
    after_record: Callable[[], None] = lambda: None  # wakes the outbox relay
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    draw: Callable[[], float] = random.random

    async def publish(self, request: UploadRequest) -> Outcome:
        """The request's outcome, recorded; a request decided before is not sent again."""
        known = await to_thread.run_sync(self.records.outcome_of, request.request_id)
        if known is not None:
            self.metrics.repeats.inc()
            return known
        await self._reach_policy_version(request.policy_version)
        outcome = await self._upload_while_allowed(request)
        recorded = await to_thread.run_sync(self.records.record, request.request_id, outcome)
        self.after_record()
        self._count(request, recorded)
        return recorded

    async def _upload_while_allowed(self, request: UploadRequest) -> Outcome:
        body = upload_body(request, self.instance_id)
        attempts = 0
        while True:
            # Checked before every attempt, retries included: "still on when it is sent".
            if not await self._sharing_still_on():
                return Rejection(SHARING_DISABLED)
            attempts += 1
            result = await self._attempt(request.request_id, body)
            if isinstance(result, Accepted):
                return Publication(result.community_id, result.community_url)
            if isinstance(result, Refused):
                return Failure(result.reason)
            if not self.backoff.allows_another(attempts):
                return Failure(f"gave up after {attempts} attempt(s): {result.reason}")
            self.metrics.retried.inc()
            delay = self.backoff.delay(attempts, self.draw())
            log.info(
                "upload of %s failed (%s); attempt %d in %.2f s",
                request.request_id, result.reason, attempts + 1, delay,
            )  # fmt: skip
            await self.sleep(delay)

    async def _attempt(self, request_id: str, body: Mapping[str, Any]) -> AttemptResult:
        self.metrics.sent.inc()
        started = time.perf_counter()
        try:
            return await self.site.upload(request_id, body)
        finally:
            self.metrics.latency.observe(time.perf_counter() - started)

    async def _reach_policy_version(self, version: int) -> None:
        try:
            await self.policy.wait_for_version(version, self.policy_wait_seconds)
        except PolicyUnknown as error:
            raise PolicyNotReached(str(error)) from error

    async def _sharing_still_on(self) -> bool:
        try:
            policy = await self.policy.caught_up(self.policy_wait_seconds)
        except PolicyUnknown as error:
            raise PolicyNotReached(str(error)) from error
        return policy.community_sharing_enabled

    def _count(self, request: UploadRequest, outcome: Outcome) -> None:
        if isinstance(outcome, Publication):
            self.metrics.published.inc()
            log.info("request %s published as %s", request.request_id, outcome.community_url)
        elif isinstance(outcome, Rejection):
            self.metrics.rejected.inc()
            log.info("request %s rejected: %s", request.request_id, outcome.reason)
        else:
            self.metrics.failed.inc()
            log.warning("request %s failed: %s", request.request_id, outcome.reason)
