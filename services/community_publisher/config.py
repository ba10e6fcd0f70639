"""community_publisher's settings: where the community site is and how hard to retry it."""

from pydantic import Field

from servicekit.config import ServiceSettings


class CommunityPublisherSettings(ServiceSettings):
    community_url: str = "http://127.0.0.1:8090"
    community_token: str | None = None
    upload_timeout_seconds: float = Field(default=10.0, gt=0)
    upload_max_attempts: int = Field(default=5, ge=1)
    upload_backoff_seconds: float = Field(default=0.5, gt=0)
