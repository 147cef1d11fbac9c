"""Parsing and validation of ``POST /v1/jobs`` (multipart): nothing is stored until all of it is valid.

Parts: ``content`` (exactly one image file), ``style`` (one or more image files), optional ``params`` (a JSON object
with the engine's parameter names, see ``shared.params``) and optional ``queue`` (``interactive`` or ``bulk``).
Malformed requests are 400, bad parameters 422, non-images 415, too many pixels 413.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Request

from shared.errors import BadRequest
from shared.images import DecodedImage, decode_image
from shared.params import MAX_STYLES, StyleParams
from shared.tasks import INTERACTIVE_QUEUE, QUEUES

FILE_FIELDS = ("content", "style")
FORM_FIELDS = ("params", "queue")


@dataclass(frozen=True)
class Upload:
    """One accepted image upload."""

    name: str | None  # the client's file name, for people; never used as a path
    image: DecodedImage
    data: bytes


@dataclass(frozen=True)
class JobRequest:
    params: StyleParams
    content: Upload
    styles: list[Upload]
    queue: str


def parse_job_request(request: Request, *, max_pixels: int) -> JobRequest:
    """Validate the whole request; raises ``AtelierError`` subclasses (400/413/415/422) on the first problem."""
    _refuse_unknown_fields(request)
    content_files = request.files.getlist("content")
    if len(content_files) != 1:
        raise BadRequest("missing_content" if not content_files else "too_many_content",
                         f"expected exactly one 'content' file part, got {len(content_files)}", field="content")
    style_files, params = parse_styles_and_params(request)
    queue = request.form.get("queue") or INTERACTIVE_QUEUE
    if queue not in QUEUES:
        raise BadRequest("bad_queue", f"queue={queue!r} is not allowed; expected one of {', '.join(QUEUES)}",
                         field="queue")
    content = _read_image(content_files[0], "content", max_pixels)
    styles = [_read_image(file, f"style[{index}]", max_pixels) for index, file in enumerate(style_files)]
    return JobRequest(params=params, content=content, styles=styles, queue=queue)


def parse_styles_and_params(request: Request) -> tuple[list[FileStorage], StyleParams]:
    """The ``style`` file parts (1 to MAX_STYLES) and the ``params`` checked against their number (jobs and
    batches share this)."""
    style_files = request.files.getlist("style")
    if not style_files:
        raise BadRequest("missing_style", "expected one or more 'style' file parts, got none", field="style")
    if len(style_files) > MAX_STYLES:
        raise BadRequest("too_many_styles", f"got {len(style_files)} 'style' files; allowed: 1 to {MAX_STYLES}",
                         field="style")
    return style_files, parse_params(request.form.get("params")).with_styles(len(style_files))


def parse_params(text: str | None) -> StyleParams:
    """``params`` form field -> ``StyleParams``: 400 if it is not a JSON object, 422 if a value is out of bounds."""
    if text is None or not text.strip():
        return StyleParams()
    try:
        values: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("bad_params_json", f"params is not valid JSON ({exc.msg} at position {exc.pos}); "
                         'expected a JSON object such as {"size": 256}', field="params") from None
    if not isinstance(values, dict):
        raise BadRequest("bad_params_json", f"params is a JSON {type(values).__name__}; expected a JSON object "
                         'such as {"size": 256}', field="params")
    return StyleParams.from_mapping(values)


def int_query_arg(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter within bounds; a bad one is ``400`` naming the value and the allowed range."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise BadRequest(f"bad_{name}", f"{name}={raw!r} is not allowed; expected an integer from {minimum} to "
                         f"{maximum}", field=name)
    return value


def _refuse_unknown_fields(request: Request) -> None:
    # A typo such as "styles" should be named, not silently ignored.
    for name in list(request.files.keys()) + list(request.form.keys()):
        if name not in FILE_FIELDS + FORM_FIELDS:
            raise BadRequest("unknown_field", f"unknown form field {name!r}; allowed: "
                             + ", ".join(FILE_FIELDS + FORM_FIELDS), field=name)
    for name in FILE_FIELDS:
        if name in request.form:
            raise BadRequest("not_a_file", f"{name!r} must be a file part (curl -F '{name}=@path'), not a text field",
                             field=name)


def _read_image(file: FileStorage, field: str, max_pixels: int) -> Upload:
    data = file.read()
    return Upload(name=_display_name(file.filename), image=decode_image(data, max_pixels=max_pixels, field=field),
                  data=data)


def _display_name(filename: str | None) -> str | None:
    """The base name the client gave, trimmed: shown back in the job, never used as a path."""
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or None
