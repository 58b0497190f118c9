"""infra/k8s: every manifest valid against the Kubernetes schemas (offline, kubernetes-validate) and KEDA's against the
CRD schemas vendored in infra/k8s/schemas; and what they say agrees with the code (settings, commands, ports, queues)."""

from __future__ import annotations

import json
import pathlib
import shlex

import jsonschema
import kubernetes_validate
import pytest
import yaml

from actors.broker import level_queues
from settings import Settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "infra" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes these manifests are written for
KEDA_SCHEMAS = {
    "ScaledObject": K8S / "schemas" / "keda-scaledobject-v1alpha1.json",
    "TriggerAuthentication": K8S / "schemas" / "keda-triggerauthentication-v1alpha1.json",
}


def documents() -> list[tuple[str, dict]]:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"), (
        "kustomization.yaml lists every file"
    )
    return [(name, doc) for name in listed for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == kind}


@pytest.mark.parametrize(("name", "doc"), documents(), ids=lambda v: v if isinstance(v, str) else v["kind"] + "/" + v["metadata"]["name"])
def test_every_manifest_is_valid(name, doc):
    if doc["apiVersion"].startswith("keda.sh/"):
        schema = json.loads(KEDA_SCHEMAS[doc["kind"]].read_text())
        jsonschema.validate(doc, schema)
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_refused():
    scaled = by_kind("ScaledObject")["dockyard-worker"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**scaled, "spec": {**scaled["spec"], "scaleTargetRef": {}}}, json.loads(KEDA_SCHEMAS["ScaledObject"].read_text())
        )
    web = by_kind("Deployment")["dockyard-web"]
    broken = json.loads(json.dumps(web))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": "eight thousand"}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    misspelt = json.loads(json.dumps(web))
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(misspelt, KUBERNETES_VERSION, strict=True)


def settings_env() -> dict[str, str]:
    env = dict(by_kind("ConfigMap")["dockyard-config"]["data"])
    env.update({k: v for k, v in by_kind("Secret")["dockyard-secrets"]["stringData"].items() if k.startswith("DOCKYARD_")})
    return env


def test_the_settings_are_dockyards_and_valid():
    settings = Settings.from_env(settings_env())  # unknown or malformed DOCKYARD_* fail here
    assert settings.queue_type == "quorum" and len(settings.broker_urls()) == 3
    assert "CHANGE-ME" in json.dumps(by_kind("Secret")["dockyard-secrets"]), "the Secret holds placeholders only"


def container(deployment: str, name: str) -> dict:
    (found,) = [c for c in by_kind("Deployment")[deployment]["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def test_commands_probes_and_ports_match_the_processes():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    settings = Settings.from_env(settings_env())
    worker = container("dockyard-worker", "worker")
    assert " ".join(worker["command"]) == procfile["worker"]
    assert worker["ports"][0]["containerPort"] == settings.worker_metrics_port
    scheduler = container("dockyard-scheduler", "scheduler")
    assert " ".join(scheduler["command"]) == procfile["scheduler"]
    assert scheduler["ports"][0]["containerPort"] == settings.scheduler_metrics_port
    assert by_kind("Job")["dockyard-migrate"]["spec"]["template"]["spec"]["containers"][0]["command"] == shlex.split(procfile["release"])
    web = container("dockyard-web", "web")
    assert (web["readinessProbe"]["httpGet"]["path"], web["livenessProbe"]["httpGet"]["path"]) == ("/readyz", "/healthz")
    assert "web.wsgi:app" in web["command"][-1] and "--bind 0.0.0.0:8000" in web["command"][-1]
    # The worker outlives its grace period and Dramatiq's margin before Kubernetes kills it.
    grace = by_kind("Deployment")["dockyard-worker"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.worker_shutdown_grace_seconds + 30
    # Its engine is the DinD sidecar's socket, in the volume both mount.
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["DOCKYARD_DOCKER_URL"] == "unix:///var/run/dind/docker.sock"
    assert "--host=unix:///var/run/dind/docker.sock" in container("dockyard-worker", "dind")["args"]


def test_keda_scales_the_worker_on_every_level_queue():
    scaled = by_kind("ScaledObject")["dockyard-worker"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    queues = [t["metadata"]["queueName"] for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq"]
    assert queues == level_queues(Settings.from_env(settings_env()).default_queue)
    secret = by_kind("Secret")["dockyard-secrets"]["stringData"]
    for reference in by_kind("TriggerAuthentication")["dockyard-rabbitmq"]["spec"]["secretTargetRef"]:
        assert reference["name"] == "dockyard-secrets" and reference["key"] in secret


def test_every_process_has_resources_and_a_disruption_budget():
    budgets = {tuple(sorted(b["spec"]["selector"]["matchLabels"].items())) for b in by_kind("PodDisruptionBudget").values()}
    for deployment in by_kind("Deployment").values():
        spec = deployment["spec"]
        assert tuple(sorted(spec["selector"]["matchLabels"].items())) in budgets, deployment["metadata"]["name"]
        for c in spec["template"]["spec"]["containers"]:
            assert c["resources"]["requests"] and c["resources"]["limits"], (deployment["metadata"]["name"], c["name"])
