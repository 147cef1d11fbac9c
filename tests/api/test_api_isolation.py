"""The API never imports TensorFlow or worker code (checked in a fresh interpreter, after real requests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import io, json, sys
    from PIL import Image
    from api.app import create_app
    from shared.settings import Settings

    def jpeg():
        buffer = io.BytesIO()
        Image.new("RGB", (32, 32), "red").save(buffer, "JPEG")
        return io.BytesIO(buffer.getvalue())

    app = create_app(Settings(redis_url=sys.argv[1], storage="file://" + sys.argv[2], auth="off"))
    client = app.test_client()
    created = client.post("/v1/jobs", data={"content": (jpeg(), "c.jpg"), "style": (jpeg(), "s.jpg")},
                          content_type="multipart/form-data")
    statuses = [created.status_code, client.get(created.headers["Location"]).status_code,
                client.get("/v1/jobs").status_code, client.get("/readyz").status_code,
                client.get("/v1/openapi.json").status_code]
    heavy = sorted(name for name in sys.modules
                   if name.split(".")[0] in ("tensorflow", "keras", "worker", "scipy", "torch"))
    print(json.dumps({"statuses": statuses, "heavy": heavy}))
    """
)


def test_api_does_not_import_tensorflow_or_worker(isolated_redis_url, tmp_path):
    output = subprocess.run(
        [sys.executable, "-c", SCRIPT, isolated_redis_url, str(tmp_path / "storage")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert output.returncode == 0, output.stderr
    report = json.loads(output.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [202, 200, 200, 200, 200]
    assert report["heavy"] == []


def test_wsgi_module_builds_the_app_from_the_environment(isolated_redis_url, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATELIER_REDIS_URL": isolated_redis_url,
           "ATELIER_STORAGE": f"file://{tmp_path / 'storage'}", "ATELIER_MAX_UPLOAD_BYTES": "12345"}
    code = "from api.wsgi import app; print(app.config['MAX_CONTENT_LENGTH'])"
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env=env)
    assert output.returncode == 0, output.stderr
    assert output.stdout.strip() == "12345"
