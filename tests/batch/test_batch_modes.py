"""``mode = optimize | fast | auto`` on POST /v1/batches: what is queued, what waits for a model, and why."""

from __future__ import annotations

import io
import json

import pytest

from api.batch_mode import GATYS_ITERATION_S_AT_512
from services.queue import queued_messages
from shared.geometry import job_output_iterations
from shared.params import StyleParams

from .conftest import image_bytes

pytestmark = pytest.mark.integration

TINY_TRAIN = json.dumps({"size": 32, "steps": 4, "batch_size": 1, "width": 0.125, "residual_blocks": 1})


def _create(batch_api, mode: str, contents: int = 2, params: dict | None = None, **fields):
    data = {"style": [(io.BytesIO(image_bytes(99)), "s.png")], "mode": mode,
            "content": [(io.BytesIO(image_bytes(i)), f"c{i}.png") for i in range(contents)],
            "params": json.dumps(params if params is not None else {"size": 32, "iterations": 2}), **fields}
    return batch_api.client.post("/v1/batches", data=data, content_type="multipart/form-data")


def _queued_ids(batch_api) -> list[str]:
    return [message["headers"]["id"] for queue in ("interactive", "bulk")
            for message in queued_messages(batch_api.redis, queue)]


def test_fast_without_a_model_queues_its_training_and_children_wait_for_it(batch_api):
    response = _create(batch_api, "fast", train_params=TINY_TRAIN)
    assert response.status_code == 201, response.json
    batch = response.json
    assert batch["mode"] == "fast" and "training a style model" in batch["mode_reason"]
    model_id = batch["style_model"]
    training = batch_api.registry.get(model_id)
    assert training.kind == "train_style" and training.params["steps"] == 4
    assert len(training.inputs["train"]) == 2 and training.inputs["for_batch"] == batch["id"]
    children = [batch_api.registry.get(item["job_id"]) for item in batch["items"]]
    assert all(child.params["style_model"] == model_id and child.inputs["styles"] == [] for child in children)
    # Only the training has a message; the children wait (queued, no message) until its worker releases them.
    assert _queued_ids(batch_api) == [model_id]


def test_the_reconciler_leaves_waiting_children_alone_until_the_training_ends(batch_api):
    from shared.settings import Settings
    from worker.reconciler import Reconciler

    batch = _create(batch_api, "fast", train_params=TINY_TRAIN).json
    settings = Settings(redis_url=batch_api.settings.redis_url, reconcile_grace_s=0)
    from services.queue import JobQueue

    reconciler = Reconciler(batch_api.registry, JobQueue(settings), settings)
    assert reconciler.run_once(now_s=10**10).requeued_missing == []
    batch_api.registry.request_cancel(batch["style_model"])  # the training ended (canceled)
    requeued = reconciler.run_once(now_s=10**10).requeued_missing
    assert sorted(requeued) == sorted(item["job_id"] for item in batch["items"])


def test_auto_optimizes_a_small_batch_and_trains_for_a_large_one_and_says_why(batch_api):
    defaults: dict = {}  # 512 px coarse to fine: the job whose cost auto weighs against training
    small = _create(batch_api, "auto", contents=1, params=defaults).json
    assert small["mode"] == "optimize" and small["mode_reason"].startswith("auto: 1 images")
    # priced by its rungs (about 194 output-size iterations' work), not as 100 iterations at 512 px
    per_image_s = GATYS_ITERATION_S_AT_512 * job_output_iterations(StyleParams())
    assert f"1 x {per_image_s:.3g} s" in small["mode_reason"] and per_image_s > 190 * GATYS_ITERATION_S_AT_512
    assert small["style_model"] is None
    large = _create(batch_api, "auto", contents=1, params=defaults, expected_items="500").json
    assert large["mode"] == "fast" and "501 images" in large["mode_reason"] and large["style_model"]
    assert "break-even at" in large["mode_reason"]


@pytest.mark.parametrize("fields, code", [
    ({"mode": "quick"}, "bad_mode"),
    ({"mode": "auto", "expected_items": "many"}, "bad_expected_items"),
    ({"mode": "fast", "train_params": '{"stepz": 3}'}, "unknown_param"),
])
def test_bad_mode_fields_are_refused_and_leave_nothing(batch_api, fields, code):
    before = batch_api.leftovers()
    response = _create(batch_api, **fields)
    assert response.status_code in (400, 422) and response.json["error"]["code"] == code
    assert batch_api.leftovers() == before
