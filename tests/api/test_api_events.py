"""The live-event routes (api/blueprints/events.py) over real HTTP, on a real Redis, with authentication on.

The app is served by werkzeug in a thread (as the Schemathesis test does); job records are changed through the real
``JobRegistry`` from the test, playing the worker (the real worker and gunicorn are in
tests/e2e/test_events_e2e.py). A client reads the streams with ``services.sse_client``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from werkzeug.serving import make_server

from api.app import create_app
from services import sse_client
from services.batches import BatchRegistry, new_batch_record
from services.devstack import free_port
from services.registry import JobRegistry
from services.tenants import KeyStore
from shared.jobs import JobRecord, new_job_id, new_job_record, new_style_model_record, preview_key
from shared.settings import Settings

pytestmark = pytest.mark.integration


class Served:
    def __init__(self, base: str, registry: JobRegistry, keys: KeyStore) -> None:
        self.base, self.registry = base, registry
        self.token = keys.create("acme").token
        self.other_token = keys.create("globex").token

    def new_job(self, tenant: str = "acme", **fields: Any) -> str:
        job_id = new_job_id()
        record = new_job_record(job_id, params={"size": 32}, content_key="inputs/c.jpg", style_keys=["inputs/s.jpg"],
                                content_name="c.jpg", style_names=["s.jpg"], queue="interactive", tenant=tenant)
        for name, value in fields.items():
            setattr(record, name, value)
        self.registry.create(record)
        return job_id

    def open(self, path: str, token: str | None = None, **kwargs: Any):
        return sse_client.open_stream(self.base + path, token=token or self.token, timeout_s=10, **kwargs)


def _serve(redis_url: str, tmp_path: Any, **overrides: Any) -> Iterator[Served]:
    settings = Settings(redis_url=redis_url, storage=f"file://{tmp_path / 'storage'}", sse_heartbeat_s=0.3,
                        rate_limit_per_min=0).replace(**overrides)
    app = create_app(settings)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="events-api",
                              daemon=True)
    thread.start()
    client = redis.Redis.from_url(redis_url)
    try:
        yield Served(f"http://127.0.0.1:{port}", JobRegistry(client), KeyStore(client))
    finally:
        server.shutdown()
        thread.join(10)
        client.close()


@pytest.fixture
def served(isolated_redis_url: str, tmp_path: Any) -> Iterator[Served]:
    yield from _serve(isolated_redis_url, tmp_path)


def _progress(iteration: int, iterations: int = 20) -> dict[str, Any]:
    return {"iteration": iteration, "iterations": iterations, "percent": 100.0 * iteration / iterations,
            "losses": {"total": 2.0}, "eta_s": 1.0, "elapsed_s": 0.5}


def _run_job(registry: JobRegistry, job_id: str, pause_s: float = 0.05) -> None:
    """What a worker does to a record, with pauses so the client is following live."""
    for step in (lambda: registry.mark_running(job_id, "host", 1),
                 lambda: registry.set_progress(job_id, _progress(4)),
                 lambda: registry.add_preview(job_id, preview_key(job_id, 4)),
                 lambda: registry.set_progress(job_id, _progress(8)),
                 lambda: registry.finish(job_id, "succeeded", result={"key": "r", "width": 32, "height": 32})):
        time.sleep(pause_s)
        step()


def _collect(response) -> list[sse_client.StreamEvent]:
    try:
        return list(sse_client.events(response))  # ends when the server closes the stream
    finally:
        response.close()


def test_a_job_streams_state_then_live_events_in_order_and_ends_on_done(served):
    job_id = served.new_job()
    response = served.open(f"/v1/jobs/{job_id}/events")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/event-stream")
    worker = threading.Thread(target=_run_job, args=(served.registry, job_id))
    worker.start()
    got = _collect(response)
    worker.join()
    assert [e.name for e in got] == ["state", "status", "progress", "preview", "progress", "done"]
    state, running, first, preview, _second, done = got
    assert state.data["status"] == "queued" and state.data["previews"] == [] and state.data["result_url"] is None
    assert running.data["status"] == "running"
    assert first.data["iteration"] == 4 and first.data["losses"] == {"total": 2.0} and first.data["eta_s"] == 1.0
    assert preview.data["url"] == f"/v1/jobs/{job_id}/previews/4"
    assert done.data["status"] == "succeeded" and done.data["result_url"] == f"/v1/jobs/{job_id}/result"
    ids = [e.id for e in got]
    assert all(ids) and len(set(ids)) == len(ids)


def test_last_event_id_resumes_with_only_the_later_events_and_after_done_is_204(served):
    job_id = served.new_job()
    _run_job(served.registry, job_id, pause_s=0)
    full = _collect(served.open(f"/v1/jobs/{job_id}/events"))
    assert [e.name for e in full] == ["state", "done"]  # finished before we came: where it stands, and the end
    assert full[0].data["status"] == "succeeded" and full[0].data["previews"] == [f"/v1/jobs/{job_id}/previews/4"]
    stored = [e.id for e in _collect(served.open(f"/v1/jobs/{job_id}/events", last_event_id="0-1"))]
    # 0-1 is older than the stream's first entry: treated as no id (state first).
    assert len(stored) == 2
    backlog = served.registry.redis.xrange(f"atelier:events:job:{job_id}")
    running_id = backlog[1][0].decode()  # after "queued" and "running"
    resumed = _collect(served.open(f"/v1/jobs/{job_id}/events", last_event_id=running_id))
    assert [e.name for e in resumed] == ["progress", "preview", "progress", "done"]
    assert [e.id for e in resumed] == [entry_id.decode() for entry_id, _ in backlog[2:]]
    after_done = served.open(f"/v1/jobs/{job_id}/events", last_event_id=resumed[-1].id)
    assert after_done.status_code == 204


def test_another_tenants_job_and_unknown_ids_are_404_at_once(served):
    theirs = served.new_job(tenant="globex")
    mine = served.new_job()
    started = time.monotonic()
    for path in (f"/v1/jobs/{theirs}/events", "/v1/jobs/nope/events", "/v1/styles/nope/events",
                 "/v1/videos/nope/events", "/v1/batches/nope/events", f"/v1/styles/{mine}/events"):
        response = served.open(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"].endswith("_not_found"), path
    assert time.monotonic() - started < 3
    assert served.open(f"/v1/jobs/{mine}/events", token="atl_nope_nope").status_code == 401
    own = served.open(f"/v1/jobs/{theirs}/events", token=served.other_token)
    assert own.status_code == 200
    own.close()


def test_style_model_trainings_stream_with_their_own_links(served):
    model_id = new_job_id()
    served.registry.create(new_style_model_record(model_id, params={}, style_keys=["inputs/s.jpg"],
                                                  style_names=["s.jpg"], train_keys=[], train_names=[],
                                                  from_batch=None, tenant="acme"))
    served.registry.mark_running(model_id, "host", 1)
    served.registry.add_preview(model_id, preview_key(model_id, 100))
    served.registry.finish(model_id, "succeeded")
    got = _collect(served.open(f"/v1/styles/{model_id}/events"))
    assert [e.name for e in got] == ["state", "done"]
    assert got[0].data["previews"] == [f"/v1/styles/{model_id}/previews/100"]
    assert got[1].data["result_url"] == f"/v1/styles/{model_id}"
    assert served.open(f"/v1/jobs/{model_id}/events").status_code == 404  # a training is not an image job


def test_an_idle_stream_sends_heartbeats(served):
    job_id = served.new_job()
    response = served.open(f"/v1/jobs/{job_id}/events")
    lines = sse_client._lines(response)
    seen = [next(lines) for _ in range(8)]
    response.close()
    assert ": keep-alive" in seen


def test_a_batch_streams_item_events_and_ends_when_every_child_finished(served):
    batches = BatchRegistry(served.registry)
    batch = new_batch_record(params={"size": 32}, style_keys=["inputs/s.jpg"], style_names=["s.jpg"])
    batch["tenant"] = "acme"
    batches.create(batch)
    children = [served.new_job(batch_id=batch["id"]) for _ in range(2)]
    for index, job_id in enumerate(children):
        batches.append_item(batch["id"], f"c{index}.jpg", job_id)
    response = served.open(f"/v1/batches/{batch['id']}/events")
    assert response.status_code == 200
    worker = threading.Thread(target=lambda: [_run_job(served.registry, job_id, 0.02) for job_id in children])
    worker.start()
    got = _collect(response)
    worker.join()
    assert got[0].name == "state" and got[0].data["total"] == 2 and got[0].data["counts"]["queued"] == 2
    items = [e for e in got if e.name == "item"]
    assert [e.data["status"] for e in items if e.data["job_id"] == children[0]] == [
        "running", "running", "running", "succeeded"]
    assert got[-1].name == "done" and got[-1].data["status"] == "finished" and got[-1].data["counts"]["succeeded"] == 2
    other = served.open(f"/v1/batches/{batch['id']}/events", token=served.other_token)
    assert other.status_code == 404


def test_streams_beyond_the_cap_get_503_with_retry_after(isolated_redis_url, tmp_path):
    for served in _serve(isolated_redis_url, tmp_path, sse_max_streams=2):
        job_id = served.new_job()
        first, second = served.open(f"/v1/jobs/{job_id}/events"), served.open(f"/v1/jobs/{job_id}/events")
        assert first.status_code == second.status_code == 200
        third = served.open(f"/v1/jobs/{job_id}/events")
        assert third.status_code == 503 and third.headers["Retry-After"] == "5"
        assert third.json()["error"]["code"] == "too_many_streams" and "ATELIER_SSE_MAX_STREAMS" in \
            third.json()["error"]["message"]
        # Ordinary requests are not refused, and a closed stream frees its slot (noticed at the next heartbeat).
        assert requests_get(served, f"/v1/jobs/{job_id}").status_code == 200
        first.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            again = served.open(f"/v1/jobs/{job_id}/events")
            if again.status_code == 200:
                again.close()
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the closed stream's slot was never freed")
        second.close()


def requests_get(served: Served, path: str):
    import requests

    return requests.get(served.base + path, headers={"Authorization": f"Bearer {served.token}"}, timeout=5)


def test_videos_stream_their_parent_records_progress_with_frame_counts(served):
    video_id = new_job_id()
    served.registry.create(JobRecord(id=video_id, kind="video", tenant="acme", queue="bulk"))
    served.registry.mark_running(video_id, "host", 1)
    served.registry.set_progress(video_id, {"frames_done": 12, "frames": 48, "segment_frames_done": [12, 0],
                                            "percent": 25.0})
    served.registry.finish(video_id, "failed", error={"code": "boom", "message": "x"})
    first_id = served.registry.redis.xrange(f"atelier:events:job:{video_id}", count=1)[0][0].decode()
    got = _collect(served.open(f"/v1/videos/{video_id}/events", last_event_id=first_id))
    assert [e.name for e in got] == ["status", "progress", "done"]
    assert got[1].data == {"job_id": video_id, "frames_done": 12, "frames": 48, "segment_frames_done": [12, 0],
                           "percent": 25.0}
    assert got[2].data["error"]["code"] == "boom" and got[2].data["result_url"] is None
    assert got[2].data["url"] == f"/v1/videos/{video_id}"
    assert served.open(f"/v1/jobs/{video_id}/events").status_code == 404
