"""`CHATSHARE_ROLES`: which parts of a service one process runs (a Deployment may run only the
HTTP API, or only the relay and the consumers)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from servicekit.config import ROLES, ServiceSettings


def test_a_process_runs_every_role_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATSHARE_ROLES", raising=False)

    settings = ServiceSettings()

    assert settings.roles == frozenset(ROLES) == {"http", "relay", "consumers"}
    assert all(settings.runs(role) for role in ROLES)


@pytest.mark.parametrize(
    ("variable", "roles"),
    [
        ("http", {"http"}),
        ("relay,consumers", {"relay", "consumers"}),
        (" consumers , relay ,", {"relay", "consumers"}),
        ("http,relay,consumers", {"http", "relay", "consumers"}),
    ],
)
def test_roles_are_a_comma_list(
    monkeypatch: pytest.MonkeyPatch, variable: str, roles: set[str]
) -> None:
    monkeypatch.setenv("CHATSHARE_ROLES", variable)

    settings = ServiceSettings()

    assert settings.roles == roles
    assert settings.runs("http") == ("http" in roles)


@pytest.mark.parametrize("variable", ["", " , ", "http,workers", "HTTP"])
def test_an_empty_or_unknown_role_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("CHATSHARE_ROLES", variable)

    with pytest.raises(ValidationError, match="roles"):
        ServiceSettings()


def test_roles_can_be_given_in_code() -> None:
    assert ServiceSettings(roles=["relay"]).roles == {"relay"}
