"""Malformed request structure gets a 400 with a stable code, never a 5xx and never a silently ignored part.

The bodies are written by hand (not by the test client's form encoder) so that each one is exactly the malformed
multipart a careless or hostile client sends: ``params`` as a file part, a field twice, bytes that are not UTF-8,
JSON nested far deeper than the parser's stack, a missing closing delimiter, no boundary at all.
"""

from __future__ import annotations

import pytest
from api_helpers import NOTHING, image_bytes

pytestmark = pytest.mark.integration

BOUNDARY = "atelier-test-boundary"


def _part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def _images() -> bytes:
    return (_part("content", image_bytes(), "c.jpg", "image/jpeg")
            + _part("style", image_bytes(color=(20, 90, 200)), "s.jpg", "image/jpeg"))


def _post(api, body: bytes, content_type: str | None = None):
    return api.client.post("/v1/jobs", data=body,
                           content_type=content_type or f"multipart/form-data; boundary={BOUNDARY}")


def _closed(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize("body, code", [
    (_closed(_images(), _part("params", b'{"size": 64}', "params.json", "application/json")), "not_a_field"),
    (_closed(_images(), _part("params", b'{"size": 64}'), _part("params", b'{"size": 32}')), "duplicate_field"),
    (_closed(_images(), _part("params", b'{"size": 64, "init": "\xff\xfe"}')), "bad_encoding"),
    (_closed(_images(), _part("params", b"[" * 100_000 + b"]" * 100_000)), "params_too_large"),
    (_closed(_images(), _part("params", b'{"a":' * 5000 + b"1" + b"}" * 5000)), "params_too_deep"),
    (_closed(_images(), _part("queue", b"bulk", "q.txt")), "not_a_field"),
    (_closed(_images(), _part("stlye", image_bytes(), "s.jpg")), "unknown_field"),
    (_images() + f"--{BOUNDARY}".encode(), "malformed_multipart"),  # no closing delimiter
    (b"this is not multipart at all", "malformed_multipart"),
])
def test_malformed_structure_is_400_with_a_stable_code(api, body, code):
    response = _post(api, body)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == code, response.json
    assert api.leftovers() == NOTHING


def test_multipart_without_a_boundary_is_400(api):
    response = _post(api, _closed(_images()), content_type="multipart/form-data")
    assert response.status_code == 400 and response.json["error"]["code"] == "malformed_multipart"
    assert api.leftovers() == NOTHING


def test_the_same_request_well_formed_is_accepted(api):
    # The control: the parts above are refused for their structure, not because the images or params are bad.
    response = _post(api, _closed(_images(), _part("params", b'{"size": 64, "iterations": 2}')))
    assert response.status_code == 202, response.json
    assert response.json["params"]["size"] == 64


@pytest.mark.parametrize("body, code", [
    (b"[" * 5000 + b"]" * 5000, "json_too_deep"),
    (b'{"items": [{"sha256": "\xff", "name": "a.png"}]}', "bad_encoding"),
    (b'{"items": [', "bad_json"),
    (b'{"items": "' + b"x" * (2 * 1024 * 1024) + b'"}', "body_too_large"),
])
def test_a_malformed_json_items_body_is_400(api, body, code):
    import io

    batch = api.client.post("/v1/batches", content_type="multipart/form-data",
                            data={"style": [(io.BytesIO(image_bytes()), "s.jpg")]})
    assert batch.status_code == 201, batch.json
    response = api.client.post(f"/v1/batches/{batch.json['id']}/items", data=body, content_type="application/json")
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == code
