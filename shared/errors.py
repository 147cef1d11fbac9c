"""Error types shared by every layer.

Each error carries a stable ``code`` (clients switch on it), a ``message`` that names the bad value and what is
allowed, an optional ``field`` and the HTTP status the API answers with. Library code raises these; the API maps
them to JSON and the CLI prints ``message`` on one line.
"""

from __future__ import annotations


class AtelierError(Exception):
    """Base class: ``code`` is stable, ``message`` is for people, ``http_status`` is what the API answers."""

    http_status = 500
    default_code = "internal_error"

    def __init__(self, code: str | None = None, message: str = "", *, field: str | None = None) -> None:
        self.code = code or self.default_code
        self.message = message or self.code
        self.field = field
        super().__init__(self.message)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "field": self.field}


class BadRequest(AtelierError):
    """Malformed request: missing part, JSON that does not parse."""

    http_status = 400
    default_code = "bad_request"


class ParamError(AtelierError):
    """A parameter is unknown, of the wrong type or out of bounds."""

    http_status = 422
    default_code = "param_out_of_range"


class ImageError(AtelierError):
    """An upload is not an image, is truncated, or is in a format we do not accept."""

    http_status = 415
    default_code = "unsupported_media_type"


class TooLarge(AtelierError):
    """An upload exceeds the byte or pixel limit."""

    http_status = 413
    default_code = "too_large"


class NotFound(AtelierError):
    http_status = 404
    default_code = "not_found"


class NotReady(AtelierError):
    """The resource exists but is not in a state that allows the request (result before success)."""

    http_status = 409
    default_code = "not_ready"


class Unavailable(AtelierError):
    """A dependency (Redis, storage) is down; the request can be retried."""

    http_status = 503
    default_code = "unavailable"


class WeightsMissing(AtelierError):
    """Pretrained weights are not where we look for them; the message names the file and the place."""

    http_status = 500
    default_code = "weights_missing"


class EngineError(AtelierError):
    """The engine failed on valid input (out of memory, numerical blow-up)."""

    http_status = 500
    default_code = "engine_error"
