"""Property-based fuzzing end to end: odd multipart structures and odd images, through the real app, a real Redis
and a real Celery worker (random VGG19 weights via the test-only ``ATELIER_TEST_RANDOM_WEIGHTS=1``; tiny sizes and
1-2 iterations so every job takes about a second).

Hypothesis varies the multipart structure (content and style parts missing, duplicated, sent as text fields instead
of files; ``params`` as a field, as a file part, twice; an unknown part) and the images (1x1, thin 4000x2 and 2x4000,
large but legal, uniform or textured, in every mode Pillow opens: 1, L, P, RGB, RGBA, CMYK, I;16, I, F, LA, PA,
YCbCr, each saved as JPEG, PNG, WEBP, GIF or BMP where Pillow can write that mode to that format).

The invariant, for every generated request:

- an answer other than ``202`` is a 4xx JSON error with a code, and nothing of it is left behind (no job record,
  no stored input);
- a ``202`` job ends ``succeeded``, or ``failed`` with a user-facing code that is not ``internal_error``.

All outcomes are collected first and asserted together, so one run lists every failing request.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from PIL import Image

from services.cli.dev import Child
from services.commands import worker_argv
from shared.celery_config import make_celery

from .conftest import SecureApi

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXAMPLES = 20  # about a third are refused at the door; the rest (10-16 jobs) run on the worker
JOB_TIMEOUT_S = 150.0
WORKER_READY_S = 120.0
TERMINAL = {"succeeded", "failed", "canceled"}

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "LA", "PA", "YCbCr"]
FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP"]
SIZES = st.sampled_from([(1, 1), (4000, 2), (2, 4000), (1200, 900)]) | st.tuples(st.integers(1, 96),
                                                                                   st.integers(1, 96))


@dataclass(frozen=True)
class ImageSpec:
    mode: str
    fmt: str
    size: tuple[int, int]
    uniform: bool

    def encode(self) -> tuple[bytes, str]:
        """The bytes, and what was really written (a mode the format cannot hold is converted the way the format's
        own writer would need it, so the file is still a valid image of that format)."""
        width, height = self.size
        if self.uniform:
            rgb = Image.new("RGB", self.size, (90, 140, 200))
        else:
            noise = np.random.default_rng(width * 7919 + height).integers(0, 255, (height, width, 3), dtype=np.uint8)
            rgb = Image.fromarray(noise)
        image = rgb.convert(self.mode) if self.mode not in ("I;16", "I", "F", "LA", "PA") else _special(rgb, self.mode)
        buffer = io.BytesIO()
        try:
            image.save(buffer, self.fmt)
            written = self.mode
        except (OSError, ValueError, KeyError):
            buffer = io.BytesIO()
            fallback = image.convert("RGBA" if "A" in self.mode and self.fmt in ("PNG", "WEBP") else "RGB")
            fallback.save(buffer, self.fmt)
            written = fallback.mode
        return buffer.getvalue(), f"{self.mode}->{written} {self.fmt} {width}x{height}" + (" uniform" if self.uniform
                                                                                          else "")


def _special(rgb: Image.Image, mode: str) -> Image.Image:
    grey = rgb.convert("L")
    if mode == "I;16":
        return Image.fromarray((np.asarray(grey, dtype=np.uint16) * 257).astype(np.uint16))  # mode I;16
    if mode == "I":
        return grey.convert("I")
    if mode == "F":
        return grey.convert("F")
    if mode == "LA":
        return rgb.convert("LA")
    return rgb.convert("P").convert("PA")


images = st.builds(ImageSpec, st.sampled_from(MODES), st.sampled_from(FORMATS), SIZES, st.booleans())
# How one image-bearing part is sent: as a file part (right) or as a text field (wrong).
part_kind = st.sampled_from(["file"] * 5 + ["field"])
params_values = st.fixed_dictionaries(
    {"size": st.sampled_from([16, 24, 32, 48, 64]), "iterations": st.integers(1, 2)},
    optional={"optimizer": st.sampled_from(["lbfgs", "adam"]), "init": st.sampled_from(["content", "noise", "style"]),
              "style_scale": st.sampled_from([0.1, 0.5, 1.0, 4.0]),
              "preserve_color": st.sampled_from(["none", "luminance", "histogram"])},
).map(lambda p: {**p, "progress_every": 1, "precision": "float32"})
params_how = st.sampled_from(["field"] * 6 + ["absent", "file", "twice"])

# Mostly well-formed requests (one content file, 1-2 style files, params as a field), so that 10-20 jobs reach the
# worker; the rest vary the structure: parts missing, duplicated, sent as text fields, params as a file or twice, an
# unknown part.
well_formed = st.fixed_dictionaries({
    "content": st.tuples(images, st.just("file")).map(lambda part: [part]),
    "style": st.lists(st.tuples(images, st.just("file")), min_size=1, max_size=2),
    "params": params_values,
    "params_how": st.just("field"),
    "unknown_part": st.just(False),
})
odd_structure = st.fixed_dictionaries({
    "content": st.lists(st.tuples(images, part_kind), min_size=0, max_size=2),
    "style": st.lists(st.tuples(images, part_kind), min_size=0, max_size=3),
    "params": params_values,
    "params_how": params_how,
    "unknown_part": st.booleans(),
})
requests_ = st.sampled_from([True] * 3 + [False] * 2).flatmap(lambda ok: well_formed if ok else odd_structure)


@dataclass
class Outcome:
    request: str
    status: int
    body: Any
    job_id: str | None = None
    final: dict[str, Any] | None = None


@pytest.fixture
def fuzz_api(make_secure_api, tmp_path: Path) -> Iterator[SecureApi]:
    """The app (auth on) and one real Celery worker on the same Redis database and storage directory."""
    api: SecureApi = make_secure_api(rate_limit_per_min=0, max_queued_jobs=0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_")}
    env.update({"ATELIER_REDIS_URL": api.settings.redis_url, "ATELIER_STORAGE": api.settings.storage,
                "ATELIER_TEST_RANDOM_WEIGHTS": "1", "ATELIER_PROGRESS_MIN_INTERVAL_S": "0",
                "ATELIER_PREVIEW_EVERY": "0", "PYTHONUNBUFFERED": "1"})
    worker = Child("worker", worker_argv(hostname=f"fuzz-{os.getpid()}@%h"), env, tmp_path / "worker.log",
                   Path(__file__).resolve().parents[2])
    celery = make_celery(api.settings)
    try:
        deadline = time.monotonic() + WORKER_READY_S
        while not celery.control.ping(timeout=0.5):
            assert worker.alive(), worker.log_tail(40)
            assert time.monotonic() < deadline, "worker not ready:\n" + worker.log_tail(40)
        api.worker = worker  # type: ignore[attr-defined]
        yield api
    finally:
        celery.close()
        worker.stop()


def _stored_inputs(api: SecureApi) -> set[str]:
    root = Path(api.settings.storage.removeprefix("file://")) / "inputs"
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()} if root.exists() else set()


def _send(api: SecureApi, token: str, generated: dict[str, Any]) -> tuple[Any, str]:
    data: list[tuple[str, Any]] = []
    shown = []
    for name in ("content", "style"):
        for index, (spec, kind) in enumerate(generated[name]):
            blob, label = spec.encode()
            if kind == "file":
                data.append((name, (io.BytesIO(blob), f"{name}{index}.{spec.fmt.lower()}")))
            else:
                data.append((name, blob.decode("latin-1")))
            shown.append(f"{name}[{kind}]={label}")
    params = json.dumps(generated["params"])
    how = generated["params_how"]
    if how == "field":
        data.append(("params", params))
    elif how == "file":
        data.append(("params", (io.BytesIO(params.encode()), "params.json")))
    elif how == "twice":
        data += [("params", params), ("params", params)]
    if generated["unknown_part"]:
        data.append(("styles", "oops"))
    shown.append(f"params[{how}]={params}" + (" +unknown part 'styles'" if generated["unknown_part"] else ""))
    from werkzeug.datastructures import MultiDict  # noqa: PLC0415

    response = api.client.post("/v1/jobs", data=MultiDict(data), content_type="multipart/form-data",
                               headers=api.headers(token))
    return response, "; ".join(shown)


def test_fuzzed_requests_end_in_a_4xx_or_a_finished_job(fuzz_api: SecureApi):
    api = fuzz_api
    token = api.keys.create("fuzz-e2e").token
    outcomes: list[Outcome] = []
    door: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(generated=requests_)
    def submit(generated: dict[str, Any]) -> None:
        records, inputs = api.job_records(), _stored_inputs(api)
        response, shown = _send(api, token, generated)
        body = response.get_json(silent=True)
        outcomes.append(Outcome(shown, response.status_code, body,
                                job_id=body.get("id") if response.status_code == 202 and body else None))
        if response.status_code == 202:
            return
        if not (400 <= response.status_code < 500 and isinstance(body, dict) and body.get("error", {}).get("code")):
            door.append(f"{shown} -> {response.status_code} {response.get_data()[:200]!r}")
        elif api.job_records() != records or _stored_inputs(api) != inputs:
            door.append(f"{shown} -> {response.status_code} {body['error']['code']} but left a record or input")

    submit()

    accepted = [outcome for outcome in outcomes if outcome.job_id]
    deadline = time.monotonic() + JOB_TIMEOUT_S
    for outcome in accepted:
        while True:
            record = api.client.get(f"/v1/jobs/{outcome.job_id}", headers=api.headers(token)).get_json()
            if record["status"] in TERMINAL or time.monotonic() > deadline:
                outcome.final = record
                break
            time.sleep(0.2)

    bad_jobs = []
    for outcome in accepted:
        final = outcome.final or {}
        error = final.get("error") or {}
        if final.get("status") == "succeeded" or (final.get("status") == "failed" and error.get("code") and
                                                  error["code"] != "internal_error"):
            continue
        bad_jobs.append(f"{outcome.request} -> 202, ended {final.get('status')} "
                        f"{error.get('code')}: {str(error.get('message'))[:160]}")
    codes: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.status) if outcome.job_id is None else (outcome.final or {}).get("status", "?")
        if outcome.job_id is None and isinstance(outcome.body, dict):
            key += " " + str(outcome.body.get("error", {}).get("code"))
        elif outcome.final and outcome.final.get("error"):
            key += " " + str(outcome.final["error"].get("code"))
        codes[key] = codes.get(key, 0) + 1
    print(f"\nfuzz e2e: {len(outcomes)} requests, {len(accepted)} jobs run; outcomes {codes}")
    assert 5 <= len(accepted), f"too few jobs ran to mean anything: {codes}"
    assert door == [], "answers that broke the door's invariant:\n" + "\n".join(door)
    assert bad_jobs == [], ("accepted jobs that did not end succeeded / failed with a user-facing code:\n"
                            + "\n".join(bad_jobs) + "\n--- worker log ---\n" + api.worker.log_tail(30))
