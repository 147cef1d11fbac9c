"""What Schemathesis (tests/security/test_schemathesis.py) does not cover, fuzzed with hypothesis.

Schemathesis generates every operation's parameters and bodies from ``/v1/openapi.json``, so the old hand-written
per-operation fuzzer here is gone. What stays is what no description can generate: hostile and corpus files in the
image parts, ``params`` text that is not JSON (NaN, deep nesting, junk), repeated parts and parts of the wrong kind,
unknown parts, and junk ``Authorization`` / ``Idempotency-Key`` headers, on both creating routes through the real app
on a real Redis with authentication on. Every answer is a 4xx JSON error or a success, never a 5xx, and a refused
request leaves no job record. And: every undeclared method is a 405 with ``Allow``.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import SecureApi, jpeg_bytes
from .corpus import HOSTILE, VALID_MODES

EXAMPLES = 150

_junk_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
# What can travel in a header at all (no CR/LF; latin-1), valid or not for our purposes.
_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                       max_size=40)
_json_scalars = st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=True) | _junk_text
_json_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(_junk_text, inner, max_size=3), max_leaves=6)
_files = st.sampled_from([jpeg_bytes(), *VALID_MODES.values(), *(data for data, _s, _c in HOSTILE.values()
                                                                  if len(data) < 20_000)]) | st.binary(max_size=200)


@st.composite
def hostile_submission(draw: st.DrawFn) -> dict[str, Any]:
    """What Schemathesis does not send: hostile and corpus files in image parts, params text that is not JSON, NaN,
    deeply nested or huge JSON, junk in Authorization and Idempotency-Key, parts repeated or of the wrong kind."""
    parts: list[tuple[str, Any]] = []
    for name in ("content", "style"):
        for blob in draw(st.lists(_files, min_size=0, max_size=2)):
            if draw(st.booleans()) or blob[:1] == b"\x89":
                parts.append((name, (io.BytesIO(blob), f"{name}.jpg")))
            else:
                parts.append((name, blob.decode("latin-1")))
    params = draw(st.none() | _junk_text | _json_values.map(lambda v: json.dumps(v, allow_nan=True))
                  | st.integers(1, 300).map(lambda depth: "[" * depth + "]" * depth))
    if params is not None:
        parts.append(("params", params))
    if draw(st.booleans()):
        parts.append((draw(st.sampled_from(["params", "queue", "styles"])), draw(_junk_text)))
    return {"path": draw(st.sampled_from(["/v1/jobs", "/v1/batches"])), "parts": parts,
            "auth": draw(st.sampled_from(["valid"] * 6 + ["", "Bearer atl_0000000000000000_x", "Basic a"])
                         | _header_text.map(lambda t: "Bearer " + t)),
            "idempotency": draw(st.none() | _header_text)}


def test_hostile_submissions_get_4xx_json_and_leave_nothing(make_secure_api):
    from werkzeug.datastructures import MultiDict  # noqa: PLC0415

    api: SecureApi = make_secure_api(rate_limit_per_min=0, max_queued_jobs=0)
    token = api.keys.create("fuzz").token
    bad: list[str] = []
    sent = 0

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(generated=hostile_submission())
    def run(generated: dict[str, Any]) -> None:
        nonlocal sent
        headers = {}
        if generated["auth"]:
            headers["Authorization"] = f"Bearer {token}" if generated["auth"] == "valid" else generated["auth"]
        if generated["idempotency"] is not None:
            headers["Idempotency-Key"] = generated["idempotency"]
        before = api.job_records()
        response = api.client.post(generated["path"], data=MultiDict(generated["parts"]),
                                   content_type="multipart/form-data", headers=headers)
        sent += 1
        status = response.status_code
        body = response.get_json(silent=True)
        if status >= 500 or (status >= 400 and not (isinstance(body, dict) and body.get("error", {}).get("code"))):
            bad.append(f"POST {generated['path']} -> {status} {response.get_data()[:200]!r}")
        elif status >= 400 and api.job_records() != before:
            bad.append(f"POST {generated['path']} -> {status} {body['error']['code']} but a job record was left")

    run()
    assert sent >= EXAMPLES // 2, sent
    assert bad == [], "\n".join(bad[:20])


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/abc", "/v1/jobs/abc/cancel", "/v1/batches/abc", "/healthz",
                                  "/v1/openapi.json"])
@pytest.mark.parametrize("method", ["put", "delete", "patch", "trace"])
def test_undeclared_methods_are_405_json_with_allow(secure_api: SecureApi, method: str, path: str):
    """RFC 9110 15.5.6: a 405 lists the methods the target does support, in Allow (our JSON handler keeps it)."""
    response = secure_api.client.open(path, method=method.upper())
    assert response.status_code == 405 and response.get_json()["error"]["code"] == "method_not_allowed"
    allowed = {name.strip() for name in response.headers["Allow"].split(",")}
    doc = secure_api.client.get("/v1/openapi.json").get_json()
    template = path.replace("/abc", "/{job_id}" if path.startswith("/v1/jobs") else "/{batch_id}")
    assert {m.upper() for m in doc["paths"][template]} <= allowed
    assert method.upper() not in allowed


def test_other_http_errors_keep_their_headers(make_secure_api):
    """Any werkzeug HTTPException keeps the headers it carries (here Retry-After), with our JSON body."""
    from werkzeug.exceptions import ServiceUnavailable  # noqa: PLC0415

    api: SecureApi = make_secure_api()
    app = api.client.application

    def busy() -> None:
        raise ServiceUnavailable(retry_after=7)

    app.add_url_rule("/test-busy", "test_busy", busy)
    response = api.client.get("/test-busy")
    assert response.status_code == 503 and response.headers["Retry-After"] == "7"
    assert response.mimetype == "application/json" and response.get_json()["error"]["code"] == "http_error"


@pytest.mark.parametrize("name", [5, None, ["a.jpg"], {"a": 1}, True])
def test_batch_item_names_that_are_not_strings_are_400(secure_api: SecureApi, name: Any):
    """Found while making the description exact: a JSON item whose name is not a string gave 500 internal_error."""
    token = secure_api.keys.create("names").token
    created = secure_api.client.post("/v1/batches", data={"style": (io.BytesIO(jpeg_bytes()), "s.jpg")},
                                     content_type="multipart/form-data", headers=secure_api.headers(token))
    assert created.status_code == 201, created.get_json()
    response = secure_api.client.post(f"/v1/batches/{created.get_json()['id']}/items",
                                      json={"items": [{"sha256": "a" * 64, "name": name}]},
                                      headers=secure_api.headers(token))
    assert response.status_code == 400 and response.get_json()["error"]["code"] in ("bad_item_name", "bad_items_json")
