"""``/v1/videos`` at the door (no worker, no TensorFlow): what is accepted, what each bad video gets, and that a
refused request leaves nothing behind in Redis or storage."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from api_helpers import NOTHING, image_bytes
from PIL import Image

from worker.video.synthetic import encode_test_clip, pan_zoom_clip

CAT = Path(__file__).resolve().parents[2] / "examples" / "content" / "chelsea_cat.jpg"
FRAMES, FPS = 8, 24


@pytest.fixture(scope="module")
def clip() -> bytes:
    image = np.asarray(Image.open(CAT).convert("RGB"))
    frames, _ = pan_zoom_clip(image, FRAMES, (48, 64), 1.0, 1.0)
    return encode_test_clip(frames, FPS, container="mp4", tone_hz=440)


def post_video(api, video: bytes | None, *, styles: int = 1, params: dict | None = None, name: str = "clip.mp4"):
    data: dict = {}
    if video is not None:
        data["video"] = (io.BytesIO(video), name)
    if styles:
        data["style"] = [(io.BytesIO(image_bytes(color=(20, 20, 220))), f"s{i}.jpg") for i in range(styles)]
    if params is not None:
        data["params"] = json.dumps(params)
    return api.client.post("/v1/videos", data=data, content_type="multipart/form-data")


def test_a_video_is_accepted_queued_on_bulk_and_described(api, clip):
    response = post_video(api, clip, params={"size": 64, "iterations": 3, "segment_frames": 4, "overlap_frames": 1})
    assert response.status_code == 202, response.get_json()
    video = response.get_json()
    assert response.headers["Location"] == f"/v1/videos/{video['id']}"
    assert video["status"] == "queued" and video["kind"] == "video" and video["frames_done"] == 0
    assert video["params"]["segment_frames"] == 4 and video["params"]["mode"] == "optimize"
    assert video["inputs"]["probe"]["frame_count"] == FRAMES and video["inputs"]["probe"]["has_audio"]
    assert api.redis.llen("bulk") == 1 and api.redis.llen("interactive") == 0
    assert len(api.storage.list_keys("inputs/")) == 2  # the video and the style image
    got = api.client.get(f"/v1/videos/{video['id']}").get_json()
    assert got["segments"] == [] and got["links"]["cancel"].endswith("/cancel")
    listed = api.client.get("/v1/videos").get_json()
    assert [v["id"] for v in listed["videos"]] == [video["id"]] and listed["next_cursor"] is None
    assert api.client.get(f"/v1/jobs/{video['id']}").status_code == 404  # not an image job
    result = api.client.get(f"/v1/videos/{video['id']}/result")
    assert result.status_code == 409 and result.get_json()["error"]["code"] == "not_ready"
    canceled = api.client.post(f"/v1/videos/{video['id']}/cancel")
    assert canceled.status_code == 200 and canceled.get_json()["status"] == "canceled"


@pytest.mark.parametrize("case", ["random_bytes", "png", "truncated", "too_many_bytes", "too_long",
                                  "too_many_frames", "too_many_pixels", "body_too_large"])
def test_a_bad_video_is_refused_with_its_code_and_leaves_nothing(make_harness, make_settings, clip, case):
    limits = {"too_many_bytes": {"video_max_bytes": len(clip) - 1},
              "too_long": {"video_max_duration_s": 0.2},
              "too_many_frames": {"video_max_frames": FRAMES - 1},
              "too_many_pixels": {"video_max_pixels": 64 * 48 - 1},
              "body_too_large": {"video_max_bytes": 100, "max_upload_bytes": 100}}.get(case, {})
    api = make_harness(make_settings(**limits))
    video = {"random_bytes": np.random.default_rng(0).bytes(4000), "png": image_bytes("PNG"),
             "truncated": clip[: len(clip) // 2]}.get(case, clip)
    expected = {"random_bytes": (415, "unsupported_media_type"), "png": (415, "unsupported_media_type"),
                "truncated": (415, "corrupt_video"), "too_many_bytes": (413, "video_too_large"),
                "too_long": (422, "video_too_long"), "too_many_frames": (422, "video_too_many_frames"),
                "too_many_pixels": (413, "video_too_large"), "body_too_large": (413, "video_too_large")}[case]
    response = post_video(api, video)
    error = response.get_json()["error"]
    assert (response.status_code, error["code"]) == expected, error
    assert error["field"] == "video"
    assert api.leftovers() == NOTHING


@pytest.mark.parametrize("storage_kind", ["local"])  # refused before storage is touched: one backend is enough
@pytest.mark.parametrize(("params", "styles", "status", "code"), [
    ({}, 0, 400, "missing_style"),
    ({"mode": "fast"}, 0, 422, "style_model_required"),
    ({"style_model": "ab" * 16}, 0, 422, "style_model_not_found"),
    ({"style_model": "ab" * 16}, 1, 422, "style_images_with_style_model"),
    ({"size": 4096}, 1, 422, "param_out_of_range"),
    ({"overlap_frames": 8, "segment_frames": 8}, 1, 422, "param_out_of_range"),
    ({"frames": 3}, 1, 422, "unknown_param"),
])
def test_bad_params_are_refused_before_anything_is_stored(api, clip, params, styles, status, code):
    response = post_video(api, clip, styles=styles, params=params)
    assert (response.status_code, response.get_json()["error"]["code"]) == (status, code), response.get_json()
    assert api.leftovers() == NOTHING


def test_a_webhook_to_a_private_address_is_refused_and_one_allowed_is_kept(api, make_harness, make_settings, clip):
    data = {"video": (io.BytesIO(clip), "clip.mp4"), "style": (io.BytesIO(image_bytes()), "s.jpg"),
            "webhook": "http://10.0.0.1/hook"}
    response = api.client.post("/v1/videos", data=data, content_type="multipart/form-data")
    assert (response.status_code, response.get_json()["error"]["code"]) == (422, "webhook_address_refused")
    assert api.leftovers() == NOTHING
    allowed = make_harness(make_settings(webhook_allowlist="127.0.0.1"))
    data = {"video": (io.BytesIO(clip), "clip.mp4"), "style": (io.BytesIO(image_bytes()), "s.jpg"),
            "webhook": "http://127.0.0.1:9/hook", "webhook_events": "succeeded"}
    response = allowed.client.post("/v1/videos", data=data, content_type="multipart/form-data")
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["webhook"] == {"url": "http://127.0.0.1:9/hook", "events": ["succeeded"]}


@pytest.mark.parametrize("storage_kind", ["local"])
def test_the_request_must_have_exactly_one_video_part(api, clip):
    response = post_video(api, None)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_video"
    assert api.client.get("/v1/videos/" + "0" * 32).status_code == 404
    assert api.leftovers() == NOTHING


def test_the_api_probes_videos_without_opencv_or_tensorflow():
    code = ("import sys, api.app, api.blueprints.videos, shared.video;"
            "bad = [m for m in ('cv2', 'tensorflow', 'keras', 'worker') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
