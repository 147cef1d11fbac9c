"""docker-compose.yml and the Dockerfiles: valid compose format, and every service command is one the tests run.

Docker cannot run here, so the file is validated against the compose-spec JSON schema that ``check-jsonschema``
vendors (a pinned dev dependency), and its commands are compared with ``services/commands.py``, which
``atelier dev`` and ``tests/e2e`` execute natively.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from services.cli.dev import Child
from services.commands import api_argv, flower_argv, worker_argv
from services.devstack import free_port
from shared.settings import _FIELDS, PREFIX

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services_named(compose: dict, word: str) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if word in name}


def test_compose_file_is_valid_against_the_compose_spec():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_compose_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  api:\n    image: x\n    deploy: {resources: {reservations: {devices: 3}}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0


def test_service_commands_are_the_ones_the_tests_run(compose):
    services = compose["services"]
    assert services["api"]["command"] == api_argv()
    workers = services_named(compose, "worker")
    assert workers and all(spec["command"] == worker_argv() for spec in workers.values())
    assert services["flower"]["command"] == flower_argv()


def test_dockerfile_commands_match(compose):
    def cmd(dockerfile: str) -> list[str]:
        text = (ROOT / "docker" / dockerfile).read_text()
        return json.loads(re.findall(r"^CMD (\[.*\])$", text, flags=re.M)[-1])

    assert cmd("Dockerfile.api") == api_argv()
    assert cmd("Dockerfile.worker") == worker_argv()
    def installs(dockerfile: str) -> str:
        text = (ROOT / "docker" / dockerfile).read_text()
        return "\n".join(line for line in text.splitlines() if line.startswith("RUN"))

    assert "tensorflow" not in installs("Dockerfile.api")  # the API image stays free of TensorFlow
    assert "tensorflow[and-cuda]==" in installs("Dockerfile.worker")


def test_redis_is_durable_and_never_evicts(compose):
    command = services_named(compose, "redis")["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_images_are_pinned(compose):
    for name, spec in compose["services"].items():
        image = spec.get("image")
        if image and not image.startswith("atelier-"):
            tag = image.rsplit(":", 1)
            assert len(tag) == 2 and tag[1] not in ("latest", ""), f"{name}: image {image} is not pinned"
    assert "healthcheck" in compose["services"]["minio"]


def test_each_worker_reserves_its_own_gpu(compose):
    device_ids = []
    for name, spec in services_named(compose, "worker").items():
        if "deploy" not in spec:  # a CPU worker is opt-in only (a profile), never part of a plain `up`
            assert spec.get("profiles"), f"{name} reserves no GPU and is not behind a profile"
            continue
        devices = spec["deploy"]["resources"]["reservations"]["devices"]
        assert len(devices) == 1, name
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
        device_ids += devices[0]["device_ids"]
    assert len(device_ids) == len(set(device_ids)) >= 1


def test_environment_names_are_real_settings(compose):
    known = {PREFIX + name.upper() for name in _FIELDS}
    for name, spec in compose["services"].items():
        for variable in (spec.get("environment") or {}):
            if variable.startswith(PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting of shared/settings.py"


@pytest.mark.integration
@pytest.mark.slow  # starts flower
def test_flower_command_runs_natively(redis_server, tmp_path):
    port = free_port()
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp_path),
           "ATELIER_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/8", "ATELIER_PRELOAD_BACKBONE": "none",
           "ATELIER_STORAGE": "file://" + str(tmp_path / "storage")}
    flower = Child("flower", flower_argv(port), env, tmp_path / "flower.log", ROOT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert flower.alive(), flower.log_tail()
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)
                if response.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        assert response.status_code == 200 and response.text == "OK", flower.log_tail()
    finally:
        flower.stop()
