"""POST /v1/styles at the door: what a training request must hold, and what it records (no worker here)."""

from __future__ import annotations

import io
import json

import pytest
from api_helpers import NOTHING, image_bytes

pytestmark = pytest.mark.integration


def _post(api, *, styles=1, train=0, params=None, **fields):
    data = {"style": [(io.BytesIO(image_bytes(color=(10, 20, 30 + i))), f"s{i}.jpg") for i in range(styles)],
            "train": [(io.BytesIO(image_bytes(color=(90, 9, i))), f"t{i}.jpg") for i in range(train)], **fields}
    if params is not None:
        data["params"] = json.dumps(params)
    return api.client.post("/v1/styles", data=data, content_type="multipart/form-data")


def test_a_training_is_recorded_and_queued_on_bulk(api):
    response = _post(api, train=2, params={"steps": 30, "size": 64})
    assert response.status_code == 202, response.json
    model = response.json
    assert response.headers["Location"] == f"/v1/styles/{model['id']}"
    assert model["status"] == "queued" and model["params"]["steps"] == 30 and model["params"]["width"] == 0.5
    assert model["inputs"] == {"style_names": ["s0.jpg"], "train_images": 2, "from_batch": None,
                               "builtin_training_set": False}
    assert api.redis.llen("bulk") == 1 and api.redis.llen("interactive") == 0
    record = api.registry.get(model["id"])
    assert record.kind == "train_style" and all(api.storage.exists(key) for key in record.inputs["train"])
    # A style model is not an image job: its own routes serve it, /v1/jobs does not.
    assert api.client.get(f"/v1/jobs/{model['id']}").status_code == 404
    assert [entry["id"] for entry in api.client.get("/v1/styles").json["styles"]] == [model["id"]]
    assert api.client.get("/v1/jobs").json["jobs"] == []


def test_no_training_images_means_the_builtin_set(api):
    assert _post(api).json["inputs"]["builtin_training_set"] is True


def test_from_batch_trains_on_that_batch_s_contents(api):
    batch = api.client.post("/v1/batches", content_type="multipart/form-data", data={
        "style": [(io.BytesIO(image_bytes()), "s.jpg")],
        "content": [(io.BytesIO(image_bytes(color=(1, 2, i))), f"c{i}.jpg") for i in range(3)]}).json
    model = _post(api, from_batch=batch["id"]).json
    assert model["inputs"]["train_images"] == 3 and model["inputs"]["from_batch"] == batch["id"]


@pytest.mark.parametrize("kwargs, status, code", [
    ({"styles": 0}, 400, "missing_style"),
    ({"params": {"stepz": 3}}, 422, "unknown_param"),
    ({"params": {"width": 9}}, 422, "param_out_of_range"),
    ({"params": {"size": 16, "style_layers": ["block5_pool"]}}, 422, "image_too_small"),
    ({"params": {"style_blend": [1, 2]}}, 422, "param_out_of_range"),
    ({"train": 1, "from_batch": "x" * 32}, 400, "train_and_from_batch"),
    ({"from_batch": "0" * 32}, 404, "batch_not_found"),
])
def test_bad_trainings_are_refused_and_leave_nothing(api, kwargs, status, code):
    response = _post(api, **kwargs)
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code
    assert api.leftovers() == NOTHING


def test_cancel_a_queued_training_and_unknown_models(api):
    model_id = _post(api).json["id"]
    canceled = api.client.post(f"/v1/styles/{model_id}/cancel")
    assert canceled.status_code == 200 and canceled.json["status"] == "canceled"
    assert api.client.get("/v1/styles/" + "0" * 32).json["error"]["code"] == "style_model_not_found"
