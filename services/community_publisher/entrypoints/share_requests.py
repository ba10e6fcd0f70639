"""The `community-publisher` consumer group: `CommunityShareRequested` from `share.events` into
the publisher. Other share events are none of its business (deleting a local link never touches
the community); a record that is not a share event at all goes to `dlq.community-publisher`.

The group commits a batch's offsets only after this handler returned, that is after every
request of the batch has its outcome recorded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import ConsumerRecord

import contracts
from community_publisher.application.publishing import CommunityPublisher
from community_publisher.config import CommunityPublisherSettings
from community_publisher.domain.upload_request import UploadRequest
from contracts.topics import COMMUNITY_PUBLISHER_GROUP, SHARE_EVENTS
from servicekit.consumer import Delivery, Unprocessable
from servicekit.faults import is_transient
from servicekit.message_context import MessageContext, using_context
from servicekit.runtime import ServiceRuntime


def decode_share_request(record: ConsumerRecord[bytes, bytes]) -> UploadRequest | None:
    """The community request in the record; None for any other share event."""
    try:
        event = contracts.decode_event(SHARE_EVENTS, record.value)
    except contracts.ContractViolation as error:
        raise Unprocessable(str(error)) from error
    if not isinstance(event, contracts.CommunityShareRequested):
        return None
    return UploadRequest(
        request_id=event.request_id,
        chat_id=event.chat_id,
        owner_id=event.owner_id,
        access=event.access,
        policy_version=event.policy_version,
        snapshot=event.snapshot.model_dump(mode="json"),
    )


class ShareRequests:
    """Publishes a batch's requests side by side (they are independent of one another)."""

    def __init__(self, publisher: CommunityPublisher, concurrency: int) -> None:
        self.publisher = publisher
        self.concurrency = concurrency

    async def handle(self, deliveries: Sequence[Delivery[UploadRequest | None]]) -> None:
        requests: dict[str, tuple[UploadRequest, MessageContext]] = {}  # one may come twice
        for delivery in deliveries:
            if delivery.event is not None:
                requests.setdefault(delivery.event.request_id, (delivery.event, delivery.context))
        limit = asyncio.Semaphore(self.concurrency)

        async def publish(request: UploadRequest, context: MessageContext) -> None:
            async with limit:
                with using_context(context):  # its logs and its outcome event carry the request's
                    await self.publisher.publish(request)

        # Every request runs to its end before an error is raised: no upload is left running
        # behind the group's retry, and the ones that finished are skipped when it comes.
        results = await asyncio.gather(
            *(publish(*request) for request in requests.values()), return_exceptions=True
        )
        raise_worst([result for result in results if isinstance(result, BaseException)])


def raise_worst(errors: Sequence[BaseException]) -> None:
    """Raise a lasting error before a transient one, so the group isolates and dead-letters the
    request that cannot succeed instead of retrying the whole batch forever."""
    if not errors:
        return
    lasting = [error for error in errors if not is_transient(error)]
    raise (lasting or list(errors))[0]


def follow_share_requests(
    runtime: ServiceRuntime, settings: CommunityPublisherSettings, requests: ShareRequests
) -> None:
    """Subscribe the community-publisher group; call before `broker.start()`."""
    # Small batches: uploads are slow, and a batch must finish within max.poll.interval.
    runtime.follow(
        COMMUNITY_PUBLISHER_GROUP, [SHARE_EVENTS], decode_share_request, requests.handle,
        max_records=settings.max_requests_per_batch,
    )  # fmt: skip
