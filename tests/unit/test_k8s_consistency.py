"""deploy/k8s agrees with the code: every topic with the partitions and retention the code
expects, the ports and entry points of the dev stack, probes on health and readiness, only
settings the services read, valid roles that together run every part of every service."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.topics import all_topics, max_message_bytes
from devstack.services import default_services
from devstack.topics import DEFAULT_MAX_SNAPSHOT_BYTES, topic_configs
from servicekit.config import ROLES
from tests.unit.test_compose_consistency import python_sources, read_by_settings_field

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
# The roles each service needs run somewhere: settings_service has no consumer group.
NEEDED_ROLES = {
    "share_service": {"http", "relay", "consumers"},
    "settings_service": {"http", "relay"},
    "community_publisher": {"relay", "consumers"},
}
DEVSTACK = {spec.factory: spec for spec in default_services({})}


def documents(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            yield from (doc for doc in yaml.safe_load_all(path.read_text()) if doc)


def of_kind(kind: str, folder: Path = BASE) -> list[dict[str, Any]]:
    return [doc for doc in documents(folder) if doc["kind"] == kind]


def kustomization(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return loaded


def base_config() -> dict[str, str]:
    (generator,) = kustomization(BASE)["configMapGenerator"]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only  # type: ignore[no-any-return]


def factory_of(deployment: dict[str, Any]) -> str:
    return str(container(deployment)["args"][0])


def env_value(deployment: dict[str, Any], name: str) -> Any:
    found = [item for item in container(deployment).get("env", []) if item["name"] == name]
    return found[0] if found else None


def roles_of(deployment: dict[str, Any]) -> set[str]:
    item = env_value(deployment, "CHATSHARE_ROLES")
    value = item["value"] if item else ",".join(ROLES)
    return {role.strip() for role in value.split(",") if role.strip()}


def service_deployments() -> list[dict[str, Any]]:
    return [d for d in of_kind("Deployment") if factory_of(d) in DEVSTACK]


def http_deployments() -> list[dict[str, Any]]:
    return [d for d in service_deployments() if "http" in roles_of(d)]


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    return selector.items() <= pod_labels(deployment).items()


def named(docs: list[dict[str, Any]]) -> list[str]:
    return [doc["metadata"]["name"] for doc in docs]


def test_every_file_of_the_base_is_in_its_kustomization() -> None:
    listed = set(kustomization(BASE)["resources"])
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}

    assert listed == files


def test_the_dev_overlay_builds_on_the_base() -> None:
    overlay = K8S / "overlays" / "dev"
    resources = kustomization(overlay)["resources"]

    assert "../../base" in resources
    assert all((overlay / r).exists() for r in resources)


@pytest.mark.parametrize("topic", all_topics(), ids=lambda spec: spec.name)
def test_every_topic_is_a_kafka_topic_as_the_code_expects(topic: Any) -> None:
    topics = {
        doc["spec"].get("topicName", doc["metadata"]["name"]): doc for doc in of_kind("KafkaTopic")
    }
    snapshot_bytes = int(base_config()["CHATSHARE_MAX_SNAPSHOT_BYTES"])

    resource = topics[topic.name]

    assert resource["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert resource["spec"]["partitions"] == topic.partitions
    config = {key: str(value) for key, value in resource["spec"]["config"].items()}
    assert topic_configs(snapshot_bytes).items() <= config.items()
    assert config["retention.ms"] == "-1"
    assert config["max.message.bytes"] == str(max_message_bytes(DEFAULT_MAX_SNAPSHOT_BYTES))


def test_there_is_no_kafka_topic_the_code_does_not_know() -> None:
    known = {spec.name for spec in all_topics()}

    assert {doc["spec"]["topicName"] for doc in of_kind("KafkaTopic")} == known


@pytest.mark.parametrize("deployment", service_deployments(), ids=named(service_deployments()))
def test_each_deployment_runs_a_uvicorn_factory_that_exists_on_the_dev_stack_port(
    deployment: dict[str, Any],
) -> None:
    spec = DEVSTACK[factory_of(deployment)]
    main = container(deployment)
    module_name, attribute = spec.factory.split(":")
    module_file = REPO.joinpath("services", *module_name.split(".")).with_suffix(".py")

    assert main["command"] == ["uvicorn"]
    assert "--factory" in main["args"]
    assert f"--port={spec.port}" in main["args"]
    assert [port["containerPort"] for port in main["ports"]] == [spec.port]
    assert re.search(rf"^def {attribute}\(", module_file.read_text(), re.MULTILINE)


@pytest.mark.parametrize("deployment", service_deployments(), ids=named(service_deployments()))
def test_probes_ask_health_for_liveness_and_readiness_for_readiness(
    deployment: dict[str, Any],
) -> None:
    main = container(deployment)
    ports = {port["name"]: port["containerPort"] for port in main["ports"]}

    def probe(kind: str) -> tuple[str, int]:
        get = main[kind]["httpGet"]
        return get["path"], ports.get(get["port"], get["port"])

    port = DEVSTACK[factory_of(deployment)].port
    assert probe("livenessProbe") == ("/healthz", port)
    assert probe("readinessProbe") == ("/readyz", port)


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=named(of_kind("Deployment")))
def test_each_deployment_asks_for_resources(deployment: dict[str, Any]) -> None:
    resources = container(deployment)["resources"]

    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_every_chatshare_variable_in_the_manifests_is_read_by_the_code() -> None:
    text = "\n".join(path.read_text() for path in K8S.rglob("*.yaml"))
    variables = set(re.findall(r"CHATSHARE_[A-Z_]+", text))
    sources = python_sources()

    unread = sorted(name for name in variables if not read_by_settings_field(name, sources))

    assert "CHATSHARE_ROLES" in variables
    assert unread == []


def test_secrets_come_from_the_secret_never_from_the_config_map() -> None:
    secret = {"CHATSHARE_JWT_SECRET", "CHATSHARE_DATABASE_URL", "CHATSHARE_COMMUNITY_TOKEN"}

    assert not secret & set(base_config())
    for deployment in service_deployments():
        for item in container(deployment).get("env", []):
            if item["name"] in secret:
                assert item["valueFrom"]["secretKeyRef"]["name"] == "chatshare-secrets"


@pytest.mark.parametrize("deployment", service_deployments(), ids=named(service_deployments()))
def test_roles_are_valid(deployment: dict[str, Any]) -> None:
    assert roles_of(deployment)
    assert roles_of(deployment) <= set(ROLES)


def test_every_part_of_every_service_runs_in_some_deployment() -> None:
    running: dict[str, set[str]] = {}
    for deployment in service_deployments():
        service = factory_of(deployment).split(".")[0]
        running.setdefault(service, set()).update(roles_of(deployment))

    assert running == NEEDED_ROLES


def test_the_autoscaler_scales_only_the_http_only_share_service() -> None:
    (autoscaler,) = of_kind("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    deployments = {d["metadata"]["name"]: d for d in of_kind("Deployment")}

    assert target["kind"] == "Deployment"
    scaled = deployments[target["name"]]
    assert factory_of(scaled) == "share_service.bootstrap:create_app"
    assert roles_of(scaled) == {"http"}
    assert "replicas" not in scaled["spec"]  # the autoscaler owns the count


def test_each_http_deployment_has_a_service_and_a_disruption_budget() -> None:
    services, budgets = of_kind("Service"), of_kind("PodDisruptionBudget")

    for deployment in http_deployments():
        port = DEVSTACK[factory_of(deployment)].port
        exposing = [s for s in services if selects(s["spec"]["selector"], deployment)]
        assert [p["port"] for s in exposing for p in s["spec"]["ports"]] == [port]
        assert [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], deployment)]


def test_no_service_sends_traffic_to_a_process_without_the_http_role() -> None:
    workers = [d for d in service_deployments() if "http" not in roles_of(d)]

    assert workers
    for service in of_kind("Service"):
        assert not [d for d in workers if selects(service["spec"]["selector"], d)]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("folder", [BASE, K8S / "overlays" / "dev"], ids=["base", "dev"])
def test_kustomize_builds_it(folder: Path) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )

    assert built.returncode == 0, built.stderr
    kinds = {doc["kind"] for doc in yaml.safe_load_all(built.stdout) if doc}
    assert {"Deployment", "Service", "KafkaTopic", "ConfigMap"} <= kinds
