"""``atelier submit --webhook``, ``atelier webhooks secret|rotate|log|verify`` over real HTTP (the API app served by
werkzeug in a thread, on a real Redis)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image
from werkzeug.serving import make_server

from api.app import create_app
from services.cli.main import cli
from services.registry import JobRegistry
from services.webhooks import signing
from shared.settings import Settings


@pytest.fixture
def api_url(isolated_redis_url: str, tmp_path: Path) -> Iterator[str]:
    settings = Settings(redis_url=isolated_redis_url, storage=f"file://{tmp_path / 'storage'}", auth="off",
                        webhook_allowlist="127.0.0.1")
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def _images(tmp_path: Path) -> tuple[str, str]:
    paths = []
    for name in ("c.png", "s.png"):
        Image.effect_noise((40, 32), 50).convert("RGB").save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths[0], paths[1]


def _run(*args: str, stdin: bytes | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=stdin)


def test_submit_with_webhook_then_secret_rotate_and_log(api_url, isolated_redis_url, tmp_path):
    content, style = _images(tmp_path)
    refused = _run("submit", content, style, "--size", "32", "--webhook", "http://10.0.0.1/h", "--api", api_url)
    assert refused.exit_code == 1 and "webhook_address_refused" in refused.output
    done = _run("submit", content, style, "--size", "32", "--webhook", "http://127.0.0.1:9/h",
                "--webhook-events", "succeeded", "--json", "--api", api_url)
    assert done.exit_code == 0, done.output
    job_id = json.loads(done.output)["id"]
    assert JobRegistry.from_url(isolated_redis_url).require(job_id).webhook == {
        "url": "http://127.0.0.1:9/h", "events": ["succeeded"]}
    log = _run("webhooks", "log", job_id, "--api", api_url)
    assert log.exit_code == 0 and "webhook http://127.0.0.1:9/h events succeeded" in log.output
    first = _run("webhooks", "secret", "--api", api_url).output.strip()
    assert first.startswith("whsec_") and _run("webhooks", "secret", "--api", api_url).output.strip() == first
    rotated = _run("webhooks", "rotate", "--api", api_url)
    assert rotated.exit_code == 0 and rotated.output.splitlines()[0] != first


def _request(secret: str, body: str, *, crlf: bool = False, timestamp_s: int | None = None) -> bytes:
    headers = signing.headers([secret], "msg_abc", body, timestamp_s=timestamp_s)
    lines = ["POST /hook HTTP/1.1", "Host: example.com", *(f"{name}: {value}" for name, value in headers.items())]
    newline = "\r\n" if crlf else "\n"
    return (newline.join(lines) + newline + newline + body).encode()


def test_verify_reads_a_request_from_stdin():
    secret, body = signing.new_secret(), json.dumps({"type": "job.succeeded", "data": {"id": "x"}})
    for crlf in (False, True):
        ok = _run("webhooks", "verify", "--secret", secret, stdin=_request(secret, body, crlf=crlf))
        assert ok.exit_code == 0 and "signature verifies (job.succeeded)" in ok.output, ok.output
    tampered = _request(secret, body).replace(b'"x"', b'"y"')
    bad = _run("webhooks", "verify", "--secret", secret, stdin=tampered)
    assert bad.exit_code == 1 and "no v1 signature" in bad.output
    old = _request(secret, body, timestamp_s=int(time.time()) - 3600)
    assert "tolerance" in _run("webhooks", "verify", "--secret", secret, stdin=old).output
    assert _run("webhooks", "verify", "--secret", secret, "--tolerance", "7200", stdin=old).exit_code == 0
    headless = _run("webhooks", "verify", "--secret", secret, stdin=body.encode())
    assert headless.exit_code == 1 and "empty line" in headless.output


def test_submit_refuses_events_without_webhook(tmp_path):
    content, style = _images(tmp_path)
    result = _run("submit", content, style, "--webhook-events", "failed", "--api", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "--webhook-events needs --webhook" in result.output
