"""POST /v1/jobs: the happy path writes inputs, record and message; every bad input is refused and leaves nothing."""

from __future__ import annotations

import base64
import io
import json

import pytest
from api_helpers import NOTHING, image_bytes, png_bomb
from PIL import Image

from services.queue import JobQueue, queued_messages
from services.registry import JobRegistry
from services.storage import LocalStorage
from shared.jobs import JobStatus
from shared.params import BACKBONES, StyleParams
from shared.tasks import BULK_QUEUE, INTERACTIVE_QUEUE, STYLIZE_TASK

pytestmark = pytest.mark.integration


def test_submit_stores_inputs_writes_record_and_queues_only_the_id(api):
    content = image_bytes(size=(80, 60))
    response = api.submit(content=content, params='{"size": 64, "iterations": 5}')

    assert response.status_code == 202, response.json
    job = response.json
    assert response.headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["result"] is None and job["progress"] is None
    assert job["params"] == StyleParams(size=64, iterations=5).to_dict()
    assert job["batch_id"] is None and job["previews"] == [] and job["error"] is None

    record = api.registry.get(job["id"])
    assert record is not None and record.status == JobStatus.QUEUED
    stored = api.storage.get(record.inputs["content"])
    assert stored == content  # the upload itself, content-addressed
    assert record.inputs["content"].startswith("inputs/") and record.inputs["content"].endswith(".jpg")
    assert all(api.storage.exists(key) for key in record.inputs["styles"])

    raw_messages = api.redis.lrange(INTERACTIVE_QUEUE, 0, -1)
    assert len(raw_messages) == 1
    message = queued_messages(api.redis, INTERACTIVE_QUEUE)[0]
    assert message["headers"]["task"] == STYLIZE_TASK
    assert message["headers"]["id"] == job["id"]  # task id = job id
    args, kwargs, _ = message["decoded_body"]
    assert args == [job["id"]] and kwargs == {}
    # No image bytes travel through the broker.
    assert len(raw_messages[0]) < 4096
    assert base64.b64encode(content[:48]) not in raw_messages[0] and content[:48] not in raw_messages[0]


def test_same_upload_is_stored_once(api):
    content = image_bytes(size=(50, 50), color=(1, 2, 3))
    first = api.submit(content=content).json
    second = api.submit(content=content).json
    one, two = api.registry.get(first["id"]), api.registry.get(second["id"])
    assert one.inputs["content"] == two.inputs["content"]
    assert len(api.storage.list_keys("inputs/")) == 2  # one content, one style (same style bytes both times)
    assert first["id"] != second["id"]


def test_ids_are_unguessable(api):
    ids = [api.submit().json["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(len(job_id) >= 32 for job_id in ids)


def test_bulk_queue_is_selectable(api):
    job = api.submit(queue=BULK_QUEUE).json
    assert api.redis.llen(BULK_QUEUE) == 1 and api.redis.llen(INTERACTIVE_QUEUE) == 0
    assert job["queue"] == BULK_QUEUE


def test_several_styles_with_blend(api):
    styles = [image_bytes(color=(10, 10, 10)), image_bytes(fmt="PNG", color=(250, 250, 0))]
    response = api.submit(styles=styles, params='{"style_blend": [1, 3]}')
    assert response.status_code == 202, response.json
    record = api.registry.get(response.json["id"])
    assert len(record.inputs["styles"]) == 2 and record.inputs["styles"][1].endswith(".png")
    assert record.params["style_blend"] == [1.0, 3.0]


def _tiff() -> bytes:
    return image_bytes(fmt="TIFF")


def _truncated_jpeg() -> bytes:
    data = image_bytes(size=(64, 64))
    return data[: len(data) // 2]


BAD_CONTENT = [
    ("text", lambda: b"hello, not an image", 415, "unsupported_media_type"),
    ("zero bytes", lambda: b"", 415, "unsupported_media_type"),
    ("truncated jpeg", _truncated_jpeg, 415, "corrupt_image"),
    ("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 415,
     "unsupported_media_type"),
    ("tiff (refused format)", _tiff, 415, "unsupported_media_type"),
    ("polyglot", lambda: b"GIF89a" + b"<script>alert(1)</script>" * 10, 415, "corrupt_image"),
    ("pixel bomb", lambda: png_bomb(60000, 60000), 413, "image_too_large"),
]


@pytest.mark.parametrize(("label", "make", "status", "code"), BAD_CONTENT, ids=[row[0] for row in BAD_CONTENT])
def test_bad_content_image_is_refused_and_leaves_nothing(api, label, make, status, code):
    response = api.submit(content=make())
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["code"] == code and error["field"] == "content"
    assert "content" in error["message"]
    assert api.leftovers() == NOTHING


def test_bad_second_style_is_refused_after_valid_parts_and_leaves_nothing(api):
    response = api.submit(styles=[image_bytes(), b"not an image"])
    assert response.status_code == 415
    assert response.json["error"]["field"] == "style[1]"
    assert api.leftovers() == NOTHING


def test_image_over_pixel_limit_is_413(make_harness, make_settings):
    api = make_harness(make_settings(max_image_pixels=1000))
    response = api.submit(content=image_bytes(size=(40, 30)))  # 1200 pixels
    assert response.status_code == 413
    assert response.json["error"]["code"] == "image_too_large"
    assert "1200" in response.json["error"]["message"] and "1000" in response.json["error"]["message"]
    assert api.leftovers() == NOTHING


def test_body_over_upload_limit_is_413_json(make_harness, make_settings):
    api = make_harness(make_settings(max_upload_bytes=2000))
    big = io.BytesIO()
    Image.effect_noise((128, 128), 64).convert("RGB").save(big, "PNG")  # noise does not compress: > 2000 bytes
    response = api.submit(content=big.getvalue())
    assert response.status_code == 413
    assert response.json["error"]["code"] == "upload_too_large"
    assert "2000" in response.json["error"]["message"]
    assert api.leftovers() == NOTHING


BAD_PARAMS = [
    ('{"size": -5}', 422, "param_out_of_range", "size"),
    ('{"iterations": 1e12}', 422, "param_out_of_range", "iterations"),
    ('{"backbone": "resnet1000"}', 422, "param_out_of_range", "backbone"),
    ('{"style_weight": "heavy"}', 422, "param_out_of_range", "style_weight"),
    ('{"colour": 1}', 422, "unknown_param", "colour"),
    ('{"style_blend": [1, 2]}', 422, "param_out_of_range", "style_blend"),  # one style image, two weights
    ("not json", 400, "bad_params_json", "params"),
    ("[1, 2]", 400, "bad_params_json", "params"),
]


@pytest.mark.parametrize(("params", "status", "code", "field"), BAD_PARAMS, ids=[row[0] for row in BAD_PARAMS])
def test_bad_params_are_refused_and_leave_nothing(api, params, status, code, field):
    response = api.submit(params=params)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["code"] == code and error["field"] == field
    assert api.leftovers() == NOTHING


def test_out_of_range_message_gives_the_allowed_range(api):
    message = api.submit(params='{"size": 99999}').json["error"]["message"]
    assert "99999" in message and "16" in message and "4096" in message


def test_unknown_backbone_message_lists_the_backbones(api):
    message = api.submit(params='{"backbone": "resnet1000"}').json["error"]["message"]
    assert "resnet1000" in message and all(name in message for name in BACKBONES)


MALFORMED = [
    ("missing style", {"styles": []}, "missing_style", "style"),
    ("unknown field", {"extra": {"colour": "red"}}, "unknown_field", "colour"),
    ("bad queue", {"extra": {"queue": "urgent"}}, "bad_queue", "queue"),
]


@pytest.mark.parametrize(("label", "kwargs", "code", "field"), MALFORMED, ids=[row[0] for row in MALFORMED])
def test_malformed_requests_are_400_and_leave_nothing(api, label, kwargs, code, field):
    response = api.submit(styles=kwargs.get("styles"), **kwargs.get("extra", {}))
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == code and response.json["error"]["field"] == field
    assert api.leftovers() == NOTHING


def test_missing_content_is_400(api):
    response = api.client.post("/v1/jobs", data={"style": (io.BytesIO(image_bytes()), "s.jpg")},
                               content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "missing_content"
    assert api.leftovers() == NOTHING


def test_content_as_text_field_is_400(api):
    response = api.client.post("/v1/jobs", data={"content": "cat.jpg", "style": (io.BytesIO(image_bytes()), "s.jpg")},
                               content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] in ("not_a_file", "missing_content")
    assert api.leftovers() == NOTHING


def test_not_multipart_is_400(api):
    response = api.client.post("/v1/jobs", data=json.dumps({"content": "x"}), content_type="application/json")
    assert response.status_code == 400 and response.json["error"]["code"] == "expected_multipart"
    assert api.leftovers() == NOTHING


def test_broker_down_gives_503_and_rolls_back_record_and_new_inputs(make_harness, make_settings):
    from services.devstack import free_port

    settings = make_settings()
    healthy = make_harness(settings)
    kept = healthy.submit(content=image_bytes(color=(9, 9, 9))).json  # its inputs exist before the failing request
    kept_record = healthy.registry.get(kept["id"])
    before = healthy.leftovers()

    broken = make_harness(settings, queue=JobQueue(f"redis://127.0.0.1:{free_port()}/0"))
    response = broken.submit(content=image_bytes(color=(9, 9, 9)), styles=[image_bytes(color=(7, 70, 7))])
    assert response.status_code == 503
    assert response.json["error"]["code"] == "queue_unavailable"
    after = healthy.leftovers()
    # Same records, same messages; the shared content input stays (another job uses it), the new style is gone.
    assert after == before
    assert healthy.storage.exists(kept_record.inputs["content"])


def test_redis_down_gives_503_and_leaves_no_input(make_harness, make_settings):
    from services.devstack import free_port

    settings = make_settings()
    broken = make_harness(settings, registry=JobRegistry.from_url(f"redis://127.0.0.1:{free_port()}/0"))
    response = broken.submit()
    assert response.status_code == 503 and response.json["error"]["code"] == "redis_unavailable"
    assert broken.leftovers() == NOTHING


def test_storage_down_gives_503_and_leaves_nothing(make_harness, make_settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("storage root cannot live under a file")
    broken = make_harness(make_settings(), storage=LocalStorage(blocker / "storage"))
    response = broken.submit()
    assert response.status_code == 503 and response.json["error"]["code"] == "storage_unavailable"
    assert broken.leftovers() == NOTHING
