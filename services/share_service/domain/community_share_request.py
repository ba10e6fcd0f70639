"""An owner's request to publish a chat on the community site: its own fresh snapshot and the
policy version that allowed it. community_publisher acts on it from `share.events`. Pure."""

from __future__ import annotations

from typing import Literal, get_args
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from share_service.domain.snapshot import Snapshot

Access = Literal["private", "public", "public_full_history"]
ACCESS_LEVELS: tuple[Access, ...] = get_args(Access)


class CommunityShareRequest(Aggregate):
    """Its `request_id` is its id as a string: the upload's idempotency key downstream."""

    @staticmethod
    def create_id(request_id: str) -> UUID:
        return UUID(request_id)

    class Event(Aggregate.Event):
        pass

    class CommunityShareRequested(Aggregate.Created, Event):
        request_id: str
        chat_id: str
        owner_id: str
        access: Access
        policy_version: int
        snapshot: Snapshot

    def __init__(
        self,
        request_id: str,
        chat_id: str,
        owner_id: str,
        access: Access,
        policy_version: int,
        snapshot: Snapshot,
    ) -> None:
        self.request_id = request_id
        self.chat_id = chat_id
        self.owner_id = owner_id
        self.access = access
        self.policy_version = policy_version
        self.snapshot = snapshot

    @classmethod
    def request(
        cls, chat_id: str, owner_id: str, access: str, policy_version: int, snapshot: Snapshot
    ) -> CommunityShareRequest:
        # Checked here, not in __init__, which also runs when stored requests are loaded.
        if policy_version < 1:
            raise ValueError("a request needs the policy version that turned sharing on (≥ 1)")
        return cls(str(uuid4()), chat_id, owner_id, access_level(access), policy_version, snapshot)


def access_level(value: str) -> Access:
    for level in ACCESS_LEVELS:
        if value == level:
            return level
    raise ValueError(f"access must be one of {', '.join(ACCESS_LEVELS)}, not {value!r}")
