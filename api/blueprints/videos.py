"""``/v1/videos``: style a clip (issue 12), spread over the workers in segments, and hand back an MP4.

A video is a job of kind ``video`` (``shared/video_jobs.py``) on the bulk queue: the same registry, queue, leases,
reconciler, cancel and progress as every job; its segments are ``video_segment`` jobs the worker creates
(``worker/video/service.py``).

- ``POST /v1/videos`` (multipart): one ``video`` file (MP4/MOV/WebM/GIF, checked at the door by
  ``shared.video.probe_video`` against ``ATELIER_VIDEO_MAX_*``: 415 not a video or corrupt, 413 too many bytes or
  pixels, 422 too long or too many frames), ``style`` files for ``mode=optimize`` or ``params.style_model`` for
  ``mode=fast``, ``params`` JSON (``shared.video_params``), ``webhook`` / ``webhook_events`` (``api/webhook_fields.py``:
  called when the video ends). ``202`` + ``Location``; ``Idempotency-Key`` honoured.
  Nothing is stored until the whole request is valid.
- ``GET /v1/videos`` (newest first, cursor), ``GET /v1/videos/{id}`` (status, frames done / frames, per-segment
  state, metrics including the warping error), ``GET /v1/videos/{id}/result`` (the MP4),
  ``GET /v1/videos/{id}/poster`` (PNG), ``POST /v1/videos/{id}/cancel``.

No OpenCV and no TensorFlow here: the probe is PyAV only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, redirect, request, stream_with_context
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from api import idempotency
from api.auth import current_tenant, require_owned
from api.context import ApiContext, api_context
from api.listing import creation_headers, list_page
from api.ratelimit import admit_submission
from api.runnable import check_runnable, check_style_model
from api.submission import submit
from api.validation import (
    display_name,
    form_text,
    parse_json_object,
    read_upload,
    refuse_unknown_parts,
    require_multipart,
    style_parts,
)
from api.webhook_fields import WEBHOOK_FIELDS, parse_webhook
from services import videos
from shared.errors import BadRequest, NotFound, NotReady, TooLarge
from shared.jobs import JobKind, JobRecord, JobStatus, input_key, new_job_id
from shared.video import VideoInfo, probe_video
from shared.video_jobs import new_video_record
from shared.video_params import VideoJobParams

bp = Blueprint("videos", __name__, url_prefix="/v1/videos")

FILE_FIELDS = ("video", "style")
FORM_FIELDS = ("params", *WEBHOOK_FIELDS)
PARAMS_EXAMPLE = '{"mode": "optimize", "size": 256, "segment_frames": 24}'


def video_url(video_id: str) -> str:
    return f"/v1/videos/{video_id}"


@dataclass(frozen=True)
class _Stored:
    """What ``api.submission.store_upload`` reads of an upload's ``image``."""

    content_type: str
    sha256: str


@dataclass(frozen=True)
class VideoUpload:
    """The accepted video part, shaped like ``api.validation.Upload`` for ``api.submission``."""

    name: str | None
    data: bytes
    info: VideoInfo
    image: _Stored

    @property
    def key(self) -> str:
        return input_key(self.image.sha256, self.info.container)


def body_limit_bytes(ctx: ApiContext) -> int:
    """A video request may be as large as the video limit plus the image limit (style parts and params)."""
    return ctx.settings.video_max_bytes + ctx.settings.max_upload_bytes


@bp.before_request
def allow_video_bodies() -> None:
    """The app's body limit is the image one (``ATELIER_MAX_UPLOAD_BYTES``); video requests get theirs."""
    request.max_content_length = body_limit_bytes(api_context())


@bp.post("")
def create_video() -> tuple[dict[str, Any], int, dict[str, str]]:
    ctx = api_context()
    limit = body_limit_bytes(ctx)
    if request.content_length is not None and request.content_length > limit:
        raise _body_too_large(limit)
    try:
        require_multipart(request)
        refuse_unknown_parts(request, FILE_FIELDS, FORM_FIELDS)
    except RequestEntityTooLarge:  # a chunked body over the limit, found while parsing
        raise _body_too_large(limit) from None
    params = VideoJobParams.from_mapping(parse_json_object(form_text(request, "params"), "params", PARAMS_EXAMPLE))
    video_files = request.files.getlist("video")
    if len(video_files) != 1:
        raise BadRequest("missing_video" if not video_files else "too_many_videos",
                         f"expected exactly one 'video' file part, got {len(video_files)}", field="video")
    style_files = style_parts(request, required=params.video.mode == "optimize",
                              instead=" (or params.style_model with mode 'fast')")
    params.with_styles(len(style_files))
    webhook = parse_webhook(request, allowlist=ctx.settings.webhook_allowlist)
    upload = read_video(ctx, video_files[0])
    styles = [read_upload(file, f"style[{i}]", ctx.settings.max_image_pixels) for i, file in enumerate(style_files)]
    tenant = current_tenant()
    model_key = check_style_model(ctx, params.video.style_model, tenant)
    if params.video.mode == "optimize":
        # The frames are never enlarged: the engine runs at the smaller of size and the video's long side.
        frame = params.frame.replace(size=min(params.video.size, max(upload.info.width, upload.info.height)))
        check_runnable(ctx, frame, (upload.info.height, upload.info.width), [u.image.shape for u in styles])

    def create(video_id: str) -> JobRecord:
        admit_submission(ctx, tenant, new_jobs=1)
        record = new_video_record(video_id, params=params.to_dict(), video_key_=upload.key, video_name=upload.name,
                                  probe=upload.info.to_dict(), style_keys=[u.key for u in styles],
                                  style_names=[u.name for u in styles], style_model_key=model_key, tenant=tenant)
        record.webhook = webhook  # called when the video (not a segment) ends: docs/webhooks.md
        return submit(ctx, record, [upload, *styles])  # type: ignore[list-item] - VideoUpload has Upload's shape

    body = idempotency.fingerprint(params=params.to_dict(), video=upload.image.sha256,
                                   styles=[u.image.sha256 for u in styles], webhook=webhook)
    record, created = idempotency.create_once(ctx, tenant, "videos", body, new_id=new_job_id, create=create,
                                              load=lambda video_id: _load(ctx, video_id))
    headers = creation_headers(video_url(record.id), created)
    return present_video(ctx, record), 202 if created else 200, headers


def read_video(ctx: ApiContext, file: Any) -> VideoUpload:
    """The ``video`` part, probed at the door (415/413/422 from ``probe_video``, naming the value and limit)."""
    data = file.read()
    settings = ctx.settings
    info = probe_video(data, max_bytes=settings.video_max_bytes, max_pixels=settings.video_max_pixels,
                       max_duration_s=settings.video_max_duration_s, max_frames=settings.video_max_frames,
                       field="video")
    digest = hashlib.sha256(data).hexdigest()
    return VideoUpload(name=display_name(file.filename), data=data, info=info,
                       image=_Stored(content_type=info.content_type, sha256=digest))


@bp.get("")
def list_videos() -> dict[str, Any]:
    ctx = api_context()
    records, next_cursor = list_page(ctx.registry, JobKind.VIDEO)
    return {"videos": [present_video(ctx, record, with_segments=False) for record in records],
            "next_cursor": next_cursor}


@bp.get("/<video_id>")
def get_video(video_id: str) -> dict[str, Any]:
    ctx = api_context()
    return present_video(ctx, require_video(ctx, video_id))


@bp.post("/<video_id>/cancel")
def cancel_video(video_id: str) -> tuple[dict[str, Any], int]:
    """As for jobs: queued, the video and every segment end at once (200); running, every segment is told to stop
    at its next progress report and the video ends ``canceled`` once they have (202)."""
    ctx = api_context()
    require_video(ctx, video_id)
    record = videos.cancel_video(ctx.registry, video_id)
    if record.status == JobStatus.RUNNING and record.inputs.get("planned") and \
            videos.all_segments_ended(ctx.registry, record):
        # Nothing runs that would wake the video: wake it now (the reconciler would, later).
        ctx.queue.enqueue(video_id, queue=record.queue, kind=JobKind.VIDEO.value)
    return present_video(ctx, record), 202 if record.status == JobStatus.RUNNING else 200


@bp.get("/<video_id>/result")
def get_result(video_id: str) -> BaseResponse:
    return _serve_output(video_id, "key", "mp4", "video/mp4")


@bp.get("/<video_id>/poster")
def get_poster(video_id: str) -> BaseResponse:
    return _serve_output(video_id, "poster", "png", "image/png")


def _serve_output(video_id: str, result_field: str, extension: str, content_type: str) -> BaseResponse:
    """One of a finished video's stored outputs (``record.result[result_field]``); 409 until it has succeeded."""
    ctx = api_context()
    record = require_video(ctx, video_id)
    if record.status != JobStatus.SUCCEEDED or not record.result:
        raise _not_ready(record)
    return serve(ctx, record.result[result_field], f"{video_id}.{extension}", content_type)


# --- helpers --------------------------------------------------------------------------------------------------------


def require_video(ctx: ApiContext, video_id: str) -> JobRecord:
    """The tenant's video ``video_id``, or the same 404 as for a missing one (other kinds, other tenants)."""
    record = _load(ctx, video_id)
    if record is None:
        raise NotFound("video_not_found", f"no video with id {video_id[:64]!r}", field="id")
    require_owned(record.tenant, record.id, "video")
    return record


def _load(ctx: ApiContext, video_id: str) -> JobRecord | None:
    record = ctx.registry.get(video_id)
    return record if record is not None and record.kind == JobKind.VIDEO else None


def serve(ctx: ApiContext, key: str, filename: str, mimetype: str) -> BaseResponse:
    """Redirect to a presigned URL where storage has them (S3), else stream the bytes through the API."""
    url = ctx.storage.presigned_url(key, ctx.settings.presign_ttl_s)
    if url:
        return redirect(url, code=302)
    chunks = ctx.storage.open_stream(key)  # raises NotFound before the response starts
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


def _body_too_large(limit: int) -> TooLarge:
    return TooLarge("video_too_large", f"the request body exceeds the video upload limit of {limit} bytes "
                    "(ATELIER_VIDEO_MAX_BYTES plus ATELIER_MAX_UPLOAD_BYTES for the style parts)", field="video")


def _not_ready(record: JobRecord) -> NotReady:
    if record.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return NotReady("not_ready", f"video {record.id} is {record.status}; the result is available once it has "
                        "succeeded")
    reason = f": {record.error['message']}" if record.error else ""
    return NotReady("no_result", f"video {record.id} is {record.status} and has no result{reason}")


def present_video(ctx: ApiContext, record: JobRecord, *, with_segments: bool = True) -> dict[str, Any]:
    inputs, url = record.inputs, video_url(record.id)
    progress = record.progress or {}
    links = {"self": url, "cancel": url + "/cancel"}
    if record.status == JobStatus.SUCCEEDED:
        links.update(result=url + "/result", poster=url + "/poster")
    return {
        "id": record.id,
        "kind": record.kind,
        "status": record.status,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "params": record.params,
        "inputs": {"video_name": inputs.get("video_name"), "style_names": inputs.get("style_names", []),
                   "probe": inputs.get("probe"), "frames": inputs.get("frames"), "fps": inputs.get("fps"),
                   "width": inputs.get("width"), "height": inputs.get("height")},
        "frames_done": int(progress.get("frames_done") or 0),
        "frames": progress.get("frames"),
        "progress": record.progress,
        "segments": _segments(ctx, record) if with_segments else None,
        "result": None if not record.result else {
            "url": url + "/result", "poster_url": url + "/poster",
            **{name: record.result.get(name) for name in ("width", "height", "frames", "fps", "bytes", "has_audio")}},
        "error": record.error,
        "metrics": record.metrics,
        "cancel_requested": bool(record.cancel_requested),
        "webhook": record.webhook,
        "links": links,
    }


def _segments(ctx: ApiContext, record: JobRecord) -> list[dict[str, Any]]:
    out = []
    for index, (segment, (start, end, overlap)) in enumerate(zip(videos.segments_of(ctx.registry, record),
                                                                 record.inputs.get("plan") or [], strict=False)):
        done = ((record.progress or {}).get("segment_frames_done") or [])
        out.append({"index": index, "id": segment.id if segment else None,
                    "status": segment.status if segment else "missing", "start": start, "end": end,
                    "overlap": overlap, "frames": end - start,
                    "frames_done": int(done[index]) if index < len(done) else 0,
                    "deliveries": int(segment.deliveries or 0) if segment else 0,
                    "worker": segment.worker if segment else None, "error": segment.error if segment else None})
    return out


__all__ = ["bp", "present_video", "video_url"]
