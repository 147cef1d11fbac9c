"""`atelier styles ...`, `atelier stylize --style-model` and `submit`/`batch --style-model`.

- Through the API against a fake session (request shapes, what is sent, the model id file, one-line errors): fast.
- `styles train --local` then `stylize --style-model FILE` in-process with the real VGG19 weights and tiny settings,
  and model files the engine did not write refused with one line: slow (TensorFlow).
- `styles train --api` then `stylize --style-model ID --api` through the real stack (`local_stack`): slow,
  integration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from click.testing import CliRunner
from PIL import Image

import services.client
from services.cli.main import cli
from services.cli.options import TRAIN_ENV_PREFIX, env_name
from services.cli.styles import styles as styles_group
from shared.params import PARAM_SPECS
from shared.train_params import TRAIN_PARAM_SPECS
from tests.cli.conftest import EXAMPLES

MODEL_ID = "c0ffee" * 5 + "00"
STYLE = EXAMPLES / "style" / "vangogh_starry_night.jpg"
CAT = EXAMPLES / "content" / "chelsea_cat.jpg"
ASTRONAUT = EXAMPLES / "content" / "astronaut_portrait.jpg"
TINY = ["--size", "32", "--steps", "4", "--width", "0.125", "--residual-blocks", "1", "--batch-size", "1",
        "--progress-every", "2"]


# --- fakes ----------------------------------------------------------------------------------------------------------


def _response(status: int, body: Any) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r.headers["Content-Type"] = "image/png" if isinstance(body, bytes) else "application/json"
    r.reason = "reason"
    return r


class FakeApi:
    """A ``requests.Session`` stand-in: answers by (method, path) from queues, records every request."""

    def __init__(self, routes: dict[tuple[str, str], list[requests.Response]]) -> None:
        self.routes = routes
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        path = url.split("://", 1)[1].split("/", 1)[1]
        self.calls.append((method, "/" + path, kwargs))
        answers = self.routes[(method, "/" + path)]
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch):
    """Install a FakeApi under every ``services.client.Client`` the commands make; returns a setter."""
    real = services.client.Client

    def install(routes: dict[tuple[str, str], list[requests.Response]]) -> FakeApi:
        api = FakeApi(routes)
        monkeypatch.setattr(services.client, "Client",
                            lambda url, api_key=None: real(url, api_key=api_key, session=api))
        return api

    return install


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameter twins and keys in the developer's shell must not change what a test runs; real weights."""
    for spec in PARAM_SPECS:
        monkeypatch.delenv(env_name(spec.name), raising=False)
    for spec in TRAIN_PARAM_SPECS:
        monkeypatch.delenv(env_name(spec.name, TRAIN_ENV_PREFIX), raising=False)
    for name in ("ATELIER_MODEL_SIGNING_KEY", "ATELIER_TEST_RANDOM_WEIGHTS", "ATELIER_API_URL", "ATELIER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    # _quiet_tensorflow_import redirects the stderr descriptor, which CliRunner's captured stderr does not have.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)


def model(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": MODEL_ID, "status": status, "params": {"steps": 4, "size": 32}, "progress": None, "error": None,
            "created_at": "2025-01-01T00:00:00Z"} | extra


def one_line_error(result: Any, *fragments: str) -> str:
    assert result.exit_code not in (0, None), result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    return lines[-1]


def invoke(*args: Any) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


# --- flags ----------------------------------------------------------------------------------------------------------


def test_every_training_param_has_a_flag_and_a_train_env_twin() -> None:
    options = {tuple(param.opts): param for param in styles_group.commands["train"].params}
    for spec in TRAIN_PARAM_SPECS:
        param = options[("--" + spec.name.replace("_", "-"),)]
        assert param.name == spec.name and param.envvar == "ATELIER_TRAIN_" + spec.name.upper()


# --- through the API, against a fake session ---------------------------------------------------------------------


def test_train_through_the_api_sends_only_given_params_and_writes_the_model_id(fake_api, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(CAT.read_bytes())
    (photos / "sub" / "b.png").write_bytes(b"png")
    (photos / "notes.txt").write_text("not an image")
    (photos / ".hidden.jpg").write_bytes(b"x")
    api = fake_api({("POST", "/v1/styles"): [_response(202, model("queued"))]})
    id_file = tmp_path / "out" / "starry.id"
    result = invoke("styles", "train", STYLE, "--train", photos, "--train", ASTRONAUT, "--steps", "4", "--size", "32",
                    "--no-wait", "-o", id_file, "--api", "http://api")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{MODEL_ID} queued"
    assert id_file.read_text() == MODEL_ID + "\n"
    ((method, path, kwargs),) = api.calls
    assert (method, path) == ("POST", "/v1/styles")
    assert [(field, name) for field, (name, _data) in kwargs["files"]] == [
        ("style", STYLE.name), ("train", "a.jpg"), ("train", "b.png"), ("train", ASTRONAUT.name)]
    assert json.loads(kwargs["data"]["params"]) == {"steps": 4, "size": 32}  # the server's defaults for the rest
    assert "from_batch" not in kwargs["data"]


def test_train_env_twins_reach_the_request_and_from_batch_is_sent(fake_api, monkeypatch) -> None:
    monkeypatch.setenv("ATELIER_TRAIN_WIDTH", "0.25")
    monkeypatch.setenv("ATELIER_SIZE", "999")  # a stylization twin: not a training parameter
    api = fake_api({("POST", "/v1/styles"): [_response(202, model("queued"))]})
    result = invoke("styles", "train", STYLE, "--from-batch", "b" * 32, "--no-wait", "--api", "http://api")
    assert result.exit_code == 0, result.stderr
    kwargs = api.calls[0][2]
    assert json.loads(kwargs["data"]["params"]) == {"width": 0.25}
    assert kwargs["data"]["from_batch"] == "b" * 32
    assert [field for field, _part in kwargs["files"]] == ["style"]


def test_train_waits_with_a_bar_in_steps_and_prints_the_id(fake_api, tmp_path: Path) -> None:
    running = model("running", progress={"iteration": 2, "iterations": 4, "losses": {"total": 3.5}, "eta_s": 1})
    done = model("succeeded", progress={"iteration": 4, "iterations": 4, "losses": {"total": 2.0}})
    api = fake_api({("POST", "/v1/styles"): [_response(202, model("queued"))],
                    ("GET", f"/v1/styles/{MODEL_ID}"): [_response(200, running), _response(200, done)]})
    result = invoke("styles", "train", STYLE, *TINY, "--api", "http://api", "-o", tmp_path / "id")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == MODEL_ID
    assert "4/4" in result.stderr and "step" in result.stderr
    assert f"--style-model {MODEL_ID}" in result.stderr
    assert [p for _m, p, _k in api.calls].count(f"/v1/styles/{MODEL_ID}") == 2


def test_a_failed_training_exits_1_with_the_reason(fake_api, tmp_path: Path) -> None:
    failed = model("failed", error={"code": "engine_error", "message": "the training loss is not finite"})
    fake_api({("POST", "/v1/styles"): [_response(202, model("queued"))],
              ("GET", f"/v1/styles/{MODEL_ID}"): [_response(200, failed)]})
    id_file = tmp_path / "id"
    result = invoke("styles", "train", STYLE, "--api", "http://api", "-q", "-o", id_file)
    assert result.exit_code == 1
    one_line_error(result, MODEL_ID, "failed", "engine_error", "not finite")
    assert id_file.read_text().strip() == MODEL_ID  # written at submission, before the wait


@pytest.mark.parametrize(("args", "fragments"), [
    (["--steps", "0"], ["steps=0 is not allowed", "1 to 200000"]),
    (["--width", "9"], ["width=9.0"]),
    (["--style-blend", "1,2"], ["style_blend has 2 weights for 1 style images"]),
    (["--train", str(CAT), "--from-batch", "b" * 32], ["either --train or --from-batch"]),
    (["--local"], ["--local needs -o/--output"]),
    (["--local", "--from-batch", "b" * 32, "-o", "m.atls"], ["--from-batch names a batch on the service"]),
])
def test_bad_training_arguments_fail_with_one_line_before_any_request(fake_api, args, fragments) -> None:
    api = fake_api({})
    result = invoke("styles", "train", STYLE, *args, "--api", "http://api")
    one_line_error(result, *fragments)
    assert api.calls == []


def test_a_train_folder_without_images_is_refused(fake_api, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    api = fake_api({})
    one_line_error(invoke("styles", "train", STYLE, "--train", tmp_path, "--api", "http://api"), "holds no images")
    assert api.calls == []


def test_status_list_and_cancel(fake_api) -> None:
    running = model("running", progress={"iteration": 2, "iterations": 4, "losses": {"total": 3.5}, "eta_s": 7})
    failed = model("failed", id="f" * 32, error={"code": "canceled", "message": "no"})
    api = fake_api({
        ("GET", f"/v1/styles/{MODEL_ID}"): [_response(200, running)],
        ("GET", "/v1/styles"): [_response(200, {"styles": [running, failed], "next_cursor": "next1"})],
        ("POST", f"/v1/styles/{MODEL_ID}/cancel"): [_response(202, running | {"cancel_requested": True})],
    })
    status = invoke("styles", "status", MODEL_ID, "--api", "http://api")
    assert status.exit_code == 0
    assert status.stdout.strip() == (f"{MODEL_ID} running 2/4 steps, about 7 s left, 32 px, loss 3.5, "
                                     "created 2025-01-01T00:00:00Z")
    listed = invoke("styles", "list", "--status", "running", "--limit", "2", "--api", "http://api")
    assert listed.exit_code == 0
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{MODEL_ID} running") and lines[1].startswith("f" * 32 + " failed")
    assert "--cursor next1" in listed.stderr
    assert api.calls[1][2]["params"] == {"limit": 2, "status": "running"}
    cancelled = invoke("styles", "cancel", MODEL_ID, "--api", "http://api")
    assert cancelled.stdout.strip() == f"{MODEL_ID} running (cancel requested)"


def test_an_unknown_model_is_one_line_from_the_api(fake_api) -> None:
    body = {"error": {"code": "style_model_not_found", "message": f"no style model with id '{MODEL_ID}'"}}
    fake_api({("GET", f"/v1/styles/{MODEL_ID}"): [_response(404, body)]})
    one_line_error(invoke("styles", "status", MODEL_ID, "--api", "http://api"), "404 style_model_not_found")


def test_submit_with_a_style_model_sends_no_style_parts(fake_api) -> None:
    api = fake_api({("POST", "/v1/jobs"): [_response(202, {"id": "j" * 32, "status": "queued"})]})
    result = invoke("submit", CAT, "--style-model", MODEL_ID, "--refine-iterations", "3", "--api", "http://api")
    assert result.exit_code == 0, result.stderr
    kwargs = api.calls[0][2]
    assert [field for field, _part in kwargs["files"]] == ["content"]
    assert json.loads(kwargs["data"]["params"]) == {"style_model": MODEL_ID, "refine_iterations": 3}


def test_submit_refuses_style_files_with_a_style_model_and_nothing_without(fake_api) -> None:
    api = fake_api({})
    both = invoke("submit", CAT, STYLE, "--style-model", MODEL_ID, "--api", "http://api")
    assert both.exit_code == 1 and "the model is the style" in both.stderr
    neither = invoke("submit", CAT, "--api", "http://api")
    assert neither.exit_code == 1 and "got 0 style images" in neither.stderr
    assert api.calls == []


def test_batch_dry_run_takes_a_style_model_instead_of_style_files(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(CAT.read_bytes())
    result = invoke("batch", photos, "--style-model", MODEL_ID, "-o", tmp_path / "out", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "submit: a.jpg" in result.stdout
    refused = invoke("batch", photos, "-o", tmp_path / "out2", "--dry-run")
    assert refused.exit_code != 0 and "got 0 style images" in refused.stderr


def test_stylize_needs_styles_or_a_style_model(tmp_path: Path) -> None:
    one_line_error(invoke("stylize", CAT, "-o", tmp_path / "o.png"), "STYLES", "--style-model FILE_OR_ID")
    one_line_error(invoke("stylize", CAT, "--style-model", "starry", "-o", tmp_path / "o.png"),
                   "no such file, and not a model id")
    one_line_error(invoke("stylize", CAT, "--style-model", tmp_path, "-o", tmp_path / "o.png"), "is not a file")


def test_stylize_with_a_model_id_goes_through_the_api(fake_api, tmp_path: Path) -> None:
    png = (EXAMPLES / "content" / "chelsea_cat.jpg").read_bytes()  # what comes back is written as it is
    job_id = "a" * 32
    done = {"id": job_id, "status": "succeeded", "progress": {"iteration": 1, "iterations": 1},
            "metrics": {"mode": "fast"}}
    api = fake_api({("POST", "/v1/jobs"): [_response(202, {"id": job_id, "status": "queued"})],
                    ("GET", f"/v1/jobs/{job_id}"): [_response(200, done)],
                    ("GET", f"/v1/jobs/{job_id}/result"): [_response(200, png)]})
    out = tmp_path / "o.png"
    result = invoke("stylize", CAT, "--style-model", MODEL_ID, "--size", "48", "--api", "http://api", "-o", out)
    assert result.exit_code == 0, result.stderr
    assert out.read_bytes() == png
    kwargs = api.calls[0][2]
    assert [field for field, _part in kwargs["files"]] == ["content"]
    assert json.loads(kwargs["data"]["params"]) == {"style_model": MODEL_ID, "size": 48}


# --- locally, with the engine (real VGG19 weights) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model trained by `styles train --local`, signed with --key, and its report."""
    tmp = tmp_path_factory.mktemp("styles")
    with pytest.MonkeyPatch.context() as mp:
        _clean_env(mp)
        result = invoke("styles", "train", STYLE, "--train", CAT, "--train", ASTRONAUT, *TINY, "--local",
                        "--key", "s3cret", "-o", tmp / "starry.atls", "--report", tmp / "train.json")
    assert result.exit_code == 0, result.stderr
    return {"model": tmp / "starry.atls", "report": tmp / "train.json", "stderr": result.stderr}  # type: ignore


@pytest.mark.slow
def test_train_local_writes_a_model_file_and_a_report(trained) -> None:
    from worker.engine import feedforward

    data = trained["model"].read_bytes()
    assert data.startswith(feedforward.MAGIC)
    model = feedforward.model_from_bytes(data, key=b"s3cret")  # signed with --key: loads with it, and only with it
    assert (model.width, model.residual_blocks, model.meta["trained_steps"]) == (0.125, 1, 4)
    report = json.loads(trained["report"].read_text())
    assert [point["step"] for point in report["history"]] == [2, 4]
    assert all(np.isfinite(point["total"]) for point in report["history"])
    assert report["signed"] is True and report["params"]["steps"] == 4 and "imagenet" in report["weights"]
    assert "4/4" in trained["stderr"] and "wrote" in trained["stderr"]


@pytest.mark.slow
def test_stylize_with_a_model_file_applies_it_locally(trained, tmp_path: Path) -> None:
    out, again, report = tmp_path / "fast.png", tmp_path / "again.png", tmp_path / "fast.json"
    result = invoke("stylize", CAT, "--style-model", trained["model"], "--key", "s3cret", "--size", "48", "-o", out,
                    "--report", report)
    assert result.exit_code == 0, result.stderr
    image = np.asarray(Image.open(out).convert("RGB"))
    assert max(image.shape[:2]) == 48
    content = np.asarray(Image.open(CAT).convert("RGB").resize((image.shape[1], image.shape[0])), np.float32)
    assert np.abs(image.astype(np.float32) - content).mean() > 5  # the network changed the picture
    data = json.loads(report.read_text())
    assert data["mode"] == "fast" and data["model"]["trained_steps"] == 4 and data["size_px"] == list(image.shape[:2])
    # The same model on the same content: the same pixels.
    assert invoke("stylize", CAT, "--style-model", trained["model"], "--key", "s3cret", "--size", "48",
                  "-o", again).exit_code == 0
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), image)


@pytest.mark.slow
def test_stylize_with_a_model_file_and_refine_iterations(trained, tmp_path: Path) -> None:
    report = tmp_path / "refined.json"
    no_styles = invoke("stylize", CAT, "--style-model", trained["model"], "--key", "s3cret", "--refine-iterations",
                       "2", "-o", tmp_path / "x.png")
    one_line_error(no_styles, "--refine-iterations 2 with a model file needs the STYLE images")
    result = invoke("stylize", CAT, STYLE, "--style-model", trained["model"], "--key", "s3cret", "--size", "48",
                    "--refine-iterations", "2", "-o", tmp_path / "refined.png", "--report", report)
    assert result.exit_code == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["mode"] == "fast+refine" and data["iterations_run"] == 2 and data["params"]["iterations"] == 2


@pytest.mark.slow
def test_model_files_the_engine_did_not_write_are_refused_with_one_line(trained, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    jpeg = tmp_path / "model.atls"
    jpeg.write_bytes(STYLE.read_bytes())
    one_line_error(invoke("stylize", CAT, "--style-model", jpeg, "-o", out), "model.atls", "refused",
                   "not an Atelier fast-style file")
    tampered = tmp_path / "tampered.atls"
    data = bytearray(trained["model"].read_bytes())
    data[-100] ^= 0xFF  # a weight byte
    tampered.write_bytes(bytes(data))
    one_line_error(invoke("stylize", CAT, "--style-model", tampered, "--key", "s3cret", "-o", out),
                   "signature does not match")
    one_line_error(invoke("stylize", CAT, "--style-model", trained["model"], "-o", out), "the file is signed")
    one_line_error(invoke("stylize", CAT, "--style-model", trained["model"], "--key", "other", "-o", out),
                   "signature does not match")
    assert not out.exists()


@pytest.mark.slow
def test_an_unsigned_model_file_loads_without_a_key_and_not_with_one(trained, tmp_path: Path) -> None:
    """`--local` without --key writes an unsigned file (here re-packed by the engine from the signed one)."""
    from worker.engine import feedforward

    unsigned = tmp_path / "unsigned.atls"
    model = feedforward.model_from_bytes(trained["model"].read_bytes(), key=b"s3cret")
    unsigned.write_bytes(feedforward.model_to_bytes(model, key=None))
    assert invoke("stylize", CAT, "--style-model", unsigned, "--size", "32", "-o", tmp_path / "o.png").exit_code == 0
    one_line_error(invoke("stylize", CAT, "--style-model", unsigned, "--key", "s3cret", "-o", tmp_path / "p.png"),
                   "not signed")


# --- through the real stack ----------------------------------------------------------------------------------------


def test_train_and_apply_through_the_stack_from_the_command_line(local_stack, tmp_path: Path) -> None:
    api = local_stack.api_url
    id_file = tmp_path / "starry.id"
    result = invoke("styles", "train", STYLE, "--train", CAT, "--train", ASTRONAUT, *TINY, "--api", api,
                    "-o", id_file, "--timeout", "240")
    assert result.exit_code == 0, (result.stderr, local_stack.logs())
    model_id = id_file.read_text().strip()
    assert result.stdout.strip() == model_id and len(model_id) == 32
    assert "4/4" in result.stderr

    status = invoke("styles", "status", model_id, "--api", api)
    assert status.stdout.startswith(f"{model_id} succeeded 4/4 steps, 32 px"), status.stdout
    listed = invoke("styles", "list", "--api", api)
    assert model_id in [line.split()[0] for line in listed.stdout.splitlines()]

    out = tmp_path / "fast.png"
    applied = invoke("stylize", CAT, "--style-model", model_id, "--size", "48", "--api", api, "-o", out,
                     "--report", tmp_path / "job.json")
    assert applied.exit_code == 0, (applied.stderr, local_stack.logs())
    image = np.asarray(Image.open(out).convert("RGB"))
    assert max(image.shape[:2]) == 48 and image.std() > 1
    job_metrics = json.loads((tmp_path / "job.json").read_text())
    assert job_metrics["mode"] == "fast" and job_metrics["style_model"] == model_id
