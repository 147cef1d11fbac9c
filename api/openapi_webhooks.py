"""The OpenAPI description of the webhook fields and routes (api/webhook_fields.py, api/blueprints/webhooks.py),
merged into ``api.openapi``. The deliveries themselves (headers, payload, retries) are in docs/webhooks.md: they are
requests the service makes, not routes it serves.
"""

from __future__ import annotations

from typing import Any

from api.webhook_fields import JOB_EVENTS

WEBHOOK_URL_FORMAT = "atelier-webhook-url"  # tests/security/schemathesis_hooks.py generates public-address URLs
_ERROR = {"$ref": "#/components/schemas/Error"}
_UNAVAILABLE = "Redis is down."


def _events_pattern(events: tuple[str, ...]) -> str:
    one = "(" + "|".join(events) + ")"
    return f"^{one}(,{one})*$"


def webhook_form_fields(events: tuple[str, ...] = JOB_EVENTS) -> dict[str, Any]:
    """The two text parts every creating request takes (its form's ``properties``)."""
    return {
        "webhook": {"type": "string", "format": WEBHOOK_URL_FORMAT, "maxLength": 2000,
                    "description": "A text part: an http(s) URL to POST a signed Standard Webhooks event to when this "
                                   "ends (docs/webhooks.md). A URL that is malformed (bad_webhook_url), does not "
                                   "resolve (webhook_unresolvable) or resolves to a loopback, private, link-local, "
                                   "multicast or reserved address not in ATELIER_WEBHOOK_ALLOWLIST "
                                   "(webhook_address_refused) is 422."},
        "webhook_events": {"type": "string", "pattern": _events_pattern(events),
                           "description": "A text part, only with webhook: which ends call it, a comma list or JSON "
                                          f"list of {', '.join(events)} (default: all). Unknown values are 422 "
                                          "bad_webhook_events; without webhook it is 400 "
                                          "webhook_events_without_webhook."},
    }


# The "only with webhook" rule in JSON Schema (2020-12 dependentRequired), for a form schema.
WEBHOOK_DEPENDENCY = {"dependentRequired": {"webhook_events": ["webhook"]}}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _not_found(noun: str) -> dict[str, Any]:
    return {"description": f"Unknown {noun}.", "content": {"application/json": {"schema": _ERROR}}}


def _log_operation(operation_id: str, noun: str, param: dict[str, Any]) -> dict[str, Any]:
    return {"get": {
        "operationId": operation_id,
        "summary": f"The {noun}'s webhook and every delivery attempt (time, status code or error, duration, outcome).",
        "parameters": [param],
        "responses": {"200": _json("#/components/schemas/WebhookLog", "The delivery log, oldest attempt first."),
                      "404": _not_found(noun),
                      "503": {"description": _UNAVAILABLE, "content": {"application/json": {"schema": _ERROR}}}},
    }}


def _param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


_SECRET = {"type": "object", "required": ["secret"], "properties": {
    "secret": {"type": "string", "pattern": "^whsec_[A-Za-z0-9+/]+={0,2}$",
               "description": "whsec_ + base64 of the HMAC key (the Standard Webhooks form)."},
    "previous_valid_until_s": {"type": "integer", "description": "After a rotation: until when (epoch seconds) "
                               "the previous secret also signs every delivery."}}}

WEBHOOK_SCHEMAS: dict[str, Any] = {
    "WebhookSecret": _SECRET,
    "WebhookLog": {"type": "object", "required": ["id", "webhook", "attempts"], "properties": {
        "id": {"type": "string"},
        "webhook": {"type": ["object", "null"], "properties": {
            "url": {"type": "string"}, "events": {"type": "array", "items": {"type": "string"}}}},
        "retry_schedule_s": {"type": "array", "items": {"type": "number"},
                             "description": "The waits between attempts of a delivery that keeps failing."},
        "attempts": {"type": "array", "items": {"type": "object", "properties": {
            "webhook_id": {"type": "string"}, "type": {"type": "string"}, "attempt": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"}, "url": {"type": "string"},
            "status_code": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]},
            "duration_ms": {"type": "number"},
            "outcome": {"type": "string", "enum": ["delivered", "retrying", "gave_up", "stopped", "rejected"]},
            "next_attempt_in_s": {"type": ["number", "null"]}}}}}},
}

WEBHOOK_PATHS: dict[str, Any] = {
    "/v1/webhooks/secret": {"get": {
        "operationId": "getWebhookSecret",
        "summary": "The tenant's webhook signing secret (made on first use).",
        "responses": {"200": _json("#/components/schemas/WebhookSecret", "The current secret."),
                      "503": {"description": _UNAVAILABLE, "content": {"application/json": {"schema": _ERROR}}}},
    }},
    "/v1/webhooks/secret/rotate": {"post": {
        "operationId": "rotateWebhookSecret",
        "summary": "A new signing secret; the previous one keeps signing too for ATELIER_WEBHOOK_SECRET_GRACE_S.",
        "responses": {"200": _json("#/components/schemas/WebhookSecret", "The new secret."),
                      "503": {"description": _UNAVAILABLE, "content": {"application/json": {"schema": _ERROR}}}},
    }},
    "/v1/jobs/{job_id}/webhooks": _log_operation("getJobWebhooks", "job", _param("job_id")),
    "/v1/styles/{model_id}/webhooks": _log_operation("getStyleWebhooks", "style model", _param("model_id")),
    "/v1/videos/{video_id}/webhooks": _log_operation("getVideoWebhooks", "video", _param("video_id")),
    "/v1/batches/{batch_id}/webhooks": _log_operation("getBatchWebhooks", "batch", _param("batch_id")),
}
