"""Schemathesis hooks for the Atelier description (loaded by the CLI through ``SCHEMATHESIS_HOOKS``).

They teach Schemathesis what JSON Schema cannot generate, so that the requests it calls valid really are valid and
its ``positive_data_acceptance`` check means something:

- ``image/*`` parts (the ``encoding`` of every image part in ``/v1/openapi.json``): real, decodable images of small
  random sizes, modes and formats, instead of random bytes the server rightly refuses with ``415``;
- ``format: atelier-cursor``: strings shaped like the ``next_cursor`` values GET /v1/jobs hands out (base64url of
  ``<creation score>|<job id>``, services/registry.py). A cursor naming a job that is gone is still valid (paging
  continues below its creation time), so any such string must be accepted;
- ``format: atelier-source-name``: relative paths such as ``a/x.jpg`` (the rules are in the description; names
  that break them are tested by hand in tests/batch);
- ``format: atelier-webhook-url``: http(s) URLs on a public address, which the SSRF check accepts.

Nothing here relaxes a check: the hooks only make generated *valid* data valid.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import schemathesis
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from PIL import Image
from schemathesis.core.parameters import ParameterLocation

FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF", "image/bmp": "BMP"}


@st.composite
def _image(draw: st.DrawFn, fmt: str) -> bytes:
    width = draw(st.integers(32, 72))
    height = draw(st.integers(32, 72))
    mode = draw(st.sampled_from(["RGB", "L"] + (["RGBA"] if fmt in ("PNG", "WEBP") else [])))
    seed = draw(st.integers(0, 255))
    image = Image.effect_noise((width, height), 40 + seed % 60).convert(mode)  # textured: a uniform style is no style
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


for _media_type, _fmt in FORMATS.items():
    schemathesis.openapi.media_type(_media_type, _image(_fmt))


def _cursor(score: float, job_id: str) -> str:
    return base64.urlsafe_b64encode(f"{score!r}|{job_id}".encode()).decode().rstrip("=")


schemathesis.openapi.format("atelier-cursor", st.builds(
    _cursor, st.floats(min_value=1.6e9, max_value=2.2e9, allow_nan=False), st.text("0123456789abcdef", min_size=32,
                                                                                  max_size=32)))


schemathesis.openapi.format("atelier-source-name", st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12), min_size=1, max_size=3,
).map(lambda segments: "/".join(segments) + ".jpg"))


# ``format: atelier-webhook-url``: URLs on public addresses (literal IPs from documentation-free public ranges, so
# no DNS is involved), which the SSRF check must accept; refused ones are tested by hand in tests/webhooks.
schemathesis.openapi.format("atelier-webhook-url", st.builds(
    "https://93.184.216.{}/hooks/{}".format, st.integers(1, 254), st.text("abcdefghijklmnopqrstuvwxyz0123456789",
                                                                         min_size=1, max_size=12)))


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict) -> None:
    """Send every image as a file part. Schemathesis 4.32 replaces a property that has an ``encoding`` strategy with
    one value, and sends a lone value of an array-typed property (``style``, a batch's ``content``) as a text part
    without a file name, which no multipart server can read back as bytes. One image in a list is the same request
    the description means, with the file name every HTTP client gives a file part."""
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict):
        return
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY):
        return  # a lone value where the schema wants an array is then the point of the case
    properties = case.operation.definition.raw["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    for name, value in list(case.body.items()):
        if isinstance(value, bytes) and properties.get(name, {}).get("type") == "array":
            case.body[name] = [value]


@schemathesis.hook
def filter_failure(context: schemathesis.HookContext, failure: Any, case: schemathesis.Case, response: Any) -> bool:
    """Keep every failure but one artifact: a multipart case labelled "negative body" whose body, as sent, is valid.

    Schemathesis 4.32's coverage phase builds its header and query cases on a body template that keeps the
    template's own label, and a multipart template built from ``encoding`` strategies is labelled negative although
    it is a valid request (one content image, one style image). Accepting a valid request is right, so such an
    ST201 is dropped; the body is checked here against the operation's own schema, so a real violation stays."""
    if getattr(failure, "code", None) != "ST201" or not isinstance(case.body, dict):
        return True
    if case.media_type != "multipart/form-data":
        return True
    raw = case.operation.schema.raw_schema
    form = case.operation.definition.raw["requestBody"]["content"]["multipart/form-data"]["schema"]
    sent = {name: _as_json(value) for name, value in case.body.items() if value is not None}
    errors = list(Draft202012Validator({**form, "components": raw["components"]}).iter_errors(sent))
    return bool(errors)  # False (drop) when what was sent is valid


def _as_json(value: Any) -> Any:
    """A multipart value as the schema sees it: a file part is a binary string."""
    if isinstance(value, (bytes, bytearray)):
        return "<binary>"
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    return value


def _clip(width: int, height: int, frames: int) -> bytes:
    """A real H.264 MP4 (PyAV): what a video part of POST /v1/videos is, instead of random bytes (415)."""
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        rng = np.random.default_rng(width * height + frames)
        for _ in range(frames):
            rgb = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


_CLIPS = [_clip(64, 48, 4), _clip(48, 64, 6)]
for _video_type in ("video/mp4", "video/quicktime", "video/webm"):
    schemathesis.openapi.media_type(_video_type, st.sampled_from(_CLIPS))


@schemathesis.hook("filter_body").apply_to(method="POST", path="/v1/videos")
def filter_body(context: schemathesis.HookContext, body: Any) -> bool:
    """POST /v1/videos: drop the bodies that break the cross-field rules the description states in words (JSON
    Schema cannot say them), which the route refuses by design: mode fast or a style_model (a generated id names
    no model this tenant trained: 422 style_model_not_found), mode optimize without style parts (400), overlap
    frames not below segment frames (422). Only drops cases; it never turns one into another."""
    if not isinstance(body, dict):
        return True
    params = body.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return True
    if params.get("style_model") is not None or params.get("mode") == "fast":
        return False
    if not body.get("style"):
        return False
    segment, overlap = params.get("segment_frames", 24), params.get("overlap_frames", 4)
    return not (isinstance(segment, int) and isinstance(overlap, int) and overlap >= segment)
