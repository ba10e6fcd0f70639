"""docker-compose.yml agrees with the code and with INTERFACE.md §1: names, ports, entry points, env."""

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES_DIR = REPO / "services"

# INTERFACE.md §1: the HTTP ports of the local stack.
HTTP_PORTS = {
    "share_service": 8000,
    "settings_service": 8001,
    "community_publisher": 8002,
    "community_standin": 8090,
}
# Packages whose entry point can be imported here; the others are checked by reading their file,
# so this test does not depend on every service's imports being complete.
IMPORTABLE_PACKAGES = {"community_standin"}


def compose_text() -> str:
    return (REPO / "docker-compose.yml").read_text()


def compose_services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(compose_text())["services"]
    return services


def command_of(service: str) -> list[str]:
    command = compose_services()[service]["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def python_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(SERVICES_DIR.rglob("*.py"))}


def read_by_settings_field(variable: str, sources: dict[Path, str]) -> bool:
    """`CHATSHARE_X` is read by a pydantic-settings field `x` with the `CHATSHARE_` prefix."""
    if not any('env_prefix="CHATSHARE_"' in text for text in sources.values()):
        return False
    field = variable.removeprefix("CHATSHARE_").lower()
    declared = re.compile(rf"^\s+{re.escape(field)}\s*:", re.MULTILINE)
    return any(declared.search(text) for path, text in sources.items() if path.name == "config.py")


def test_compose_has_every_part_of_the_stack() -> None:
    expected = {*HTTP_PORTS, "kafka", "postgres", "topics"}

    assert expected <= set(compose_services())


@pytest.mark.parametrize(("service", "port"), sorted(HTTP_PORTS.items()))
def test_each_http_service_is_published_on_its_interface_port(service: str, port: int) -> None:
    mappings = [str(mapping).split(":") for mapping in compose_services()[service]["ports"]]
    published = {(int(parts[-2]), int(parts[-1])) for parts in mappings}
    command = command_of(service)

    assert published == {(port, port)}
    assert command[command.index("--port") + 1] == str(port)


@pytest.mark.parametrize("service", sorted(HTTP_PORTS))
def test_each_uvicorn_entry_point_exists(service: str) -> None:
    command = command_of(service)
    assert command[0] == "uvicorn"
    assert "--factory" in command
    module_name, attribute = command[1].split(":")
    package = module_name.split(".")[0]

    if package in IMPORTABLE_PACKAGES:
        assert hasattr(importlib.import_module(module_name), attribute)
    else:
        module_file = SERVICES_DIR.joinpath(*module_name.split(".")).with_suffix(".py")
        assert module_file.is_file(), f"{module_file.relative_to(REPO)} is missing"
        assert re.search(rf"^def {attribute}\(", module_file.read_text(), re.MULTILINE)


def test_every_chatshare_variable_in_compose_is_read_by_the_code() -> None:
    variables = set(re.findall(r"CHATSHARE_[A-Z_]+", compose_text()))
    sources = python_sources()

    unread = sorted(
        name
        for name in variables
        if not any(name in text for text in sources.values())
        and not read_by_settings_field(name, sources)
    )

    assert variables
    assert unread == []


def test_the_topics_job_runs_the_devstack_topics_cli_against_compose_kafka() -> None:
    command = command_of("topics")

    assert command[:3] == ["python", "-m", "devstack.topics"]
    assert command[command.index("--bootstrap") + 1] == "kafka:9092"
    assert (REPO / "deploy" / "devstack" / "topics.py").is_file()


def test_kafka_is_version_4() -> None:
    image = compose_services()["kafka"]["image"]
    name, _, tag = image.partition(":")

    assert name == "apache/kafka"
    assert tag.split(".")[0] == "4"


def test_the_python_services_build_the_one_dockerfile() -> None:
    builds = {
        str(spec["build"]["dockerfile"])
        for name, spec in compose_services().items()
        if name not in {"kafka", "postgres"}
    }

    assert builds == {"deploy/docker/Dockerfile"}
    assert (REPO / "deploy" / "docker" / "Dockerfile").is_file()
