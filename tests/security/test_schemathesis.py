"""Schemathesis, with every check it has, against ``/v1/openapi.json`` of the real app on a real Redis.

The app (authentication on, a tenant's real API key) is served over real HTTP by werkzeug in a thread; the
Schemathesis CLI runs in a subprocess with ``tests/security/schemathesis.toml`` and the hooks of
``tests/security/schemathesis_hooks.py`` (real images for image parts, real-shaped cursors). All its phases run:
coverage (boundary and negative values of every parameter and part), fuzzing, and stateful testing that follows the
description's links (create a job or batch, then get, cancel, fetch its result, add items, page through the list).

It fails on any 5xx, any answer that does not match the description (status code, headers, content type, body
schema), any request the description calls valid that is refused, any request it calls invalid that is accepted,
any 405 without ``Allow``, any authentication the API ignores. A fixed seed and ``MAX_EXAMPLES`` per operation keep
the run deterministic and short (about 600 requests in 10-20 s on 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from services.devstack import free_port

from .conftest import SecureApi

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
HOOKS = HERE / "schemathesis_hooks.py"
MAX_EXAMPLES = 10
SEED = 20261201
TIMEOUT_S = 240
MIN_TEST_CASES = 300


@pytest.fixture
def served_api(make_secure_api) -> Iterator[tuple[str, SecureApi]]:
    # Event streams of jobs that never finish here (no worker) end after 0.2 s instead of the production 300 s.
    api: SecureApi = make_secure_api(rate_limit_per_min=0, max_queued_jobs=0, sse_max_stream_s=0.2)
    port = free_port()
    server = make_server("127.0.0.1", port, api.client.application, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="schemathesis-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", api
    finally:
        server.shutdown()
        thread.join(10)


def test_schemathesis_all_checks_pass(served_api: tuple[str, SecureApi], tmp_path: Path) -> None:
    base_url, api = served_api
    token = api.keys.create("schemathesis").token
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
        "run", f"{base_url}/v1/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1",
        "--report", "json", "--report-json-path", str(report),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)}
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_S,
                          check=False)
    output = done.stdout + done.stderr
    shown = output[output.find("FAILURES"):] if "FAILURES" in output else output[-6000:]
    assert done.returncode == 0, f"schemathesis found problems (exit {done.returncode}):\n{shown[:12000]}"

    summary = json.loads(report.read_text())
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 14, summary["operations"]
    assert summary["failures"] == [] and summary["errors"] == [], (summary["failures"], summary["errors"])
    generated = summary["test_cases"]["generated"]
    assert generated >= MIN_TEST_CASES, summary["test_cases"]
    phases = {phase["name"]: phase for phase in summary["phases"]} if isinstance(summary["phases"], list) \
        else summary["phases"]
    print(f"schemathesis: {generated} test cases over {summary['operations']['tested']} operations, "
          f"phases {json.dumps(phases)[:400]}")
    # The links from the creating operations let the stateful phase reach the job and batch routes.
    assert "Links" in output or "links" in output.lower()
    assert _links_covered(output) > 0, output[output.find("Stateful"):][:800]


def _links_covered(output: str) -> int:
    """'API Links: N covered / M selected / K total' from the CLI's stateful phase summary."""
    for line in output.splitlines():
        if "API Links:" in line:
            return int(line.split("API Links:")[1].split("covered")[0].strip())
    return 0
