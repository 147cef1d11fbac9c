"""Batches through the real stack: gunicorn API + one Celery worker (the compose command lines) with the real VGG19
weights, the tests' own Redis and local storage; ``atelier batch`` as a subprocess. The stack is the session's
``local_stack`` (tests/conftest.py), shared with tests/e2e: starting another worker would cost seconds of CPU.

Tiny work (32 px, 3 iterations) keeps a job near a second on 2 cores. One worker on purpose: it makes the
interactive-before-bulk ordering deterministic, and with one worker kombu's default round-robin queue order would
visibly fail the test that sends two interactive jobs in a row (after the first, the bulk queue would come first).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from services.cli.dev import Child
from services.client import Client
from services.manifest import MANIFEST_NAME

from .conftest import image_bytes

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ATELIER = str(Path(sys.executable).parent / "atelier")
STYLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "style"
TINY = ["--size", "32", "--iterations", "3"]


@dataclass
class BatchStack:
    api_url: str
    client: Client
    redis: redis.Redis
    api: Child
    worker: Child

    def logs(self) -> str:
        return f"--- api ---\n{self.api.log_tail(10)}\n--- worker ---\n{self.worker.log_tail(30)}"

    def jobs(self) -> list[dict]:
        jobs, cursor = [], None
        while True:
            page, cursor = self.client.list_jobs(limit=100, cursor=cursor)
            jobs += page
            if not cursor:
                return jobs


@pytest.fixture(scope="module")
def batch_stack(local_stack) -> BatchStack:
    return BatchStack(local_stack.api_url, local_stack.client, local_stack.registry.redis, local_stack.api,
                      local_stack.worker)


def _make_folder(root: Path, count: int) -> list[str]:
    """``count`` tiny images in nested folders (png, jpg, webp), plus a text file and a corrupt jpg."""
    names = []
    formats = [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")]
    for i in range(count):
        ext, fmt = formats[i % 3]
        name = f"{['', 'a/', 'a/deeper/', 'b/'][i % 4]}img{i:02d}.{ext}"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(i, size=(36 + i % 5, 28), fmt=fmt))
        names.append(name)
    (root / "notes.txt").write_text("not an image")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    return names


def _cli(stack: BatchStack, *args: str) -> subprocess.Popen:
    env = dict(os.environ, ATELIER_API_URL=stack.api_url)
    return subprocess.Popen([ATELIER, "batch", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return {}


def test_folder_styled_end_to_end_interrupted_and_resumed(batch_stack, tmp_path):
    source_dir, out = tmp_path / "in", tmp_path / "out"
    names = _make_folder(source_dir, 20)
    style = str(STYLE_DIR / "vangogh_starry_night.jpg")
    args = [str(source_dir), "--style", style, "-o", str(out), *TINY]

    dry = subprocess.run([ATELIER, "batch", *args, "--dry-run"], capture_output=True, text=True,
                         env=dict(os.environ, ATELIER_API_URL=batch_stack.api_url))
    assert dry.returncode == 0, dry.stderr
    assert "would submit 21" in dry.stderr and "1 other files skipped" in dry.stderr and not out.exists()

    # First run: interrupted (SIGINT, as Ctrl-C) once a few results are in.
    first = _cli(batch_stack, *args)
    deadline = time.monotonic() + 180
    while sum(1 for e in _manifest(out).get("items", {}).values() if e.get("status") == "succeeded") < 3:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, batch_stack.logs()
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stderr
    assert "resume" in stderr
    manifest = _manifest(out)
    batch_id = manifest["batch_id"]

    # The gap no local write can close: the API accepted an item but the manifest never heard of it.
    submitted = [name for name, entry in manifest["items"].items() if entry.get("status") == "submitted"]
    if submitted:
        manifest["items"].pop(submitted[0])
        (out / MANIFEST_NAME).write_text(json.dumps(manifest))

    second = _cli(batch_stack, *args)
    _, stderr = second.communicate(timeout=300)
    assert second.returncode == 1, stderr  # the corrupt image is a failure...
    assert "b/broken.jpg" in stderr and "1 of 21 images failed" in stderr

    # ...and every other image has exactly one output, mirrored, from exactly one job.
    outputs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert outputs == sorted(str(Path(n).with_suffix(".png")) for n in names)
    children = [job for job in batch_stack.jobs() if job["batch_id"] == batch_id]
    assert sorted(job["inputs"]["content_name"] for job in children) == sorted(names)
    assert all(job["status"] == "succeeded" and job["queue"] == "bulk" for job in children)
    # Style targets computed once for the whole batch, reused by every other child.
    states = [job["metrics"]["style_targets"] for job in children]
    assert states.count("computed") == 1 and states.count("reused") == len(names) - 1, states

    # A third run has nothing to do and submits nothing.
    jobs_before = len(batch_stack.jobs())
    third = subprocess.run([ATELIER, "batch", *args], capture_output=True, text=True,
                           env=dict(os.environ, ATELIER_API_URL=batch_stack.api_url))
    assert third.returncode == 1 and len(batch_stack.jobs()) == jobs_before  # still reports the corrupt one

    # The zip holds the same results under the same names.
    zip_path = batch_stack.client.download_batch_zip(batch_id, tmp_path / "results.zip")
    with zipfile.ZipFile(zip_path) as archive:
        assert sorted(archive.namelist()) == outputs
        for name in outputs:
            assert archive.read(name) == (out / name).read_bytes()


def test_interactive_jobs_start_before_the_remaining_batch_children_and_cancel_keeps_results(batch_stack):
    client = batch_stack.client
    style = (STYLE_DIR / "munch_the_scream.jpg").read_bytes()
    params = {"size": 32, "iterations": 12}
    batch = client.create_batch([("scream.jpg", style)], params=params)
    client.add_batch_items(batch["id"], [(f"c{i}.png", image_bytes(100 + i)) for i in range(6)])
    deadline = time.monotonic() + 120
    while client.get_batch(batch["id"])["counts"]["running"] + client.get_batch(batch["id"])["counts"][
            "succeeded"] == 0:
        assert time.monotonic() < deadline, batch_stack.logs()
        time.sleep(0.05)
    waiting = {item["job_id"] for item in client.get_batch(batch["id"])["items"] if item["status"] == "queued"}
    assert len(waiting) >= 4
    singles = [client.submit(("single.png", image_bytes(200 + i)), [("scream.jpg", style)], params=params)
               for i in range(2)]
    finished = [client.wait(job["id"], timeout_s=120) for job in singles]
    assert all(job["status"] == "succeeded" and job["queue"] == "interactive" for job in finished)

    after = {item["job_id"]: client.get(item["job_id"]) for item in client.get_batch(batch["id"])["items"]}
    last_single_start = max(job["started_at"] for job in finished)
    overtaken = [job_id for job_id in waiting if after[job_id]["started_at"]
                 and after[job_id]["started_at"] < last_single_start]
    assert overtaken == [], "batch children queued before the single jobs started before them"

    # Cancel: queued children never run, the running one stops, finished results stay and are zipped.
    response = requests.post(f"{batch_stack.api_url}/v1/batches/{batch['id']}/cancel", timeout=10)
    assert response.status_code in (200, 202)
    deadline = time.monotonic() + 60
    while client.get_batch(batch["id"])["status"] != "canceled":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    view = client.get_batch(batch["id"])
    succeeded = [item for item in view["items"] if item["status"] == "succeeded"]
    canceled = [item for item in view["items"] if item["status"] == "canceled"]
    assert succeeded and canceled and len(succeeded) + len(canceled) == 6
    never_ran = [item for item in canceled if client.get(item["job_id"])["started_at"] is None]
    assert never_ran, "queued children must be canceled without running"
    time.sleep(1.0)
    assert all(client.get(item["job_id"])["started_at"] is None for item in never_ran)
    data = requests.get(f"{batch_stack.api_url}/v1/batches/{batch['id']}/results.zip", timeout=30).content
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(item["name"] for item in succeeded)


def test_a_folder_in_fast_mode_trains_on_a_sample_then_styles_every_image(batch_stack, tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    names = _make_folder(source, 5)
    train = json.dumps({"size": 32, "steps": 4, "batch_size": 1, "width": 0.125, "residual_blocks": 1})
    process = _cli(batch_stack, str(source), "--style", str(STYLE_DIR / "munch_the_scream.jpg"), "-o", str(out),
                   "--size", "32", "--mode", "fast", "--train-sample", "3", "--train-params", train)
    _stdout, stderr = process.communicate(timeout=300)
    # broken.jpg is refused on its own (exit 1); every real image is styled through the trained model.
    assert process.returncode == 1 and "broken.jpg" in stderr, stderr
    assert "mode fast: fast: asked for; training a style model" in stderr
    for name in names:
        assert (out / name).with_suffix(".png").exists(), (name, stderr)
    batch = batch_stack.client.get_batch(_manifest(out)["batch_id"])
    assert batch["mode"] == "fast" and batch["style_model"] and batch["counts"]["succeeded"] == 5
