"""Community-share requests' status for their requester (PostgreSQL, asyncpg): `pending` from
`CommunityShareRequested`, then the outcome community_publisher reports on `community.events`.

The two topics are read in no set order relative to each other, so an outcome may arrive before
its request: it is stored all the same (owner unknown), and the request then only fills in the
owner. Every write is idempotent; `published` is final, since a published chat cannot be withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import asyncpg

Status = Literal["pending", "published", "rejected", "failed"]


@dataclass(frozen=True)
class CommunityRequestStatus:
    request_id: str
    owner_id: str | None  # None until the request itself has been seen
    status: Status
    community_url: str | None
    reason: str | None


class CommunityRequestStore:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self.table = f'"{schema}".community_requests'

    async def create_table(self) -> None:
        async with self.pool.acquire() as connection:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await connection.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                " request_id text PRIMARY KEY, owner_id text, status text NOT NULL"
                " CHECK (status IN ('pending', 'published', 'rejected', 'failed')),"
                " community_url text, reason text, updated_at timestamptz NOT NULL DEFAULT now())"
            )

    async def requested(
        self, request_id: str, owner_id: str, connection: asyncpg.Connection | None = None
    ) -> None:
        """Pending, unless the request is known already. The command writes it at once, so the
        requester can ask right after the 202; the projection repeats it harmlessly."""
        await (connection or self.pool).execute(
            f"INSERT INTO {self.table} AS r (request_id, owner_id, status) VALUES ($1, $2, 'pending')"
            " ON CONFLICT (request_id) DO UPDATE SET owner_id = EXCLUDED.owner_id"
            " WHERE r.owner_id IS NULL",
            request_id,
            owner_id,
        )

    async def concluded(
        self,
        connection: asyncpg.Connection,
        request_id: str,
        status: Status,
        community_url: str | None = None,
        reason: str | None = None,
    ) -> None:
        """The upload's outcome; a repeat changes nothing, not even `updated_at`."""
        await connection.execute(
            f"INSERT INTO {self.table} AS r (request_id, status, community_url, reason)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (request_id) DO UPDATE SET"
            " status = EXCLUDED.status, community_url = EXCLUDED.community_url,"
            " reason = EXCLUDED.reason, updated_at = now()"
            " WHERE r.status <> 'published' AND (r.status, r.community_url, r.reason)"
            " IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.community_url, EXCLUDED.reason)",
            request_id, status, community_url, reason,
        )  # fmt: skip

    async def get(self, request_id: str) -> CommunityRequestStatus | None:
        row = await self.pool.fetchrow(
            f"SELECT request_id, owner_id, status, community_url, reason FROM {self.table}"
            " WHERE request_id = $1",
            request_id,
        )
        return None if row is None else CommunityRequestStatus(**dict(row))
