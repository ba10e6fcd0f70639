"""What one upload attempt came to, which answers are worth another attempt, and how long to
wait before it (exponential backoff with jitter). Pure: the caller draws the randomness."""

from __future__ import annotations

from dataclasses import dataclass

# Timeouts and throttling say "not now", not "never": worth another attempt, like a 5xx.
RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})
# What `CommunitySharePublished` can carry (contracts/community_events.py).
MAX_COMMUNITY_ID_CHARS = 200
MAX_COMMUNITY_URL_CHARS = 2000


@dataclass(frozen=True)
class Accepted:
    """The site took the chat (a 2xx with its id and address)."""

    community_id: str
    community_url: str


@dataclass(frozen=True)
class TryAgain:
    """A fault that may heal: timeout, connection error, 5xx."""

    reason: str


@dataclass(frozen=True)
class Refused:
    """An answer no retry changes: a 4xx, or a 2xx the publisher cannot read."""

    reason: str


AttemptResult = Accepted | TryAgain | Refused


def accepted(community_id: str, community_url: str) -> Accepted | Refused:
    """The site's answer to a successful upload, if `community.events` can carry it."""
    if (
        0 < len(community_id) <= MAX_COMMUNITY_ID_CHARS
        and 0 < len(community_url) <= MAX_COMMUNITY_URL_CHARS
    ):
        return Accepted(community_id, community_url)
    return Refused("the community site answered with an empty or overlong id or url")


def is_worth_retrying(status: int) -> bool:
    """Whether an HTTP error status may turn out differently on another attempt."""
    return status >= 500 or status in RETRYABLE_CLIENT_ERRORS


@dataclass(frozen=True)
class Backoff:
    """At most `max_attempts` attempts; the n-th retry waits about `first_delay * 2**(n-1)`,
    never more than `max_delay`."""

    max_attempts: int
    first_delay: float
    max_delay: float

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.first_delay < 0 or self.max_delay < self.first_delay:
            raise ValueError("a backoff needs ≥ 1 attempt and 0 ≤ first_delay ≤ max_delay")

    def allows_another(self, attempts_made: int) -> bool:
        return attempts_made < self.max_attempts

    def delay(self, retry: int, draw: float) -> float:
        """Seconds before retry number `retry` (1 for the first); `draw` is uniform in [0, 1).

        Jitter keeps replicas whose uploads failed together from retrying in lockstep; it takes
        off at most half, so the backoff still grows."""
        if retry < 1 or not 0.0 <= draw <= 1.0:
            raise ValueError("retry counts from 1 and draw lies in [0, 1]")
        ceiling = min(self.max_delay, self.first_delay * 2.0 ** min(retry - 1, 62))
        return ceiling * (0.5 + 0.5 * draw)
