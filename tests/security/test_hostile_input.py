"""Hostile uploads and parameters through the API (auth on): each gets its expected 4xx JSON and leaves nothing behind;
awkward but valid images (CMYK, 16-bit, greyscale, palette, alpha, multi-frame GIF) are accepted."""

from __future__ import annotations

import io
from urllib.parse import parse_qs, urlparse

import pytest

from shared.images import decode_image
from shared.settings import Settings

from .conftest import SecureApi, jpeg_bytes
from .corpus import HOSTILE, VALID_MODES


@pytest.fixture
def alice(secure_api: SecureApi) -> str:
    return secure_api.keys.create("alice").token


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("field", ["content", "style"])
def test_hostile_file_gets_its_expected_answer(secure_api: SecureApi, alice: str, name: str, field: str):
    data, status, code = HOSTILE[name]
    files = {"content": (io.BytesIO(jpeg_bytes()), "c.jpg"), "style": (io.BytesIO(jpeg_bytes()), "s.jpg")}
    files[field] = (io.BytesIO(data), name)
    response = secure_api.client.post("/v1/jobs", data={**files, "params": '{"size": 32}'},
                                      content_type="multipart/form-data", headers=secure_api.headers(alice))
    assert response.status_code == status, response.get_json()
    if code is None:
        return
    error = response.get_json()["error"]
    assert error["code"] == code and error["field"] in (field, f"{field}[0]")
    assert secure_api.job_records() == [] and secure_api.storage.list_keys("") == []


def test_multi_frame_gif_uses_its_first_frame():
    decoded = decode_image(HOSTILE["multi_frame.gif"][0], max_pixels=10_000)
    assert decoded.rgb.shape == (32, 32, 3) and tuple(decoded.rgb[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize("name", sorted(VALID_MODES))
def test_unusual_but_valid_modes_are_accepted(secure_api: SecureApi, alice: str, name: str):
    response = secure_api.submit(alice, content=VALID_MODES[name], content_name=name)
    assert response.status_code == 202, response.get_json()
    [key] = [k for k in secure_api.storage.list_keys("inputs/") if k.split("/")[-1].split(".")[0]
             == decode_image(VALID_MODES[name], max_pixels=10_000).sha256]
    rgb = decode_image(secure_api.storage.get(key), max_pixels=10_000).rgb
    assert rgb.shape == (40, 48, 3) and rgb.dtype.name == "uint8"


def test_upload_over_the_byte_limit_is_413(make_secure_api):
    api: SecureApi = make_secure_api(max_upload_bytes=50_000)
    token = api.keys.create("alice").token
    response = api.submit(token, content=b"\xff\xd8\xff" + b"\x00" * 60_000)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "upload_too_large"
    assert api.job_records() == []


@pytest.mark.parametrize("params, status", [
    ('{"size": -5}', 422), ('{"size": 100000}', 422), ('{"iterations": 1e12}', 422),
    ('{"backbone": "resnet1000"}', 422),
    ('{"style_weight": "heavy"}', 422), ('{"unknown_knob": 1}', 422), ("not json", 400), ("[1, 2]", 400),
    ('{"size": NaN}', 422), ('{"content_weight": Infinity}', 422),
])
def test_parameter_bounds(secure_api: SecureApi, alice: str, params: str, status: int):
    response = secure_api.submit(alice, params=params)
    assert response.status_code == status, (params, response.get_json())
    assert response.get_json()["error"]["code"]
    assert secure_api.job_records() == []


def test_presigned_result_urls_are_short_lived(isolated_redis_url: str, s3_endpoint: str, s3_bucket: str):
    """ATELIER_PRESIGN_TTL_S reaches the signature: X-Amz-Expires is the configured lifetime."""
    from api.app import create_app
    from services.registry import JobRegistry
    from services.storage import open_storage
    from services.tenants import KeyStore
    from shared.images import encode_png
    from shared.jobs import JobStatus, result_key

    settings = Settings(redis_url=isolated_redis_url, storage=f"s3://{s3_bucket}", s3_endpoint_url=s3_endpoint,
                        presign_ttl_s=42)
    assert Settings.from_env({"ATELIER_PRESIGN_TTL_S": "42"}).presign_ttl_s == 42
    app = create_app(settings)
    registry = JobRegistry.from_url(isolated_redis_url)
    token = KeyStore(registry.redis).create("alice").token
    client = app.test_client()
    created = client.post("/v1/jobs", data={"content": (io.BytesIO(jpeg_bytes()), "c.jpg"),
                                            "style": (io.BytesIO(jpeg_bytes()), "s.jpg")},
                          content_type="multipart/form-data", headers={"Authorization": f"Bearer {token}"})
    job_id = created.get_json()["id"]
    open_storage(settings).put(result_key(job_id), encode_png(decode_image(jpeg_bytes(), max_pixels=10**6).rgb))
    registry.finish(job_id, JobStatus.SUCCEEDED, result={"key": result_key(job_id), "width": 40, "height": 32})
    response = client.get(f"/v1/jobs/{job_id}/result", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 302
    query = parse_qs(urlparse(response.headers["Location"]).query)
    assert query["X-Amz-Expires"] == ["42"]
