"""The batch routes through Flask's test client, on a real Redis and local storage, with a real Celery producer:
child jobs are ordinary jobs on the bulk queue, names are idempotent, bad input leaves nothing behind, cancel and
the results zip work on what the children's records say."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from services.queue import queued_messages
from shared.images import encode_png
from shared.jobs import JobStatus, result_key
from shared.tasks import BULK_QUEUE, INTERACTIVE_QUEUE

from .conftest import image_bytes

pytestmark = pytest.mark.integration


def test_create_batch_with_contents_makes_child_jobs_on_the_bulk_queue(batch_api):
    response = batch_api.create(params=json.dumps({"size": 32, "iterations": 3}),
                                contents=[("a/x.jpg", image_bytes(1)), ("b/y.png", image_bytes(2))])
    assert response.status_code == 201, response.json
    batch = response.json
    assert response.headers["Location"] == f"/v1/batches/{batch['id']}"
    assert batch["total"] == 2 and batch["counts"]["queued"] == 2 and batch["status"] == "running"
    assert [item["name"] for item in batch["items"]] == ["a/x.jpg", "b/y.png"]

    jobs = batch_api.client.get("/v1/jobs?limit=100").json["jobs"]
    assert {job["id"] for job in jobs} == {item["job_id"] for item in batch["items"]}
    for job in jobs:
        assert job["batch_id"] == batch["id"] and job["queue"] == BULK_QUEUE
        assert job["params"]["size"] == 32 and job["params"]["iterations"] == 3
    queued = [m["decoded_body"][0][0] for m in queued_messages(batch_api.redis, BULK_QUEUE)]
    assert sorted(queued) == sorted(item["job_id"] for item in batch["items"])
    assert batch_api.redis.llen(INTERACTIVE_QUEUE) == 0


def test_adding_a_known_name_returns_its_job_and_queues_nothing(batch_api):
    batch = batch_api.create().json
    first = batch_api.add(batch["id"], [("x.png", image_bytes(1))])
    assert first.status_code == 202
    (item,) = first.json["items"]
    assert item["created"] is True
    again = batch_api.add(batch["id"], [("x.png", image_bytes(1)), ("z.png", image_bytes(3))])
    assert again.status_code == 202
    assert again.json["items"][0] == {"name": "x.png", "job_id": item["job_id"], "created": False}
    assert again.json["items"][1]["created"] is True
    only_known = batch_api.add(batch["id"], [("z.png", image_bytes(3))])
    assert only_known.status_code == 200 and only_known.json["items"][0]["created"] is False
    assert batch_api.redis.llen(BULK_QUEUE) == 2
    assert batch_api.client.get(f"/v1/batches/{batch['id']}").json["total"] == 2


def test_items_by_sha256_of_stored_inputs(batch_api):
    import hashlib

    data = image_bytes(5)
    batch = batch_api.create(contents=[("first.png", data)]).json
    sha = hashlib.sha256(data).hexdigest()
    response = batch_api.client.post(f"/v1/batches/{batch['id']}/items", json={"items": [{"sha256": sha,
                                                                                          "name": "again.png"}]})
    assert response.status_code == 202, response.json
    job = batch_api.registry.get(response.json["items"][0]["job_id"])
    assert job.inputs["content"] == f"inputs/{sha}.png"
    missing = batch_api.client.post(f"/v1/batches/{batch['id']}/items",
                                    json={"items": [{"sha256": "0" * 64, "name": "nope.png"}]})
    assert missing.status_code == 404 and missing.json["error"]["code"] == "input_not_found"
    bad = batch_api.client.post(f"/v1/batches/{batch['id']}/items", json={"items": [{"sha256": "xyz", "name": "n"}]})
    assert bad.status_code == 400 and bad.json["error"]["code"] == "bad_sha256" and "'xyz'" in bad.json["error"][
        "message"]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"styles": []}, 400, "missing_style"),
        ({"params": "{not json"}, 400, "bad_params_json"),
        ({"params": json.dumps({"size": 5})}, 422, None),
        ({"params": json.dumps({"style_blend": [0.5, 0.5]})}, 422, None),
        ({"styles": [b"not an image"]}, 415, None),
        ({"contents": [("ok.png", image_bytes(1)), ("broken.jpg", b"\xff\xd8 broken")]}, 415, None),
        ({"contents": [("../escape.png", image_bytes(1))]}, 400, "bad_item_name"),
        ({"contents": [("same.png", image_bytes(1)), ("same.png", image_bytes(2))]}, 400, "duplicate_item_name"),
    ],
)
def test_rejected_create_leaves_nothing_behind(batch_api, kwargs, status, code):
    if kwargs.get("styles") == []:
        response = batch_api.client.post("/v1/batches", data={"params": "{}"}, content_type="multipart/form-data")
    else:
        response = batch_api.create(**kwargs)
    assert response.status_code == status, response.json
    error = response.json["error"]
    assert error["message"] and (code is None or error["code"] == code)
    assert batch_api.leftovers() == {"redis": [], "objects": []}


def test_rejected_items_leave_the_batch_as_it_was(batch_api):
    batch = batch_api.create(contents=[("a.png", image_bytes(1))]).json
    before = batch_api.leftovers()
    response = batch_api.add(batch["id"], [("b.png", image_bytes(2)), ("c.jpg", b"GIF89a nope")])
    assert response.status_code == 415
    assert "content[1]" in response.json["error"]["message"] or response.json["error"]["field"] == "content[1]"
    assert batch_api.leftovers() == before
    unknown = batch_api.client.post(f"/v1/batches/{batch['id']}/items", data={"contents": "x"},
                                    content_type="multipart/form-data")
    assert unknown.status_code == 400 and unknown.json["error"]["code"] == "unknown_field"
    assert batch_api.client.get("/v1/batches/nope").status_code == 404
    assert batch_api.client.get("/v1/batches/nope").json["error"]["code"] == "batch_not_found"
    assert batch_api.add("nope", [("b.png", image_bytes(2))]).status_code == 404


def test_queue_failure_rolls_back_the_request(batch_api, monkeypatch):
    from shared.errors import Unavailable

    batch = batch_api.create(contents=[("a.png", image_bytes(1))]).json
    before = batch_api.leftovers()
    app_queue = batch_api.client.application.extensions["atelier"].queue
    calls = []

    def enqueue(job_id, queue="interactive", kind="stylize"):
        calls.append(job_id)
        if len(calls) == 2:
            raise Unavailable("queue_unavailable", "broker down")
        return real(job_id, queue=queue, kind=kind)

    real = app_queue.enqueue
    monkeypatch.setattr(app_queue, "enqueue", enqueue)
    response = batch_api.add(batch["id"], [("b.png", image_bytes(2)), ("c.png", image_bytes(3))])
    assert response.status_code == 503
    after = batch_api.leftovers()
    # The first child's message was published before the failure; its record is gone, so a worker drops it.
    assert after["objects"] == before["objects"]
    assert after["redis"] == before["redis"]
    assert batch_api.client.get(f"/v1/batches/{batch['id']}").json["total"] == 1


def test_pagination_counts_and_cancel(batch_api):
    contents = [(f"d/{i:02d}.png", image_bytes(i)) for i in range(7)]
    batch = batch_api.create(contents=contents).json
    page = batch_api.client.get(f"/v1/batches/{batch['id']}?limit=3&offset=3").json
    assert [item["name"] for item in page["items"]] == ["d/03.png", "d/04.png", "d/05.png"]
    assert page["next_offset"] == 6 and page["total"] == 7
    assert batch_api.client.get(f"/v1/batches/{batch['id']}?limit=0").status_code == 400

    items = batch_api.client.get(f"/v1/batches/{batch['id']}").json["items"]
    # One child finished, one running, the rest queued.
    done, running = items[0]["job_id"], items[1]["job_id"]
    batch_api.registry.mark_running(done, "h", 1)
    batch_api.storage.put(result_key(done), encode_png(_pixels()), "image/png")
    batch_api.registry.finish(done, JobStatus.SUCCEEDED, result={"key": result_key(done), "width": 4, "height": 4})
    batch_api.registry.mark_running(running, "h", 1)
    batch_api.registry.set_progress(running, {"iteration": 1, "iterations": 2})
    view = batch_api.client.get(f"/v1/batches/{batch['id']}").json
    assert view["counts"] == {"queued": 5, "running": 1, "succeeded": 1, "failed": 0, "canceled": 0}
    assert view["progress"] == pytest.approx(1.5 / 7, abs=1e-3)
    assert view["items"][0]["result_url"] == f"/v1/jobs/{done}/result"

    response = batch_api.client.post(f"/v1/batches/{batch['id']}/cancel")
    assert response.status_code == 202 and response.json["status"] == "canceling"
    view = batch_api.client.get(f"/v1/batches/{batch['id']}").json
    assert view["counts"] == {"queued": 0, "running": 1, "succeeded": 1, "failed": 0, "canceled": 5}
    assert batch_api.registry.get(running).cancel_requested is True
    assert batch_api.registry.get(done).status == "succeeded"  # finished results are kept
    refused = batch_api.add(batch["id"], [("late.png", image_bytes(50))])
    assert refused.status_code == 409 and refused.json["error"]["code"] == "batch_canceled"

    zipped = batch_api.client.get(f"/v1/batches/{batch['id']}/results.zip")
    assert zipped.status_code == 200 and zipped.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(zipped.data)) as archive:
        assert archive.namelist() == ["d/00.png"]
        assert archive.read("d/00.png") == batch_api.storage.get(result_key(done))


def _pixels():
    import numpy as np

    return np.full((4, 4, 3), 77, np.uint8)
