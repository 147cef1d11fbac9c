"""Reading requests: multipart structure, uploads, ``params`` JSON and query integers. Nothing is stored until all
of a request is valid, and every problem is a 4xx JSON error naming the part and what is allowed.

One reader each, shared by ``/v1/jobs`` and ``/v1/batches`` (and any later kind of work):

- ``require_multipart`` + ``refuse_unknown_parts``: the body is well-formed ``multipart/form-data``; every part has
  a known name and the right shape (images are file parts, ``params``/``queue`` are text fields, each at most once);
- ``read_upload``: one image file part -> ``Upload`` (decoded and checked by ``shared.images``);
- ``form_text`` and ``parse_params``: the ``params`` JSON object -> ``StyleParams`` (400 when it is not a JSON object,
  is too large, too deeply nested or not UTF-8; 422 when a value is out of bounds).

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
from shared.jobs import input_key
from shared.params import MAX_STYLES, StyleParams
from shared.tasks import INTERACTIVE_QUEUE, QUEUES

FILE_FIELDS = ("content", "style")
FORM_FIELDS = ("params", "queue", "webhook", "webhook_events")  # the webhook pair: api/webhook_fields.py
# Far above any real params object (every parameter with 64 layers is about 4 KB); a bigger one is a mistake or an
# attack, and json.loads on it would only waste the request's time.
MAX_PARAMS_CHARS = 64 * 1024
SMALL_BODY_BYTES = 4096  # bodies this small are read whole to tell an empty form from garbage


@dataclass(frozen=True)
class Upload:
    """One accepted image upload."""

    name: str | None  # the client's file name, for people; never used as a path
    image: DecodedImage
    data: bytes

    @property
    def key(self) -> str:
        """Where it is stored: content-addressed (``inputs/<sha256>.<ext>``), so the same bytes are stored once."""
        return input_key(self.image.sha256, self.image.format)


@dataclass(frozen=True)
class JobRequest:
    params: StyleParams
    content: Upload
    styles: list[Upload]
    queue: str


def parse_job_request(request: Request, *, max_pixels: int) -> JobRequest:
    """Validate the whole request; raises ``AtelierError`` subclasses (400/413/415/422) on the first problem."""
    require_multipart(request)
    refuse_unknown_parts(request, FILE_FIELDS, FORM_FIELDS)
    content_files = request.files.getlist("content")
    if len(content_files) != 1:
        raise BadRequest("missing_content" if not content_files else "too_many_content",
                         f"expected exactly one 'content' file part, got {len(content_files)}", field="content")
    style_files, params = parse_styles_and_params(request)
    queue = form_text(request, "queue") or INTERACTIVE_QUEUE
    if queue not in QUEUES:
        raise BadRequest("bad_queue", f"queue={queue[:60]!r} is not allowed; expected one of {', '.join(QUEUES)}",
                         field="queue")
    content = read_upload(content_files[0], "content", max_pixels)
    styles = [read_upload(file, f"style[{index}]", max_pixels) for index, file in enumerate(style_files)]
    return JobRequest(params=params, content=content, styles=styles, queue=queue)


def parse_styles_and_params(request: Request) -> tuple[list[FileStorage], StyleParams]:
    """The ``style`` file parts and the ``params`` checked against their number (jobs and batches share this):
    1 to MAX_STYLES parts, or none when ``params`` names a ``style_model``."""
    params = parse_params(form_text(request, "params"))
    style_files = style_parts(request, required=params.style_model is None, instead=" (or a style_model in params)")
    return style_files, params.with_styles(len(style_files))


def style_parts(request: Request, *, required: bool = True, instead: str = "") -> list[FileStorage]:
    """The ``style`` file parts: at most ``MAX_STYLES``, and at least one when ``required`` (``instead`` says what
    may replace them, in the message)."""
    style_files = request.files.getlist("style")
    if required and not style_files:
        raise BadRequest("missing_style", f"expected one or more 'style' file parts{instead}, got none",
                         field="style")
    if len(style_files) > MAX_STYLES:
        raise BadRequest("too_many_styles", f"got {len(style_files)} 'style' files; allowed: 1 to {MAX_STYLES}",
                         field="style")
    return style_files


def parse_params(text: str | None) -> StyleParams:
    """``params`` form field -> ``StyleParams``: 400 if it is not a JSON object, 422 if a value is out of bounds."""
    return StyleParams.from_mapping(parse_json_object(text, "params", '{"size": 256}'))


def parse_json_object(text: str | None, field: str, example: str) -> dict[str, Any]:
    """A text field holding a JSON object (empty: ``{}``), or 400: ``params_too_large``, ``bad_params_json``,
    ``params_too_deep`` (the codes say ``params`` because that is the field every route uses them for)."""
    if text is None or not text.strip():
        return {}
    if len(text) > MAX_PARAMS_CHARS:
        raise BadRequest("params_too_large", f"{field} is {len(text)} characters; allowed: at most "
                         f"{MAX_PARAMS_CHARS}", field=field)
    try:
        values: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest("bad_params_json", f"{field} is not valid JSON ({exc.msg} at position {exc.pos}); "
                         f"expected a JSON object such as {example}", field=field) from None
    except RecursionError:  # json.loads recurses per nesting level: [[[[...]]]] deep enough exhausts the stack
        raise BadRequest("params_too_deep", f"{field} is nested too deeply to read; expected a flat JSON object "
                         f"such as {example}", field=field) from None
    if not isinstance(values, dict):
        raise BadRequest("bad_params_json", f"{field} is a JSON {type(values).__name__}; expected a JSON object "
                         f"such as {example}", field=field)
    return values


def json_body(request: Request, *, max_chars: int, example: str) -> Any:
    """The request's JSON body, or 400: ``body_too_large`` over ``max_chars``, ``bad_encoding`` when it is not
    UTF-8, ``bad_json`` when it does not parse, ``json_too_deep`` when its nesting exhausts the parser's stack
    (Flask's ``get_json`` lets that RecursionError through as a 500). ``example`` shows a valid body."""
    raw = request.get_data(cache=True)
    if len(raw) > max_chars:
        raise BadRequest("body_too_large", f"the JSON body is {len(raw)} bytes; allowed: at most {max_chars}")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("bad_encoding", "the JSON body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest("bad_json", f"the body is not valid JSON ({exc.msg} at position {exc.pos}); expected "
                         f"{example}") from None
    except RecursionError:
        raise BadRequest("json_too_deep", f"the JSON body is nested too deeply to read; expected {example}") from None


def form_text(request: Request, name: str) -> str | None:
    """The text field ``name`` (sent at most once), or None. Werkzeug decodes fields as UTF-8 and replaces bytes
    that are not with U+FFFD; such a field is refused instead of being read with the replacement characters."""
    values = request.form.getlist(name)
    if len(values) > 1:
        raise BadRequest("duplicate_field", f"the form field {name!r} was sent {len(values)} times; send it once",
                         field=name)
    if not values:
        return None
    if "\ufffd" in values[0]:
        raise BadRequest("bad_encoding", f"the form field {name!r} is not valid UTF-8 text", field=name)
    return values[0]


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
        raise BadRequest(f"bad_{name}", f"{name}={raw[:60]!r} is not allowed; expected an integer from {minimum} to "
                         f"{maximum}", field=name)
    return value


def require_multipart(request: Request) -> None:
    """The body must be ``multipart/form-data`` that werkzeug could split into parts. Werkzeug answers a body it
    cannot parse (no boundary, no closing delimiter, garbage) with an empty form instead of an error; a non-empty
    body that gave no part at all is such a body, and the client deserves to hear so rather than 'missing part'."""
    if request.mimetype != "multipart/form-data":
        raise BadRequest("expected_multipart", f"the body is {request.mimetype or 'empty'!r}; expected "
                         "multipart/form-data (curl -F 'content=@photo.jpg' -F 'style=@painting.jpg')", field=None)
    boundary = request.mimetype_params.get("boundary")
    if not boundary:
        raise BadRequest("malformed_multipart", "the multipart/form-data Content-Type has no boundary parameter")
    length = request.content_length or 0
    empty_form = False
    if length <= SMALL_BODY_BYTES:
        # Read before the form parser (which then parses this cached copy): a body of just the closing delimiter,
        # "--<boundary>--", is a well-formed empty form, not garbage.
        empty_form = request.get_data(cache=True).strip() == f"--{boundary}--".encode()
    if not request.files and not request.form and length > 0 and not empty_form:
        raise BadRequest("malformed_multipart", "the multipart body could not be parsed into parts (wrong boundary, "
                         "missing closing delimiter or not multipart at all)")


def refuse_unknown_parts(request: Request, file_fields: tuple[str, ...], form_fields: tuple[str, ...]) -> None:
    """Every part has a known name and the right kind: a typo such as "styles" is named, not silently ignored, and
    an image sent as text or ``params`` sent as a file is refused instead of being dropped."""
    allowed = file_fields + form_fields
    for name in list(request.files.keys()) + list(request.form.keys()):
        if name not in allowed:
            raise BadRequest("unknown_field", f"unknown form field {name[:60]!r}; allowed: " + ", ".join(allowed),
                             field=name[:60])
    for name in file_fields:
        if name in request.form:
            raise BadRequest("not_a_file", f"{name!r} must be a file part (curl -F '{name}=@path'), not a text field",
                             field=name)
    for name in form_fields:
        if name in request.files:
            raise BadRequest("not_a_field", f"{name!r} must be a text field (curl -F '{name}=...' or "
                             f"--form-string), not a file part", field=name)


def read_upload(file: FileStorage, field: str, max_pixels: int) -> Upload:
    """One image file part -> ``Upload``; 413/415 from ``shared.images.decode_image`` when it is not acceptable."""
    data = file.read()
    return Upload(name=display_name(file.filename), image=decode_image(data, max_pixels=max_pixels, field=field),
                  data=data)


def display_name(filename: str | None) -> str | None:
    """The base name the client gave, trimmed: shown back in the job, never used as a path."""
    if not filename:
        return None
    return filename.replace("\\", "/").rsplit("/", 1)[-1][:200] or None
