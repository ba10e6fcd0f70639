"""Field types shared by the event models: identifiers, versions, roles."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

# Ids from other services are opaque strings; the bound keeps a broken producer from filling
# keys, indexes and log lines with megabytes.
MAX_ID_LENGTH = 200

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]

# At least 128 random bits in URL-safe base64 is 22 characters (INTERFACE.md §3).
ShareId = Annotated[
    str, Field(min_length=22, max_length=MAX_ID_LENGTH, pattern=r"^[A-Za-z0-9_-]+$")
]

Version = Annotated[int, Field(ge=1)]

Role = Literal["user", "assistant", "system"]
