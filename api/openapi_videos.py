"""The ``/v1/videos`` part of the OpenAPI description (``api/openapi.py`` merges it; built with its helpers).

Routes: ``api/blueprints/videos.py``; parameters: ``shared/video_params.py``; limits: ``ATELIER_VIDEO_MAX_*``.
"""

from __future__ import annotations

from typing import Any

from api.openapi import (
    _IDEMPOTENCY_KEY,
    _IMAGE_ENCODING,
    _LOCATION,
    _NULLABLE_ERROR,
    _NULLABLE_TIME,
    _REPLAYED,
    _RETRY_AFTER,
    _UNAVAILABLE,
    CURSOR_FORMAT,
    _cancel_operation,
    _error,
    _file_operation,
    _get_operation,
    _json,
    _list_operation,
    _ref,
    _with_links,
)
from api.openapi_webhooks import WEBHOOK_DEPENDENCY, webhook_form_fields
from shared.jobs import STATUS_VALUES
from shared.params import MAX_STYLES
from shared.video import ALLOWED_VIDEO_CODECS
from shared.video_params import video_params_schema

VIDEO_MEDIA_TYPES = "video/mp4, video/quicktime, video/webm"  # and animated GIF (image/gif)

_VIDEO_ID = {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
             "description": "Video id as returned by POST /v1/videos; an unknown one is 404."}

_VIDEO_PART = {"type": "string", "format": "binary",
               "description": "Exactly one video file part: MP4, MOV, WebM or animated GIF (video codecs "
                              + ", ".join(ALLOWED_VIDEO_CODECS) + "). Not a video or broken: 415 "
                              "(unsupported_media_type, corrupt_video); over ATELIER_VIDEO_MAX_BYTES or "
                              "ATELIER_VIDEO_MAX_PIXELS per frame: 413 video_too_large; longer than "
                              "ATELIER_VIDEO_MAX_DURATION_S or more frames than ATELIER_VIDEO_MAX_FRAMES: 422 "
                              "(video_too_long, video_too_many_frames)."}
_IMAGE_PART = {"type": "string", "format": "binary",
               "description": "A style image: JPEG, PNG, WEBP, GIF (first frame) or BMP."}

_VIDEO_FORM = {
    "type": "object",
    # 'style' is required as for images: the one exception, a fast video naming a trained style_model, sends
    # none (said in its description; JSON Schema cannot tie a part to a key inside the params part).
    "required": ["video", "style"],
    "additionalProperties": False,
    "properties": {
        "video": _VIDEO_PART,
        "style": {"type": "array", "minItems": 1, "maxItems": MAX_STYLES, "items": _IMAGE_PART,
                  "description": f"1 to {MAX_STYLES} style images (repeat the part). The one exception: mode fast "
                                 "with params.style_model (a model you trained) takes none, the model is the "
                                 "style."},
        "params": {**_ref("VideoParams"), "description": "A text part holding a JSON object (see VideoParams)."},
        **webhook_form_fields(),
    },
    **WEBHOOK_DEPENDENCY,
}
_VIDEO_ENCODING = {"video": {"contentType": VIDEO_MEDIA_TYPES}, "style": _IMAGE_ENCODING,
                   "params": {"contentType": "application/json"}}

_SEGMENT = {
    "type": "object",
    "required": ["index", "status", "start", "end", "overlap"],
    "properties": {
        "index": {"type": "integer", "minimum": 0},
        "id": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": [*STATUS_VALUES, "missing"]},
        "start": {"type": "integer", "minimum": 0, "description": "First frame (of the decoded clip)."},
        "end": {"type": "integer", "minimum": 1, "description": "One past the last frame."},
        "overlap": {"type": "integer", "minimum": 0,
                    "description": "Leading frames shared with the previous segment, crossfaded at assembly."},
        "frames": {"type": "integer"},
        "frames_done": {"type": "integer"},
        "deliveries": {"type": "integer"},
        "worker": {"type": ["object", "null"]},
        "error": _NULLABLE_ERROR,
    },
}

VIDEO_SCHEMAS: dict[str, Any] = {
    "VideoParams": video_params_schema(),
    "Video": {
        "type": "object",
        "required": ["id", "status", "created_at", "params", "frames_done", "links"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string", "enum": ["video"]},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
            "params": {"type": "object"},
            "inputs": {"type": "object"},
            "frames_done": {"type": "integer", "minimum": 0,
                            "description": "Frames styled so far across segments (shared frames counted in each)."},
            "frames": {"type": ["integer", "null"], "description": "Frames to style in all (null until planned)."},
            "progress": {"type": ["object", "null"]},
            "segments": {"type": ["array", "null"], "items": _SEGMENT, "description": "Per-segment state (null "
                         "in listings; empty until a worker has planned the video)."},
            "result": {"type": ["object", "null"]},
            "error": _NULLABLE_ERROR,
            "metrics": {"type": ["object", "null"], "description": "Once assembled: warping_error (Lai et al. "
                        "2018, on the input's DIS flow), warping_error_seams and _inside, timings, workers."},
            "cancel_requested": {"type": "boolean"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "VideoList": {
        "type": "object",
        "required": ["videos", "next_cursor"],
        "properties": {"videos": {"type": "array", "items": _ref("Video")},
                       "next_cursor": {"type": ["string", "null"], "format": CURSOR_FORMAT}},
    },
}

_VIDEO_LINKS = {
    "GetVideo": {"operationId": "getVideo", "parameters": {"video_id": "$response.body#/id"},
                 "description": "The video just created."},
    "CancelVideo": {"operationId": "cancelVideo", "parameters": {"video_id": "$response.body#/id"}},
}
_NOT_FINISHED_ERRORS = {"404": _error("Unknown video."),
                        "409": _error("Not finished yet (not_ready) or finished without a result (no_result).")}

VIDEO_PATHS: dict[str, Any] = {
    "/v1/videos": {
        "post": {
            "operationId": "createVideo",
            "summary": "Style a clip with temporal consistency, in segments spread over the workers (bulk queue).",
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": _VIDEO_FORM, "encoding": _VIDEO_ENCODING}}},
            "responses": {
                "202": _with_links(_json(_ref("Video"), "Accepted; the video is queued.", {"Location": _LOCATION}),
                                   _VIDEO_LINKS),
                "200": _with_links(_json(_ref("Video"), "Idempotent replay.",
                                         {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED}), _VIDEO_LINKS),
                "400": _error("Malformed request: not multipart, unknown part, no or several video parts, style "
                              "parts missing (optimize) or too many, params not a JSON object."),
                "409": _error("A request with this Idempotency-Key is still being processed.",
                              {"Retry-After": _RETRY_AFTER}),
                "413": _error("Body, video or a frame too large (video_too_large, upload_too_large)."),
                "415": _error("The video part is not a video we accept or is broken; or a style part is not an "
                              "image."),
                "422": _error("A parameter is unknown or out of bounds; too long or too many frames; style_model "
                              "unknown or not trained; a layer too deep for size; no worker has the backbone."),
                "429": _error("Tenant rate limit or queued-jobs cap.", {"Retry-After": _RETRY_AFTER}),
                "503": _error(_UNAVAILABLE),
            },
        },
        "get": _list_operation("listVideos", "List this tenant's videos, newest first.", "VideoList"),
    },
    "/v1/videos/{video_id}": {"get": _get_operation(
        "getVideo", "A video's status, frames done of frames, per-segment state, metrics and links.", _VIDEO_ID,
        "Video", "The video.", "Unknown video.")},
    "/v1/videos/{video_id}/cancel": {"post": _cancel_operation(
        "cancelVideo", "Cancel a video and every segment: queued ones at once; running ones at their next report.",
        _VIDEO_ID, "Video", "Canceled or already finished.",
        "Running: its segments stop shortly, then it is canceled.", "Unknown video.")},
    "/v1/videos/{video_id}/result": {"get": _file_operation(
        "getVideoResult", "The stylized clip: H.264 MP4 at the input's rate, with the input's audio.", [_VIDEO_ID],
        "video/mp4", "The MP4 (local storage).", _NOT_FINISHED_ERRORS)},
    "/v1/videos/{video_id}/poster": {"get": _file_operation(
        "getVideoPoster", "A poster frame of the stylized clip (its middle frame), PNG.", [_VIDEO_ID], "image/png",
        "The PNG (local storage).", _NOT_FINISHED_ERRORS)},
}
