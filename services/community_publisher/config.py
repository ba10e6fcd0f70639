"""community_publisher's settings: where the community site is and how hard to retry it."""

from pydantic import Field, model_validator

from servicekit.config import ServiceSettings


class CommunityPublisherSettings(ServiceSettings):
    community_url: str = "http://127.0.0.1:8090"
    # Sent as `Authorization: Bearer …` when set and not empty (INTERFACE.md §6).
    community_token: str | None = None
    upload_timeout_seconds: float = Field(default=10.0, gt=0)
    upload_max_attempts: int = Field(default=5, ge=1)
    upload_backoff_seconds: float = Field(default=0.5, gt=0)
    upload_max_backoff_seconds: float = Field(default=30.0, gt=0)
    # Requests of one batch uploaded at once; the batch is kept small so that even uploads
    # retried to the end finish well inside Kafka's max.poll.interval (5 minutes).
    upload_concurrency: int = Field(default=8, ge=1, le=64)
    max_requests_per_batch: int = Field(default=16, ge=1, le=500)
    # How long one try waits for the policy view to reach a request's version (or the end of
    # settings.events); a view that is late is retried by the consumer group, never rejected.
    policy_wait_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _backoff_grows(self) -> "CommunityPublisherSettings":
        if self.upload_max_backoff_seconds < self.upload_backoff_seconds:
            raise ValueError("CHATSHARE_UPLOAD_MAX_BACKOFF_SECONDS must be ≥ the first backoff")
        return self
