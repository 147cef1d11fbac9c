"""Fast styles through the real stack (gunicorn API, Celery worker, Redis, moto S3, real VGG19 weights): train a
style model over HTTP, watch its progress and loss curve, then apply it to a content in one forward pass (and with
a few Gatys refinement iterations)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from PIL import Image

from shared.jobs import checkpoint_key, model_key

from .conftest import CONTENT, STYLE, Stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TINY = {"size": 32, "steps": 8, "batch_size": 1, "width": 0.125, "residual_blocks": 1, "checkpoint_every": 4,
        "progress_every": 2}


def _jpeg(seed: int, size=(48, 40)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def _wait_style(stack: Stack, model_id: str, timeout_s: float = 240) -> dict:
    return wait_until(lambda: (lambda m: m if m["status"] in ("succeeded", "failed", "canceled") else None)(
        requests.get(f"{stack.api_url}/v1/styles/{model_id}", timeout=10).json()), timeout_s,
        interval_s=0.3, what=f"style model {model_id} to finish")


def _train(stack: Stack, params: dict) -> str:
    files = [("style", ("s.jpg", STYLE.read_bytes())), ("train", ("a.jpg", CONTENT.read_bytes())),
             ("train", ("b.jpg", _jpeg(1)))]
    response = requests.post(f"{stack.api_url}/v1/styles", files=files, data={"params": json.dumps(params)},
                             timeout=30)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/styles/{response.json()['id']}"
    return response.json()["id"]


def _apply(stack: Stack, model_id: str, **params) -> dict:
    response = requests.post(f"{stack.api_url}/v1/jobs", files=[("content", ("c.jpg", CONTENT.read_bytes()))],
                             data={"params": json.dumps({"style_model": model_id, **params})}, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    return wait_until(lambda: (lambda j: j if j["status"] in ("succeeded", "failed", "canceled") else None)(
        requests.get(f"{stack.api_url}/v1/jobs/{job_id}", timeout=10).json()), 180, interval_s=0.3,
        what=f"job {job_id}")


def test_train_then_apply_a_style_model_through_the_stack(s3_stack: Stack):
    model_id = _train(s3_stack, TINY)
    model = _wait_style(s3_stack, model_id)
    assert model["status"] == "succeeded", (model, s3_stack.logs())
    assert model["progress"]["iteration"] == TINY["steps"] and model["inputs"]["train_images"] == 2
    curve = model["loss_curve"]
    assert [point[0] for point in curve] == [2, 4, 6, 8] and all(np.isfinite(point[2]) for point in curve)
    assert model["metrics"]["training_images"] == 2 and model["metrics"]["resumed_from_step"] == 0
    # The model is stored once, signed; the checkpoint is gone once the model exists.
    assert s3_stack.storage.exists(model_key(model_id)) and not s3_stack.storage.exists(checkpoint_key(model_id))
    listed = requests.get(f"{s3_stack.api_url}/v1/styles", timeout=10).json()["styles"]
    assert model_id in [entry["id"] for entry in listed]

    job = _apply(s3_stack, model_id, size=48)
    assert job["status"] == "succeeded", (job, s3_stack.logs())
    assert job["metrics"]["mode"] == "fast" and job["metrics"]["style_model"] == model_id
    assert max(job["result"]["width"], job["result"]["height"]) == 48
    png = requests.get(f"{s3_stack.api_url}{job['result']['url']}", timeout=10)
    image = np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB"))
    assert max(image.shape[:2]) == 48 and image.std() > 1  # a picture, not a flat fill

    refined = _apply(s3_stack, model_id, size=48, refine_iterations=2)
    assert refined["status"] == "succeeded", (refined, s3_stack.logs())
    assert refined["metrics"]["mode"] == "fast+refine" and refined["metrics"]["iterations_run"] == 2


def test_a_model_that_is_not_trained_yet_or_not_a_model_is_refused_at_the_door(s3_stack: Stack):
    files = [("content", ("c.jpg", CONTENT.read_bytes()))]
    unknown = requests.post(f"{s3_stack.api_url}/v1/jobs", files=files,
                            data={"params": json.dumps({"style_model": "0" * 32})}, timeout=30)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "style_model_not_found"
    with_styles = requests.post(f"{s3_stack.api_url}/v1/jobs", timeout=30,
                                files=files + [("style", ("s.jpg", STYLE.read_bytes()))],
                                data={"params": json.dumps({"style_model": "0" * 32})})
    assert with_styles.status_code == 422
    assert with_styles.json()["error"]["code"] == "style_images_with_style_model"


def test_cancel_a_training(s3_stack: Stack):
    model_id = _train(s3_stack, {**TINY, "steps": 2000, "progress_every": 1})
    wait_until(lambda: (requests.get(f"{s3_stack.api_url}/v1/styles/{model_id}", timeout=10).json()
                        .get("progress") or {}).get("iteration"), 120, what="the first training progress")
    response = requests.post(f"{s3_stack.api_url}/v1/styles/{model_id}/cancel", timeout=10)
    assert response.status_code in (200, 202)
    model = _wait_style(s3_stack, model_id, 120)
    assert model["status"] == "canceled" and model["progress"]["iteration"] < 2000
    assert not s3_stack.storage.exists(model_key(model_id))
    refused = requests.post(f"{s3_stack.api_url}/v1/jobs", files=[("content", ("c.jpg", CONTENT.read_bytes()))],
                            data={"params": json.dumps({"style_model": model_id})}, timeout=30)
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "style_model_not_ready"


def test_a_fast_batch_trains_on_its_contents_then_styles_every_item(s3_stack: Stack):
    files = [("style", ("s.jpg", STYLE.read_bytes())), ("content", ("a.jpg", CONTENT.read_bytes())),
             ("content", ("b/c.jpg", _jpeg(7)))]
    response = requests.post(f"{s3_stack.api_url}/v1/batches", files=files, timeout=30, data={
        "mode": "fast", "params": json.dumps({"size": 40}), "train_params": json.dumps({**TINY, "steps": 4})})
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["mode"] == "fast" and batch["style_model"]
    done = wait_until(lambda: (lambda b: b if b["status"] in ("finished", "canceled") else None)(
        requests.get(f"{s3_stack.api_url}/v1/batches/{batch['id']}", timeout=10).json()), 240, interval_s=0.3,
        what="the fast batch")
    assert done["counts"]["succeeded"] == 2, (done, s3_stack.logs())
    model = requests.get(f"{s3_stack.api_url}/v1/styles/{batch['style_model']}", timeout=10).json()
    assert model["status"] == "succeeded" and model["inputs"]["train_images"] == 2
    for item in done["items"]:
        job = requests.get(f"{s3_stack.api_url}/v1/jobs/{item['job_id']}", timeout=10).json()
        assert job["metrics"]["mode"] == "fast" and job["metrics"]["style_model"] == batch["style_model"]
