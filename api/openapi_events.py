"""The OpenAPI description of the live-event routes (api/blueprints/events.py), merged into ``api.openapi.PATHS``.

Kept apart from api/openapi.py so the event routes' text lives next to nothing else; the same rules hold (every
route described, every answer's status, headers and schema). The event vocabulary itself is in docs/events.md:
JSON Schema cannot describe the inside of a ``text/event-stream`` body.
"""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/schemas/Error"}
_UNAVAILABLE = "Redis is down; nothing was kept."
_EVENTS_DOC = ("docs/events.md: 'retry:', then a 'state' event (the resource now) unless Last-Event-ID names a point "
               "the stream still holds, then the events after it")


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ERROR}}}
    if headers:
        response["headers"] = headers
    return response


_LAST_EVENT_ID = {
    "name": "Last-Event-ID", "in": "header", "required": False, "schema": {"type": "string"},
    "description": "The id of the last event received (EventSource sends it when it reconnects): the stream "
                   "continues after it, without a 'state' event. An id the stream no longer holds, or any other "
                   "value, gets the 'state' event first, as a fresh connection does.",
}
_RETRY_AFTER = {"description": "Seconds to wait before opening a stream again (or poll the resource meanwhile).",
                "required": True, "schema": {"type": "string", "pattern": r"^[0-9]+$"}}
# One event of the stream, as a Server-Sent Events parser sees it (Schemathesis validates each against this).
_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["state", "status", "progress", "preview", "done", "item", "summary"]},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "description": "The event's payload, one JSON object (docs/events.md lists each event's fields)."},
        "id": {"type": "string", "pattern": r"^[0-9]+-[0-9]+$",
               "description": "The Redis stream entry id: send it back as Last-Event-ID to resume after it."},
        "retry": {"type": "integer", "minimum": 0},
    },
}
_STREAM = {"text/event-stream": {"schema": _EVENT}}


def _events_operation(operation_id: str, noun: str, param: dict[str, Any], events: str) -> dict[str, Any]:
    return {"get": {
        "operationId": operation_id,
        "summary": f"Live events of a {noun} (Server-Sent Events), resumable with Last-Event-ID.",
        "description": f"{_EVENTS_DOC}: {events}. The stream ends after 'done'; it also ends after "
                       "ATELIER_SSE_MAX_STREAM_S, and the client reconnects with Last-Event-ID. A comment line "
                       "every ATELIER_SSE_HEARTBEAT_S keeps it open through proxies.",
        "parameters": [param, _LAST_EVENT_ID],
        "responses": {
            "200": {"description": "The event stream.", "content": _STREAM},
            "204": {"description": "Last-Event-ID is the 'done' event of a finished resource: nothing more will "
                                   "come (EventSource stops reconnecting)."},
            "404": _error(f"Unknown {noun} (or another tenant's)."),
            "503": _error("Redis is down, or this API process already serves ATELIER_SSE_MAX_STREAMS streams "
                          "(too_many_streams, with Retry-After: poll meanwhile).", {"Retry-After": {
                              **_RETRY_AFTER, "required": False}}),
        },
    }}


def _id(name: str, noun: str, created_by: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
            "description": f"{noun.capitalize()} id as returned by {created_by}; an unknown one is 404."}


_JOB_EVENTS = "'status', 'progress', 'preview' (with its url), 'done' (status, result_url or error)"
EVENT_PATHS: dict[str, Any] = {
    "/v1/jobs/{job_id}/events": _events_operation("getJobEvents", "job", _id("job_id", "job", "POST /v1/jobs"),
                                                  _JOB_EVENTS),
    "/v1/styles/{model_id}/events": _events_operation(
        "getStyleEvents", "style model training", _id("model_id", "style model", "POST /v1/styles"), _JOB_EVENTS),
    "/v1/videos/{video_id}/events": _events_operation(
        "getVideoEvents", "video", _id("video_id", "video", "POST /v1/videos"), _JOB_EVENTS),
    "/v1/batches/{batch_id}/events": _events_operation(
        "getBatchEvents", "batch", _id("batch_id", "batch", "POST /v1/batches"),
        "'item' per child change (job_id, status, percent), 'summary' (counts, progress, eta_s) as children finish, "
        "'done' (the final summary) once the batch is finished or canceled"),
}
