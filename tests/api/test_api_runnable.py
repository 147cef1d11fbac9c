"""The door refuses what no worker could run, before anything is stored, and accepts what the engine handles.

Layer names and image geometry are checked against the static tables in ``shared.backbones`` (the engine's tests tie
those to the real networks); backbone availability against what live workers advertise (``services.capabilities``),
written here exactly as a worker writes it.
"""

from __future__ import annotations

import json

import pytest
from api_helpers import NOTHING, image_bytes

from services import capabilities

pytestmark = pytest.mark.integration


def _advertise(api, backbones: tuple[str, ...], pid: int = 1) -> None:
    capabilities.advertise(api.redis, capabilities.WorkerCapabilities(
        hostname="gpu-a", pid=pid, queues=("interactive", "bulk"), backbones=backbones, precision="float32",
        device="cpu", started_at=capabilities.now_iso()))


def _error(response) -> dict:
    assert response.status_code == 422, response.json
    return response.json["error"]


def test_an_unknown_layer_is_refused_naming_it_and_the_allowed_ones(api):
    error = _error(api.submit(params=json.dumps({"size": 32, "style_layers": ["block1_conv1", "block9_conv1"]})))
    assert error["code"] == "unknown_layer" and error["field"] == "style_layers"
    assert "'block9_conv1'" in error["message"] and "block5_conv4" in error["message"]
    assert api.leftovers() == NOTHING


def test_an_xception_layer_name_is_unknown_to_vgg19(api):
    error = _error(api.submit(params=json.dumps({"size": 32, "content_layers": ["block4_sepconv2_act"]})))
    assert error["code"] == "unknown_layer" and error["field"] == "content_layers"


def test_an_image_too_small_for_the_deepest_layer_is_refused_with_the_limit_and_its_scaled_size(api):
    error = _error(api.submit(params=json.dumps({"size": 16, "style_layers": ["block5_pool"]})))
    assert error["code"] == "image_too_small"
    assert "32 px" in error["message"] and "block5_pool" in error["message"] and "after scaling" in error["message"]
    assert api.leftovers() == NOTHING


def test_the_same_layer_at_a_size_that_fits_is_accepted(api):
    response = api.submit(params=json.dumps({"size": 32, "style_layers": ["block5_pool"]}))
    assert response.status_code == 202, response.json


@pytest.mark.parametrize("size", [(300, 3), (3, 300), (1, 1)])
def test_thin_and_tiny_images_are_accepted_because_the_engine_pads_them(api, size):
    response = api.submit(content=image_bytes(size=size), styles=[image_bytes(size=size)],
                          params=json.dumps({"size": 64}))
    assert response.status_code == 202, response.json


def test_a_backbone_no_live_worker_has_is_refused_while_such_workers_are_the_only_ones(api):
    _advertise(api, ("vgg19",))
    error = _error(api.submit(params=json.dumps({"size": 32, "backbone": "xception"})))
    assert error["code"] == "backbone_unavailable" and error["field"] == "backbone"
    assert "vgg19" in error["message"]
    assert api.leftovers() == NOTHING
    assert api.submit(params=json.dumps({"size": 32})).status_code == 202  # what they have is accepted

    _advertise(api, ("vgg19", "xception"), pid=2)  # a worker with the weights comes up
    assert api.submit(params=json.dumps({"size": 32, "backbone": "xception"})).status_code == 202


def test_jobs_queue_when_no_worker_is_registered_at_all(api):
    response = api.submit(params=json.dumps({"size": 32, "backbone": "efficientnetb7"}))
    assert response.status_code == 202, response.json


def test_a_withdrawn_worker_no_longer_counts(api):
    _advertise(api, ("vgg19",))
    capabilities.withdraw(api.redis, "gpu-a:1")
    assert api.submit(params=json.dumps({"size": 32, "backbone": "xception"})).status_code == 202


def test_capabilities_and_readiness_show_the_live_workers(api):
    assert api.client.get("/v1/capabilities").json == {
        "workers": [], "backbones": {"vgg19": 0, "xception": 0, "efficientnetb7": 0},
        "accepting": {"vgg19": True, "xception": True, "efficientnetb7": True}}
    _advertise(api, ("vgg19",))
    view = api.client.get("/v1/capabilities").json
    assert [worker["hostname"] for worker in view["workers"]] == ["gpu-a"]
    assert view["workers"][0]["precision"] == "float32" and view["workers"][0]["device"] == "cpu"
    assert view["backbones"] == {"vgg19": 1, "xception": 0, "efficientnetb7": 0}
    assert view["accepting"] == {"vgg19": True, "xception": False, "efficientnetb7": False}
    assert api.client.get("/readyz").json["workers"] == 1


def test_a_batch_whose_params_cannot_run_is_refused_before_anything_is_stored(api):
    import io

    response = api.client.post("/v1/batches", content_type="multipart/form-data", data={
        "style": [(io.BytesIO(image_bytes()), "s.jpg")],
        "content": [(io.BytesIO(image_bytes()), "a.jpg")],
        "params": json.dumps({"size": 16, "style_layers": ["block5_pool"]})})
    assert _error(response)["code"] == "image_too_small"
    assert api.leftovers() == NOTHING and not list(api.redis.scan_iter("atelier:batch:*"))
