"""Deployment files, validated offline: Kubernetes manifests against the Kubernetes schemas (kubernetes-validate),
KEDA's ScaledObject against the structural schema vendored in deploy/k8s/schemas, and the N-GPU compose override
against the compose specification (check-jsonschema)."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.commands import api_argv, reconciler_argv, worker_argv
from services.metrics import RedisMetricsCollector  # noqa: F401 - the KEDA query must name one of its gauges

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.37.0"
_spec = importlib.util.spec_from_file_location("compose_gpus", ROOT / "deploy" / "compose_gpus.py")
compose_gpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compose_gpus)  # a script, not an installed package
override, render = compose_gpus.override, compose_gpus.render
KEDA_SCHEMA = json.loads((K8S / "schemas" / "keda-scaledobject.schema.json").read_text())


def documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str, name: str) -> dict:
    return next(doc for _file, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name)


def container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("file,doc", [d for d in documents() if d[1]["kind"] != "ScaledObject"],
                         ids=lambda v: v if isinstance(v, str) else f"{v['kind']}/{v['metadata']['name']}")
def test_kubernetes_resources_validate_strictly_against_the_kubernetes_schemas(file, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_is_not_a_no_op():
    broken = copy.deepcopy(by_kind("Deployment", "atelier-worker"))
    broken["spec"]["template"]["spec"]["containers"][0]["resources"]["limitz"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = copy.deepcopy(by_kind("Deployment", "atelier-api"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_keda_scaled_object_matches_its_crd_schema_and_rejects_mistakes():
    scaled = by_kind("ScaledObject", "atelier-worker")
    jsonschema.Draft202012Validator.check_schema(KEDA_SCHEMA)
    jsonschema.validate(scaled, KEDA_SCHEMA)
    for mutate in (lambda d: d["spec"].pop("scaleTargetRef"),
                   lambda d: d["spec"]["triggers"][0]["metadata"].pop("query"),
                   lambda d: d["spec"].__setitem__("maxReplicas", 4),  # HPA's name, not KEDA's
                   lambda d: d["spec"]["triggers"][0]["metadata"].__setitem__("threshold", 1)):  # must be a string
        broken = copy.deepcopy(scaled)
        mutate(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, KEDA_SCHEMA)


def test_keda_scales_the_worker_deployment_on_jobs_queued_plus_running():
    scaled = by_kind("ScaledObject", "atelier-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == by_kind("Deployment", "atelier-worker")["metadata"]["name"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    # The gauge exported by services.metrics (queued + running), not the broker list; max(): same on every replica.
    assert trigger["metadata"]["query"] == "max(atelier_jobs_inflight)"
    assert "atelier_jobs_inflight" in (ROOT / "services" / "metrics.py").read_text()


def test_workers_request_a_gpu_each_and_may_drain_their_longest_job():
    worker = by_kind("Deployment", "atelier-worker")
    config = by_kind("ConfigMap", "atelier-config")["data"]
    assert container(worker)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container(worker)["command"] == worker_argv()  # the command the tests run natively
    assert "--concurrency" in container(worker)["command"]
    grace_s = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s > int(config["ATELIER_JOB_TIME_LIMIT_S"]) + 60  # job limit + Celery's hard-limit grace
    assert "inspect ping" in " ".join(container(worker)["readinessProbe"]["exec"]["command"])


def test_api_runs_the_native_command_with_a_multiprocess_metrics_dir():
    api = by_kind("Deployment", "atelier-api")
    assert container(api)["command"] == api_argv()
    env = {item["name"]: item.get("value") for item in container(api)["env"]}
    mounts = {m["mountPath"] for m in container(api)["volumeMounts"]}
    assert env["PROMETHEUS_MULTIPROC_DIR"] in mounts
    assert container(api)["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_reconciler_runs_the_native_command():
    assert container(by_kind("Deployment", "atelier-reconciler"))["command"] == reconciler_argv()


def test_redis_persists_with_an_append_only_file_on_a_volume():
    redis_set = by_kind("StatefulSet", "atelier-redis")
    args = container(redis_set)["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert redis_set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] in {
        m["name"] for m in container(redis_set)["volumeMounts"]}


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_gpu_override_pins_one_worker_per_device_and_validates_as_compose(tmp_path: Path):
    doc = override(3)
    services = doc["services"]
    assert set(services) == {"worker-gpu0", "worker-gpu1", "worker-gpu2"}
    for device in (1, 2):
        (reservation,) = services[f"worker-gpu{device}"]["deploy"]["resources"]["reservations"]["devices"]
        assert reservation["device_ids"] == [str(device)] and "gpu" in reservation["capabilities"]
        assert services[f"worker-gpu{device}"]["environment"]["CUDA_VISIBLE_DEVICES"] == "0"
        assert services[f"worker-gpu{device}"]["command"] == worker_argv()
    path = tmp_path / "docker-compose.gpus.yml"
    path.write_text(render(3))
    for file in (ROOT / "docker-compose.yml", path):
        result = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                                 "vendor.compose-spec", str(file)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_committed_gpu_override_is_what_the_generator_writes():
    assert (ROOT / "docker-compose.gpus.yml").read_text() == render(4)


def test_generator_refuses_zero_gpus():
    result = subprocess.run([sys.executable, str(ROOT / "deploy" / "compose_gpus.py"), "0"], capture_output=True,
                            text=True)
    assert result.returncode == 2 and "gpus=0 is not allowed" in result.stderr


def test_compose_cpu_workers_scale_and_api_has_a_fresh_metrics_dir():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert compose["worker-cpu"]["command"] == worker_argv()
    assert "deploy" not in compose["worker-cpu"] and compose["worker-cpu"]["profiles"] == ["cpu"]
    metrics_dir = compose["api"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir in compose["api"]["tmpfs"]
