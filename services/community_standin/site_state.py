"""In-memory state of the stand-in site: accepted uploads, idempotency keys and failure control."""

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from community_standin.schemas import ControlSettings, ControlState


@dataclass(frozen=True)
class AcceptedUpload:
    """One upload the site accepted, as it was received."""

    id: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class InjectedFailure:
    """The answer to an upload the control settings told the site to fail."""

    status: int


@dataclass(frozen=True)
class UploadOutcome:
    """An upload the site took: `replayed` when its Idempotency-Key was already accepted."""

    upload: AcceptedUpload
    replayed: bool


@dataclass
class CommunitySiteState:
    """Everything the stand-in remembers; every change happens under `lock`."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    control: ControlSettings = field(default_factory=ControlSettings)
    attempts: int = 0
    uploads: list[AcceptedUpload] = field(default_factory=list)
    by_idempotency_key: dict[str, AcceptedUpload] = field(default_factory=dict)

    async def count_attempt(self) -> float:
        """Count one upload request and return how long (seconds) its answer is delayed."""
        async with self.lock:
            self.attempts += 1
            return self.control.delay_ms / 1000

    async def take_upload(
        self, key: str, headers: dict[str, str], body: dict[str, Any], base_url: str
    ) -> UploadOutcome | InjectedFailure:
        """Fail it if told to, else accept it once per Idempotency-Key."""
        async with self.lock:
            if self.control.fail_next > 0:
                self.control.fail_next -= 1
                return InjectedFailure(status=self.control.fail_status)
            known = self.by_idempotency_key.get(key)
            if known is not None:
                return UploadOutcome(upload=known, replayed=True)
            upload_id = str(uuid.uuid4())
            upload = AcceptedUpload(
                id=upload_id, url=f"{base_url}/c/{upload_id}", headers=headers, body=body
            )
            self.uploads.append(upload)
            self.by_idempotency_key[key] = upload
            return UploadOutcome(upload=upload, replayed=False)

    async def accepted_uploads(self) -> list[AcceptedUpload]:
        """The accepted uploads, oldest first."""
        async with self.lock:
            return list(self.uploads)

    async def set_control(self, settings: ControlSettings) -> ControlState:
        """Replace the failure/delay settings; counters stay."""
        async with self.lock:
            self.control = settings.model_copy()
            return self._report()

    async def report(self) -> ControlState:
        """Counters and current settings."""
        async with self.lock:
            return self._report()

    async def reset(self) -> ControlState:
        """Forget every upload, counter and setting."""
        async with self.lock:
            self.control = ControlSettings()
            self.attempts = 0
            self.uploads.clear()
            self.by_idempotency_key.clear()
            return self._report()

    def _report(self) -> ControlState:
        return ControlState(
            attempts=self.attempts, accepted=len(self.uploads), **self.control.model_dump()
        )
