"""Settings every service shares, from `CHATSHARE_*` environment variables (INTERFACE.md §1–2)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contracts.topics import CONSUMER_GROUPS

DEV_JWT_SECRET = "change-me-dev-secret-0123456789abcdef"
MIN_JWT_SECRET_BYTES = 32

Role = Literal["http", "relay", "consumers"]
"""What one process of a service runs (`CHATSHARE_ROLES`): `http` serves the API (routes are
always mounted: health, readiness and metrics are HTTP too, so this role only says the process
takes traffic), `relay` runs the outbox relay, `consumers` joins the service's consumer groups
(and watches their lag)."""
ROLES: tuple[Role, ...] = get_args(Role)


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it with what only it needs."""

    model_config = SettingsConfigDict(env_prefix="CHATSHARE_", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://postgres:postgres@127.0.0.1:55432/chatshare"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    login_url: str = "/auth"
    max_snapshot_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    instance_id: str = "chatshare-dev"
    # Short in tests so a killed consumer's partitions move on quickly (DESIGN.md traps).
    kafka_session_timeout_ms: int = Field(default=10_000, ge=3_000)
    kafka_heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    # Prepended to every topic and consumer group name. Empty in a real deployment (the names
    # are INTERFACE.md's); tests give each run its own, so runs never see each other's events.
    topic_prefix: str = Field(default="", pattern=r"^[a-zA-Z0-9._-]*$")
    # A comma list, e.g. `CHATSHARE_ROLES=relay,consumers` for a workers-only Deployment.
    roles: Annotated[frozenset[Role], NoDecode] = frozenset(ROLES)
    # Which of the service's consumer groups a process with the `consumers` role joins (a comma
    # list of INTERFACE.md's group names); empty: every one. Lets the share projection and the
    # chat mirror run, scale and fail apart.
    consumer_groups: Annotated[frozenset[str], NoDecode] = frozenset()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # asyncpg connections per process (reads, the view store, the mirror, consumers' writes).
    # With 10, the read benchmark's 32 concurrent readers queued for one and its p99 doubled
    # (62–73 ms against 29–35 ms with 16, back to back). The event store's own pool comes on top
    # (servicekit.event_store): size PostgreSQL's max_connections, or a pooler, for replicas × both.
    database_pool_size: int = Field(default=16, ge=2, le=200)
    # Connections held apart for the hottest single-row reads of an HTTP process (share_service's
    # GET of a link, its mirror read for a command: servicekit.held_connections), opened only
    # when such a read first needs one. On top of the two pools above.
    database_read_connections: int = Field(default=16, ge=1, le=200)

    @field_validator("roles", mode="before")
    @classmethod
    def _roles_from_comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not value:
            raise ValueError(f"CHATSHARE_ROLES names none of {', '.join(ROLES)}")
        return value

    @field_validator("consumer_groups", mode="before")
    @classmethod
    def _groups_from_comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        unknown = sorted(set(value) - set(CONSUMER_GROUPS))
        if unknown:
            raise ValueError(
                f"CHATSHARE_CONSUMER_GROUPS names no group of chatshare: {', '.join(unknown)}"
                f" (the groups: {', '.join(CONSUMER_GROUPS)})"
            )
        return value

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> ServiceSettings:
        if self.env != "production":
            return self
        if self.jwt_secret == DEV_JWT_SECRET:
            raise ValueError(
                "CHATSHARE_JWT_SECRET is the published development default; "
                "set a secret of your own before running with CHATSHARE_ENV=production"
            )
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"CHATSHARE_JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes "
                "with CHATSHARE_ENV=production"
            )
        return self

    def runs(self, role: Role) -> bool:
        return role in self.roles

    def joins(self, group: str) -> bool:
        """Whether this process joins the consumer group of that (unprefixed) name."""
        return self.runs("consumers") and (
            not self.consumer_groups or group in self.consumer_groups
        )

    def topic(self, name: str) -> str:
        return self.topic_prefix + name

    def group(self, name: str) -> str:
        return self.topic_prefix + name

    @property
    def database_dsn(self) -> str:
        """The URL in the form asyncpg and psycopg accept (no SQLAlchemy driver suffix)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
