"""Property-based fuzzing of the API from its own OpenAPI description (hypothesis): no request may get a 5xx.

For every operation in ``/v1/openapi.json`` hypothesis generates path and query parameters (schema-shaped values
and arbitrary text), multipart bodies built from the declared parts (valid tiny images, corpus files, random bytes,
missing and unknown parts, ``params`` as schema-shaped JSON objects or junk), JSON bodies where declared, and
``Authorization`` / ``Idempotency-Key`` headers that are valid, wrong or junk. Requests go through the real app on a
real Redis with authentication on. At least ``MIN_REQUESTS`` requests in all; every answer must be below 500 and,
for errors, JSON with a stable ``error.code``.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import SecureApi, jpeg_bytes
from .corpus import HOSTILE, VALID_MODES

EXAMPLES_PER_OPERATION = 45
MIN_REQUESTS = 500

_junk_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
# What can travel in a header at all (no CR/LF; latin-1), valid or not for our purposes.
_header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                       max_size=40)
_json_scalars = st.none() | st.booleans() | st.integers(-10**15, 10**15) | st.floats(allow_nan=True) | _junk_text
_json_values = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                            | st.dictionaries(_junk_text, inner, max_size=3), max_leaves=6)
_files = st.sampled_from([jpeg_bytes(), *VALID_MODES.values(), *(data for data, _s, _c in HOSTILE.values()
                                                                  if len(data) < 20_000)]) | st.binary(max_size=200)


def _schema_value(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A value shaped like ``schema`` (enums, bounded numbers, strings), or anything at all."""
    kind = schema.get("type")
    if "enum" in schema:
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "integer":
        shaped = st.integers(min_value=schema.get("minimum", -10**6) - 2, max_value=schema.get("maximum", 10**6) + 2)
    elif kind == "number":
        shaped = st.floats(min_value=schema.get("minimum", -1e6), max_value=schema.get("maximum", 1e6)) | st.floats()
    elif kind == "boolean":
        shaped = st.booleans()
    elif kind == "array":
        shaped = st.lists(_schema_value(schema.get("items", {})), max_size=4)
    else:
        shaped = _junk_text
    return shaped | _json_values


class OperationFuzzer:
    def __init__(self, api: SecureApi, doc: dict[str, Any], token: str, known_ids: list[str]) -> None:
        self.api, self.doc, self.token, self.known_ids = api, doc, token, known_ids
        self.sent = 0
        self.bad: list[str] = []

    def params_object(self) -> st.SearchStrategy[str]:
        properties = self.doc["components"]["schemas"]["Params"]["properties"]
        shaped = st.fixed_dictionaries({}, optional={name: _schema_value(spec) for name, spec in properties.items()})
        return shaped.map(lambda d: json.dumps(d, allow_nan=True)) | _junk_text | _json_values.map(json.dumps)

    def request(self, method: str, path: str, op: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        path_values = {}
        query = {}
        for parameter in op.get("parameters", []):
            value = _schema_value(parameter.get("schema", {})).map(str)
            if parameter["in"] == "path":
                path_values[parameter["name"]] = st.sampled_from(self.known_ids) | value
            elif parameter["in"] == "query":
                query[parameter["name"]] = value
        auth = st.sampled_from([f"Bearer {self.token}"] * 6 + ["", "Bearer atl_0000000000000000_x", "Basic a"]) \
            | _header_text.map(lambda t: "Bearer " + t)
        body = op.get("requestBody", {}).get("content", {})
        return st.fixed_dictionaries({
            "path": st.fixed_dictionaries(path_values),
            "query": st.fixed_dictionaries({}, optional=query),
            "auth": auth,
            "idempotency": st.none() | _header_text,
            "multipart": self.multipart(body["multipart/form-data"]["schema"]) if "multipart/form-data" in body
            else st.none(),
            "json": _json_values if "application/json" in body else st.none(),
        })

    def multipart(self, schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        parts: dict[str, st.SearchStrategy[Any]] = {}
        for name, spec in schema.get("properties", {}).items():
            if spec.get("format") == "binary" or spec.get("items", {}).get("format") == "binary":
                parts[name] = st.lists(_files, min_size=1, max_size=2)
            elif name == "params":
                parts[name] = self.params_object()
            else:
                parts[name] = _schema_value(spec).map(str)
        parts["unknown_part"] = _junk_text
        return st.fixed_dictionaries({}, optional=parts)

    def send(self, method: str, template: str, generated: dict[str, Any]) -> None:
        path = template
        for name, value in generated["path"].items():
            path = path.replace("{" + name + "}", quote(value, safe="") or "x")
        if generated["query"]:
            path += "?" + urlencode(generated["query"])
        headers = {}
        if generated["auth"]:
            headers["Authorization"] = generated["auth"]
        if generated["idempotency"] is not None:
            headers["Idempotency-Key"] = generated["idempotency"]
        kwargs: dict[str, Any] = {"headers": headers}
        if generated["multipart"] is not None and (generated["json"] is None or len(generated["multipart"]) % 2):
            data: dict[str, Any] = {}
            for name, value in generated["multipart"].items():
                if isinstance(value, list):
                    data[name] = [(io.BytesIO(blob), f"{name}{i}.jpg") for i, blob in enumerate(value)]
                else:
                    data[name] = value
            kwargs.update(data=data, content_type="multipart/form-data")
        elif generated["json"] is not None:
            kwargs.update(data=json.dumps(generated["json"], allow_nan=True), content_type="application/json")
        response = getattr(self.api.client, method)(path, **kwargs)
        self.sent += 1
        if response.status_code >= 500:
            self.bad.append(f"{method.upper()} {path} -> {response.status_code} {response.get_data()[:200]!r}")
        elif response.status_code >= 400 and response.mimetype == "application/json":
            assert response.get_json()["error"]["code"]


def _fuzz_operation(fuzzer: OperationFuzzer, method: str, path: str, op: dict[str, Any]) -> None:
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(generated=fuzzer.request(method, path, op))
    def run(generated: dict[str, Any]) -> None:
        fuzzer.send(method, path, generated)

    run()


def test_fuzz_every_operation_no_5xx(make_secure_api):
    api: SecureApi = make_secure_api(rate_limit_per_min=0, max_queued_jobs=0)
    token = api.keys.create("fuzz").token
    job = api.submit(token).get_json()["id"]
    doc = api.client.get("/v1/openapi.json").get_json()
    fuzzer = OperationFuzzer(api, doc, token, known_ids=[job, "f" * 32])
    operations = [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()
                  if method in ("get", "post", "put", "delete", "patch")]
    assert len(operations) >= 10
    for method, path, op in operations:
        _fuzz_operation(fuzzer, method, path, op)
    print(f"fuzzed {fuzzer.sent} requests over {len(operations)} operations")
    assert fuzzer.sent >= MIN_REQUESTS, fuzzer.sent
    assert fuzzer.bad == [], "\n".join(fuzzer.bad[:20])


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
