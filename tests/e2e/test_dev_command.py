"""``atelier dev`` as a user runs it: a subprocess that starts Redis, the API and a worker, takes a job from
``atelier submit --wait``, and leaves no process behind after Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from services.devstack import free_port

from .conftest import CONTENT, STYLE, descendants, running

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def test_atelier_dev_runs_a_job_and_stops_everything_on_sigint(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    log = (tmp_path / "dev.log").open("wb")
    children: set[int] = set()
    dev = subprocess.Popen([str(BIN / "atelier"), "dev", "--port", str(port), "--workers", "1"], cwd=tmp_path,
                           env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert dev.poll() is None, (tmp_path / "dev.log").read_text()
            try:
                if requests.get(api + "/readyz", timeout=2).status_code == 200 and b"ready:" in (
                        tmp_path / "dev.log").read_bytes():
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(0.5)

        # the CLI client end to end: submit, wait with progress, download
        out = tmp_path / "result.png"
        submitted = subprocess.run(
            [str(BIN / "atelier"), "submit", str(CONTENT), str(STYLE), "--size", "32", "--iterations", "3",
             "--wait", "-o", str(out), "--api", api],
            capture_output=True, text=True, timeout=180, env=env)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        job_id = submitted.stdout.split()[0]
        assert max(Image.open(out).size) == 32
        status = subprocess.run([str(BIN / "atelier"), "status", job_id],
                                capture_output=True, text=True, timeout=60, env=env | {"ATELIER_API_URL": api})
        assert status.returncode == 0 and f"{job_id} succeeded" in status.stdout, status.stdout + status.stderr

        # everything lives under ./var of the directory it was started in
        assert (tmp_path / "var" / "storage" / "results" / job_id / "result.png").is_file()
        assert (tmp_path / "var" / "redis").is_dir()

        children = descendants(dev.pid)
        assert len(children) >= 4, children  # redis, gunicorn master + worker, celery main + pool child
        dev.send_signal(signal.SIGINT)
        assert dev.wait(30) == 0, (tmp_path / "dev.log").read_text()
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if running(pid)], "processes left behind after SIGINT"
        assert "stopped" in (tmp_path / "dev.log").read_text()
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        for pid in children:  # only processes this test saw under its own `atelier dev`
            if running(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
