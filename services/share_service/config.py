"""share_service's settings: the shared ones plus where links point."""

from pydantic import Field

from servicekit.config import ServiceSettings


class ShareServiceSettings(ServiceSettings):
    public_url: str = "http://127.0.0.1:8000"
    chat_version_wait_seconds: float = Field(default=5.0, gt=0)
    min_version_wait_seconds: float = Field(default=2.0, gt=0)
