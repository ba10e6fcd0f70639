"""Settings of the community-site stand-in, read from the environment by the app factory."""

from pydantic_settings import BaseSettings, SettingsConfigDict


class StandinSettings(BaseSettings):
    """What the stand-in reads from `CHATSHARE_*` variables."""

    model_config = SettingsConfigDict(env_prefix="CHATSHARE_", extra="ignore")

    # CHATSHARE_COMMUNITY_TOKEN: the bearer token uploads must carry; empty means no check,
    # so the publisher and the stand-in can share one (possibly empty) variable.
    community_token: str = ""
