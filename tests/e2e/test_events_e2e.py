"""Live events end to end: a real job on the session stack (gunicorn with the production command line, a Celery
worker with real VGG19 weights) followed through GET /v1/jobs/{id}/events over real HTTP."""

from __future__ import annotations

import time

import pytest
import requests

from services import sse_client

from .conftest import CONTENT, STYLE, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_real_job_streams_running_progress_previews_and_done_then_resumes(local_stack: Stack):
    stack = local_stack
    submitted_s = time.monotonic()
    job_id = stack.client.submit(CONTENT, [STYLE], params={"size": 48, "iterations": 12, "progress_every": 2})["id"]
    response = sse_client.open_stream(f"{stack.api_url}/v1/jobs/{job_id}/events", timeout_s=60)
    assert response.status_code == 200, response.text
    got, first_progress_s = [], None
    try:
        for event in sse_client.events(response):
            got.append(event)
            if event.name == "progress" and first_progress_s is None:
                first_progress_s = time.monotonic() - submitted_s
    finally:
        response.close()
    names = [event.name for event in got]
    assert names[0] == "state" and names[-1] == "done", (names, stack.logs())
    assert got[-1].data["status"] == "succeeded" and got[-1].data["result_url"] == f"/v1/jobs/{job_id}/result"
    live = names[1:]  # the state may already say running (the worker is quick); then no separate status event
    assert live.index("progress") < live.index("preview") < live.index("done")
    if got[0].data["status"] == "queued":
        assert live[0] == "status" and got[1].data["status"] == "running"
    iterations = [event.data["iteration"] for event in got if event.name == "progress"]
    assert iterations == sorted(iterations) and iterations[-1] == 12
    previews = [event.data["url"] for event in got if event.name == "preview"]
    assert previews and requests.get(stack.api_url + previews[0], timeout=10).status_code == 200
    print(f"submit -> first progress event seen by the client: {first_progress_s:.2f} s")

    # Resume after the first progress event: exactly the later events, ending with done.
    index = names.index("progress")
    resumed = sse_client.open_stream(f"{stack.api_url}/v1/jobs/{job_id}/events", last_event_id=got[index].id,
                                     timeout_s=30)
    try:
        later = list(sse_client.events(resumed))
    finally:
        resumed.close()
    assert [event.id for event in later] == [event.id for event in got[index + 1:]]
