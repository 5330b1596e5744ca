"""Deployment files, checked offline: the kustomize render validates against the Kubernetes
schemas and has what a cluster deployment needs (replicas, probes, PVC, PDB, limits,
non-root); the compose file is structurally sound and points at files that exist."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from edge_node.cli import Role
from edge_node.config import load_edge_config
from tests.support.requirements import require_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"
ACL = ROOT / "deploy" / "mosquitto" / "acl"
K8S_VERSION = "1.32"  # k3s of this vintage


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = require_binary(
        "kubectl",
        "install kubectl 1.14+ (it has kustomize built in) from Kubernetes' package repository "
        "or your distribution; it renders deploy/k8s for validation",
    )
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / "k3s-desktops")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in by_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def test_every_rendered_object_validates_strictly(rendered: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in rendered}
    assert {"StatefulSet", "Deployment", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "factory-edge"


def test_the_validator_rejects_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(one(rendered, "Deployment", "edge-api"))
    broken["spec"]["replica"] = broken["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_one_stateful_writer_and_replicated_readers_on_its_volume(
    rendered: list[dict[str, Any]],
) -> None:
    ingest = one(rendered, "StatefulSet", "edge-ingest")
    api = one(rendered, "Deployment", "edge-api")
    assert ingest["spec"]["replicas"] == 1
    (claim,) = ingest["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "local-path"
    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    volumes = {v["name"]: v for v in api["spec"]["template"]["spec"]["volumes"]}
    expected = f"{claim['metadata']['name']}-{ingest['metadata']['name']}-0"
    assert volumes["store"]["persistentVolumeClaim"]["claimName"] == expected
    (term,) = api["spec"]["template"]["spec"]["affinity"]["podAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    ingest_labels = ingest["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= ingest_labels.items()
    pdb = one(rendered, "PodDisruptionBudget", "edge-api")
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= api_labels.items()


def test_pods_are_probed_limited_non_root_and_use_generated_config(
    rendered: list[dict[str, Any]],
) -> None:
    config_maps = {d["metadata"]["name"] for d in by_kind(rendered, "ConfigMap")}
    workloads = by_kind(rendered, "Deployment") + by_kind(rendered, "StatefulSet")
    assert len(workloads) == 3
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert {"requests", "limits"} <= container["resources"].keys()
            assert "readinessProbe" in container and "livenessProbe" in container
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            if container["name"] == "edge":
                assert container["readinessProbe"]["httpGet"]["path"] == "/api/health"
                role = container["args"][container["args"].index("--role") + 1]
                assert role in {r.value for r in Role}
        for volume in pod["volumes"]:
            sources = [volume.get("configMap")] + [
                s.get("configMap") for s in volume.get("projected", {}).get("sources", [])
            ]
            for source in filter(None, sources):
                assert source["name"] in config_maps  # generated names (hash suffix) resolved


def test_the_cluster_edge_config_is_valid() -> None:
    config = load_edge_config(K8S / "base" / "edge.yaml")
    assert config.http.host == "0.0.0.0" and config.mqtt.tls is not None


def test_the_deployed_edge_is_a_user_the_shipped_acl_lets_read_and_acknowledge() -> None:
    """The broker binds a client id to its certificate's CN and the ACL grants topics by that
    name: an edge config whose client id the ACL does not name connects and receives nothing."""
    client_id = load_edge_config(K8S / "base" / "edge.yaml").client_id
    grants: dict[str, set[str]] = {}
    user = None
    for line in ACL.read_text().splitlines():
        words = line.split()
        if words[:1] == ["user"]:
            user = words[1]
        elif words[:1] == ["topic"] and user is not None:
            grants.setdefault(user, set()).add(" ".join(words[1:]))
    assert client_id in grants, f"{client_id} is not a user in {ACL}"
    wanted = {"read factory/v1/gw/+/data", "write factory/v1/gw/+/stored"}
    assert wanted <= grants[client_id]


def test_compose_file_is_sound() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert set(services) == {"mosquitto", "edge-ingest", "edge-api"}
    declared = set(doc.get("volumes", {}))
    roles = {}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                if "/pki/" in source:
                    continue  # provisioning puts certificates there; not in git
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
        if "command" in service and "--role" in service["command"]:
            roles[name] = service["command"][service["command"].index("--role") + 1]
    assert roles == {"edge-ingest": "ingest", "edge-api": "api"}
    data = {m for s in ("edge-ingest", "edge-api") for m in services[s]["volumes"]}
    assert "edge-data:/var/lib/factory" in data  # both read the same store
