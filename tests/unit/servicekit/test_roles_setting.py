"""`CHATSHARE_ROLES`: which parts of a service one process runs (a Deployment may run only the
HTTP API, or only the relay and the consumers), and `CHATSHARE_CONSUMER_GROUPS`: which consumer
groups a consumers process joins."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.topics import CONSUMER_GROUPS
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


def test_a_consumers_process_joins_every_group_unless_told_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHATSHARE_CONSUMER_GROUPS", raising=False)

    settings = ServiceSettings()

    assert settings.consumer_groups == frozenset()
    assert all(settings.joins(group) for group in CONSUMER_GROUPS)


def test_consumer_groups_name_the_groups_a_consumers_process_joins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHATSHARE_CONSUMER_GROUPS", " chat-mirror, share-service-policy ")

    settings = ServiceSettings()

    assert settings.consumer_groups == {"chat-mirror", "share-service-policy"}
    assert [g for g in CONSUMER_GROUPS if settings.joins(g)] == [
        "chat-mirror",
        "share-service-policy",
    ]


def test_without_the_consumers_role_no_group_is_joined() -> None:
    settings = ServiceSettings(roles=["http"], consumer_groups=["chat-mirror"])

    assert not any(settings.joins(group) for group in CONSUMER_GROUPS)


@pytest.mark.parametrize("variable", ["chat-mirror,projection", "Chat-Mirror"])
def test_an_unknown_consumer_group_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv("CHATSHARE_CONSUMER_GROUPS", variable)

    with pytest.raises(ValidationError, match="CHATSHARE_CONSUMER_GROUPS"):
        ServiceSettings()
