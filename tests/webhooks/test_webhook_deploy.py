"""The webhook worker runs the same command everywhere: docker-compose, Kubernetes, ``atelier dev`` and these tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.cli.dev import DevStack
from services.commands import webhook_worker_argv

ROOT = Path(__file__).resolve().parents[2]


def test_compose_and_kubernetes_run_the_native_webhook_worker_command():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["webhooks"]["command"] == webhook_worker_argv()
    manifest = yaml.safe_load((ROOT / "deploy" / "k8s" / "webhooks.yaml").read_text())
    assert manifest["spec"]["template"]["spec"]["containers"][0]["command"] == webhook_worker_argv()
    assert "webhooks.yaml" in (ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text()
    # Its own queue only: never the GPU workers' interactive/bulk queues.
    assert webhook_worker_argv()[webhook_worker_argv().index("-Q") + 1] == "webhooks"


def test_atelier_dev_starts_the_webhook_worker():
    import inspect

    assert "webhook_worker_argv(" in inspect.getsource(DevStack.start)
