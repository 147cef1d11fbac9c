"""The HTTP client's error mapping and waiting logic, with an injected session (the end-to-end tests drive it
against the real API)."""

from __future__ import annotations

import json

import pytest
import requests

from services.client import (
    ApiError,
    Client,
    ClientError,
    JobCanceled,
    JobFailed,
    NotFoundError,
    NotReadyError,
    TransportError,
    WaitTimeout,
)
from services.devstack import free_port


def response(status: int, body: object, content_type: str = "application/json") -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode() if content_type == "application/json" else str(body).encode()
    r.headers["Content-Type"] = content_type
    r.reason = "reason"
    return r


class Session:
    """Answers requests from a list, recording what was asked."""

    def __init__(self, *answers: requests.Response) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        self.calls.append((method, url, kwargs))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def job(status: str, **extra: object) -> dict:
    return {"id": "j1", "status": status, "progress": None, "error": None} | extra


@pytest.mark.parametrize(("status", "cls"), [(404, NotFoundError), (409, NotReadyError), (422, ApiError),
                                             (503, ApiError)])
def test_error_bodies_become_typed_exceptions(status, cls):
    body = {"error": {"code": "some_code", "message": "what went wrong", "field": "size"}}
    client = Client("http://api", session=Session(response(status, body)))
    with pytest.raises(cls) as caught:
        client.get("j1")
    assert caught.value.status == status and caught.value.code == "some_code" and caught.value.field == "size"
    assert isinstance(caught.value, ClientError)


def test_non_json_error_keeps_the_text():
    client = Client("http://api", session=Session(response(502, "Bad Gateway from proxy", "text/html")))
    with pytest.raises(ApiError) as caught:
        client.get("j1")
    assert caught.value.code == "http_error" and "Bad Gateway" in caught.value.message


def test_unreachable_api_is_a_transport_error():
    client = Client(f"http://127.0.0.1:{free_port()}", timeout_s=2)  # nothing listens there
    with pytest.raises(TransportError) as caught:
        client.health()
    assert isinstance(caught.value.cause, requests.ConnectionError)


def test_api_key_is_sent_as_bearer_token():
    session = Session(response(200, job("queued")))
    Client("http://api/", api_key="s3cret", session=session).get("j1")
    method, url, kwargs = session.calls[0]
    assert (method, url) == ("GET", "http://api/v1/jobs/j1")
    assert kwargs["headers"] == {"Authorization": "Bearer s3cret"}


def test_submit_sends_content_styles_and_params(tmp_path):
    content = tmp_path / "cat.jpg"
    content.write_bytes(b"jpeg")
    session = Session(response(202, job("queued")))
    Client("http://api", session=session).submit(content, [b"style-a", ("b.png", b"style-b")], params={"size": 64})
    _, url, kwargs = session.calls[0]
    assert url == "http://api/v1/jobs"
    assert kwargs["files"] == [("content", ("cat.jpg", b"jpeg")), ("style", ("style0", b"style-a")),
                               ("style", ("b.png", b"style-b"))]
    assert json.loads(kwargs["data"]["params"]) == {"size": 64}


def test_wait_polls_until_terminal_and_reports_each_poll():
    session = Session(response(200, job("queued")), response(200, job("running", progress={"iteration": 1})),
                      response(200, job("succeeded")))
    seen: list[str] = []
    final = Client("http://api", session=session).wait("j1", poll_interval_s=0, on_update=lambda j: seen.append(
        j["status"]))
    assert final["status"] == "succeeded" and seen == ["queued", "running", "succeeded"]


def test_wait_raises_on_failure_or_cancel_when_asked():
    failed = job("failed", error={"code": "weights_missing", "message": "no file"})
    with pytest.raises(JobFailed, match="weights_missing"):
        Client("http://api", session=Session(response(200, failed))).wait("j1", raise_on_failure=True)
    with pytest.raises(JobCanceled):
        Client("http://api", session=Session(response(200, job("canceled")))).wait("j1", raise_on_failure=True)
    assert Client("http://api", session=Session(response(200, failed))).wait("j1")["status"] == "failed"


def test_wait_times_out_with_the_last_state():
    client = Client("http://api", session=Session(response(200, job("running"))))
    with pytest.raises(WaitTimeout) as caught:
        client.wait("j1", timeout_s=0.2, poll_interval_s=0.05)
    assert caught.value.job["status"] == "running"


def test_list_jobs_returns_page_and_cursor():
    session = Session(response(200, {"jobs": [job("queued")], "next_cursor": "abc"}))
    jobs, cursor = Client("http://api", session=session).list_jobs(status="queued", limit=5)
    assert [j["id"] for j in jobs] == ["j1"] and cursor == "abc"
    assert session.calls[0][2]["params"] == {"limit": 5, "status": "queued"}


# --- style models ---------------------------------------------------------------------------------------------------

MODEL_ID = "ab" * 16


def model(status: str, **extra: object) -> dict:
    return {"id": MODEL_ID, "status": status, "progress": None, "error": None, "loss_curve": []} | extra


def test_submit_with_a_style_model_sends_no_style_parts(tmp_path):
    content = tmp_path / "cat.jpg"
    content.write_bytes(b"jpeg")
    session = Session(response(202, job("queued")))
    Client("http://api", session=session).submit(content, params={"style_model": MODEL_ID, "refine_iterations": 3})
    _, url, kwargs = session.calls[0]
    assert url == "http://api/v1/jobs"
    assert kwargs["files"] == [("content", ("cat.jpg", b"jpeg"))]
    assert json.loads(kwargs["data"]["params"]) == {"style_model": MODEL_ID, "refine_iterations": 3}


def test_train_style_sends_styles_train_images_and_params(tmp_path):
    style = tmp_path / "starry.jpg"
    style.write_bytes(b"style")
    session = Session(response(202, model("queued")))
    answer = Client("http://api", session=session).train_style(
        [style, b"second"], train=[("a.jpg", b"A"), b"B"], params={"steps": 10, "size": 32},
        idempotency_key="k-1")
    assert answer["id"] == MODEL_ID
    method, url, kwargs = session.calls[0]
    assert (method, url) == ("POST", "http://api/v1/styles")
    assert kwargs["files"] == [("style", ("starry.jpg", b"style")), ("style", ("style1", b"second")),
                               ("train", ("a.jpg", b"A")), ("train", ("train1", b"B"))]
    assert kwargs["data"] == {"params": json.dumps({"steps": 10, "size": 32})}
    assert kwargs["headers"]["Idempotency-Key"] == "k-1"


def test_train_style_from_a_batch_sends_the_field_and_no_train_parts():
    session = Session(response(202, model("queued")))
    Client("http://api", session=session, api_key="t").train_style(b"style", from_batch="b" * 32)
    kwargs = session.calls[0][2]
    assert [name for name, _part in kwargs["files"]] == ["style"]
    assert kwargs["data"] == {"from_batch": "b" * 32}  # no params: the server's defaults
    assert kwargs["headers"] == {"Authorization": "Bearer t"}  # no Idempotency-Key unless asked


def test_train_style_refuses_train_images_and_a_batch_together_before_sending():
    session = Session(response(202, model("queued")))
    with pytest.raises(ValueError, match="not both"):
        Client("http://api", session=session).train_style(b"style", train=[b"a"], from_batch="b" * 32)
    assert session.calls == []


def test_style_list_and_cancel_hit_the_styles_resource():
    session = Session(response(200, model("running")), response(200, {"styles": [model("queued")],
                                                                       "next_cursor": None}),
                      response(202, model("running", cancel_requested=True)))
    client = Client("http://api", session=session)
    assert client.style(MODEL_ID)["status"] == "running"
    models, cursor = client.list_styles(status="queued", limit=3, cursor="c")
    assert [m["id"] for m in models] == [MODEL_ID] and cursor is None
    assert client.cancel_style(MODEL_ID)["cancel_requested"] is True
    assert [(m, u) for m, u, _k in session.calls] == [
        ("GET", f"http://api/v1/styles/{MODEL_ID}"), ("GET", "http://api/v1/styles"),
        ("POST", f"http://api/v1/styles/{MODEL_ID}/cancel")]
    assert session.calls[1][2]["params"] == {"limit": 3, "status": "queued", "cursor": "c"}


def test_style_errors_use_the_same_tree():
    body = {"error": {"code": "style_model_not_found", "message": "no style model", "field": "id"}}
    with pytest.raises(NotFoundError) as caught:
        Client("http://api", session=Session(response(404, body))).style(MODEL_ID)
    assert caught.value.code == "style_model_not_found"
    body = {"error": {"code": "missing_style", "message": "expected one or more 'style' file parts", "field": "style"}}
    with pytest.raises(ApiError) as caught:
        Client("http://api", session=Session(response(400, body))).train_style([])
    assert caught.value.status == 400 and caught.value.field == "style"


def test_wait_style_polls_the_model_and_raises_like_wait():
    session = Session(response(200, model("queued")), response(200, model("running", progress={"iteration": 2})),
                      response(200, model("succeeded")))
    seen: list[object] = []
    final = Client("http://api", session=session).wait_style(
        MODEL_ID, poll_interval_s=0, on_update=lambda m: seen.append((m["progress"] or {}).get("iteration")))
    assert final["status"] == "succeeded" and seen == [None, 2, None]
    assert {u for _m, u, _k in session.calls} == {f"http://api/v1/styles/{MODEL_ID}"}

    failed = model("failed", error={"code": "engine_error", "message": "loss is not finite"})
    with pytest.raises(JobFailed, match="style model .* failed: engine_error") as caught:
        Client("http://api", session=Session(response(200, failed))).wait_style(MODEL_ID, raise_on_failure=True)
    assert caught.value.job["id"] == MODEL_ID
    with pytest.raises(JobCanceled):
        Client("http://api", session=Session(response(200, model("canceled")))).wait_style(
            MODEL_ID, raise_on_failure=True)
    with pytest.raises(WaitTimeout, match="style model"):
        Client("http://api", session=Session(response(200, model("running")))).wait_style(
            MODEL_ID, timeout_s=0.1, poll_interval_s=0.02)
