"""Every error leaves the API as JSON: ``{"error": {"code", "message", "field"}}`` with the right HTTP status.

``AtelierError`` carries its own code and status; werkzeug's HTTP errors (404 unknown route, 405, 413 upload too
large) get stable codes too, and keep the headers werkzeug gives them (a 405 lists the route's methods in ``Allow``,
as RFC 9110 section 15.5.6 requires); anything else is a 500 ``internal_error`` whose traceback goes to the log, never
to the client.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared.errors import AtelierError

log = logging.getLogger(__name__)

# werkzeug status -> our stable code
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "upload_too_large",
    415: "unsupported_media_type",
}


def error_response(code: str, message: str, status: int, field: str | None = None) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def _with_headers_of(exc: HTTPException, response: Response, status: int) -> tuple[Response, int]:
    """``response`` plus the headers werkzeug attached to ``exc`` (``Allow`` on a 405, ``Retry-After``,
    ``WWW-Authenticate``...), except its HTML Content-Type: the body is our JSON."""
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers.add(name, value)
    return response, status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AtelierError)
    def atelier_error(exc: AtelierError) -> tuple[Response, int]:
        if exc.http_status >= 500:
            log.warning("%s: %s", exc.code, exc.message)
        return error_response(exc.code, exc.message, exc.http_status, exc.field)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> tuple[Response, int]:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return _with_headers_of(exc, *error_response(
            "upload_too_large", f"the request body exceeds the upload limit of {limit} bytes "
            "(ATELIER_MAX_UPLOAD_BYTES)", 413))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        return _with_headers_of(exc, *error_response(code, exc.description or exc.name, status))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error")
        return error_response("internal_error", "internal server error; the details are in the API log", 500)
