"""Each consumer group's handler, built from its service's code for `chatshare dlq redrive`: the
group's decoder, then the batch handler its consumer runs, given one record.

Only the group named is handed the record: nothing is published to its source topic, so the
other groups of that topic never see it again. Every handler is idempotent and version-checked,
as the group's own, so a redrive beside the running group is safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
import pydantic
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry

from chatshare_cli.errors import UsageError
from chatshare_cli.redrive import Handler
from community_publisher import bootstrap as publisher_service
from community_publisher.adapters.community_site import open_community_site
from community_publisher.application.metrics import PublisherMetrics
from community_publisher.config import CommunityPublisherSettings
from community_publisher.entrypoints.share_requests import ShareRequests, decode_share_request
from contracts.topics import (
    CHAT_MIRROR_GROUP,
    COMMUNITY_PUBLISHER_GROUP,
    COMMUNITY_PUBLISHER_POLICY_GROUP,
    SHARE_PROJECTION_GROUP,
    SHARE_SERVICE_POLICY_GROUP,
)
from servicekit.consumer import Delivery
from servicekit.policy import PolicyView, decode_settings_event
from share_service import bootstrap as share_service
from share_service.adapters.chat_mirror_store import ChatMirrorStore
from share_service.adapters.community_request_store import CommunityRequestStore
from share_service.adapters.view_store import LinkRow, ShareViewStore
from share_service.config import ShareServiceSettings
from share_service.entrypoints.chat_mirror import ChatMirror, decode_chat_event
from share_service.entrypoints.share_projection import ProjectionDecoder, apply_share_events

HandlerFactory = Callable[
    [ShareServiceSettings, asyncpg.Pool], AbstractAsyncContextManager[Handler]
]
SHARE_SCHEMA = share_service.EVENT_STORE_SCHEMA
PUBLISHER_SCHEMA = publisher_service.EVENT_STORE_SCHEMA


@asynccontextmanager
async def share_projection_handler(
    settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """The projection's writes, without its progress rows (its Kafka position is its own)."""
    decode = ProjectionDecoder(settings)
    views = ShareViewStore(pool, SHARE_SCHEMA)
    requests = CommunityRequestStore(pool, SHARE_SCHEMA)

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        event = decode(record)
        async with pool.acquire() as connection, connection.transaction():
            await apply_share_events(connection, views, requests, [event])

    yield handle


@asynccontextmanager
async def chat_mirror_handler(
    settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """ChatMirror's handler; a redriven `ChatDeleted` kills the chat's live link as the service
    does (the command in share_service's application, then the view's tombstone)."""
    views = ShareViewStore(pool, SHARE_SCHEMA)
    sharing = await asyncio.to_thread(share_service.open_sharing_application, settings)

    async def links_die_with_chat(chat_id: str) -> None:
        for link in await asyncio.to_thread(sharing.delete_links_of_chat, chat_id):
            row = LinkRow(link.share_id, link.chat_id, link.version, link.created_at,
                          link.updated_at)  # fmt: skip
            await views.put_tombstone(row, link.owner_id)

    mirror = ChatMirror(ChatMirrorStore(pool, SHARE_SCHEMA), links_die_with_chat,
                        CollectorRegistry())  # fmt: skip

    async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
        await mirror.apply([Delivery(decode_chat_event(record), record)])

    try:
        yield handle
    finally:
        await asyncio.to_thread(sharing.close)


@asynccontextmanager
async def community_publisher_handler(
    settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """The publisher with its own store of outcomes, its policy view and the community site, as
    the group runs it: a request decided before is not sent again; one not decided yet is sent
    only while the policy allows it. Its outcome reaches `community.events` through the running
    publisher's relay (which polls its store)."""
    publishing = _publisher_settings()
    records = await asyncio.to_thread(
        publisher_service.open_upload_records, publishing.database_dsn
    )
    policy = PolicyView(pool, PUBLISHER_SCHEMA, publishing)
    try:
        await policy.create_table()
        async with open_community_site(publishing) as site:
            metrics = PublisherMetrics(CollectorRegistry())
            publisher = publisher_service.new_publisher(
                publishing, records, policy, site, metrics, after_record=lambda: None
            )
            requests = ShareRequests(publisher, concurrency=1)

            async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
                await requests.handle([Delivery(decode_share_request(record), record)])

            yield handle
    finally:
        await policy.close()
        await asyncio.to_thread(records.close)


def policy_handler(schema: str) -> HandlerFactory:
    """A service's policy view (its own table in `schema`): an event older than the one that
    last set its switch changes nothing, one newer sets it."""

    @asynccontextmanager
    async def handler(settings: ShareServiceSettings, pool: asyncpg.Pool) -> AsyncIterator[Handler]:
        view = PolicyView(pool, schema, settings)
        await view.create_table()

        async def handle(record: ConsumerRecord[bytes, bytes]) -> None:
            await view.apply([Delivery(decode_settings_event(record), record)])

        yield handle

    return handler


HANDLERS: dict[str, HandlerFactory] = {
    SHARE_PROJECTION_GROUP: share_projection_handler,
    CHAT_MIRROR_GROUP: chat_mirror_handler,
    COMMUNITY_PUBLISHER_GROUP: community_publisher_handler,
    SHARE_SERVICE_POLICY_GROUP: policy_handler(SHARE_SCHEMA),
    COMMUNITY_PUBLISHER_POLICY_GROUP: policy_handler(PUBLISHER_SCHEMA),
}


@asynccontextmanager
async def group_handler(
    group: str, settings: ShareServiceSettings, pool: asyncpg.Pool
) -> AsyncIterator[Handler]:
    """The handler of `group` (one of HANDLERS), built from its service's code."""
    factory = HANDLERS.get(group)
    if factory is None:
        raise KeyError(f"no redrive for the group {group!r}")
    async with factory(settings, pool) as handle:
        yield handle


def _publisher_settings() -> CommunityPublisherSettings:
    """community_publisher's settings (where the community site is, …), from the same CHATSHARE_*
    variables as the CLI's."""
    try:
        return CommunityPublisherSettings()
    except pydantic.ValidationError as error:
        raise UsageError(f"the CHATSHARE_* settings are not valid: {error}") from error
