"""The OpenAPI 3.1 description of the HTTP API, served at ``/v1/openapi.json``: the contract, not a sketch.

Written by hand, next to the code it describes, and held to it from two sides:

- ``tests/api/test_api_openapi.py`` fails when a route of the app is missing here (or described here but not served),
  when a creating operation has no links, or when a bound here differs from the one the code enforces;
- ``tests/security/test_schemathesis.py`` runs Schemathesis with all its checks against this document and the real
  app: a request this document calls valid must be accepted, one it calls invalid must be refused with a documented
  4xx, and every answer must match the status codes, headers and schemas described here.

What JSON Schema cannot say is said in descriptions: an image part must be an image the server can decode (else
``415``/``413``), ``style_blend`` needs one weight per ``style`` part, a ``cursor`` is only ever a ``next_cursor``
the server gave (``format: atelier-cursor``; anything else is ``400 bad_cursor``).
"""

from __future__ import annotations

import copy
from typing import Any

from api.openapi_events import EVENT_PATHS
from api.openapi_webhooks import WEBHOOK_DEPENDENCY, WEBHOOK_PATHS, WEBHOOK_SCHEMAS, webhook_form_fields
from api.webhook_fields import BATCH_EVENTS
from services.batches import MAX_ITEMS_PAGE, MAX_NAME_CHARS
from services.registry import MAX_LIST_LIMIT
from shared.jobs import STATUS_VALUES
from shared.params import MAX_STYLES, PARAM_SPECS, json_schema
from shared.tasks import INTERACTIVE_QUEUE, QUEUES
from shared.train_params import TRAIN_PARAM_SPECS

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"

# Query bounds the routes enforce (api/blueprints/*.py); the test compares them with the code's answers.
JOBS_DEFAULT_LIMIT = 20
ITEMS_DEFAULT_LIMIT = 100
MAX_OFFSET = 10**9
IDEMPOTENCY_KEY_MAX = 255
# What shared.images decodes; clients should label image parts with one of these.
IMAGE_MEDIA_TYPES = "image/jpeg, image/png, image/webp, image/gif, image/bmp"
# A cursor is what GET /v1/jobs gave as next_cursor: base64url without padding (services/registry.py).
CURSOR_FORMAT = "atelier-cursor"
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
BATCH_STATUSES = ("empty", "running", "finished", "canceling", "canceled")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(_ref("Error"), description, headers)


def _header(description: str, schema: dict[str, Any] | None = None, *, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


_LOCATION = _header("Path of the created resource.")
_RETRY_AFTER = _header("Seconds to wait before trying again.", {"type": "string", "pattern": r"^[0-9]+$"})
_REPLAYED = _header("Always 'true': this is the answer of the first request with this Idempotency-Key.",
                    {"type": "string", "enum": ["true"]})

# --- params --------------------------------------------------------------------------------------------------------


def params_schema() -> dict[str, Any]:
    return json_schema(PARAM_SPECS, "Stylization parameters; every field is optional and defaults as shown.")


# --- schemas -------------------------------------------------------------------------------------------------------

_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_ERROR = {"type": ["object", "null"], "properties": {"code": {"type": "string"},
                                                              "message": {"type": "string"}}}
_IMAGE = {"type": "string", "format": "binary",
          "description": "An image file part: JPEG, PNG, WEBP, GIF (first frame) or BMP, within "
                         "ATELIER_MAX_IMAGE_PIXELS; anything else is 415 (not an image) or 413 (too many pixels)."}
_STYLES = {"type": "array", "minItems": 1, "maxItems": MAX_STYLES, "items": _IMAGE,
           "description": f"1 to {MAX_STYLES} style images: repeat the 'style' file part."}
SOURCE_NAME_FORMAT = "atelier-source-name"
_SOURCE_NAME = {"type": "string", "format": SOURCE_NAME_FORMAT,
                "description": f"A relative path such as a/x.jpg ('\\' reads as '/'; surrounding whitespace, './' "
                               f"and empty or '.' segments are dropped): at least one segment, no '..' segment, no "
                               f"leading '/', no control characters, at most {MAX_NAME_CHARS} characters; unique in "
                               "the batch. Anything else is 400 bad_item_name."}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable code."},
                "message": {"type": "string", "description": "Names the bad value and what is allowed."},
                "field": {"type": ["string", "null"], "description": "The request part or parameter at fault."},
            },
        }},
    },
    "Params": params_schema(),
    "Progress": {
        "type": ["object", "null"],
        "properties": {
            "iteration": {"type": "integer"},
            "iterations": {"type": "integer"},
            "percent": {"type": "number"},
            "losses": {"type": "object", "additionalProperties": {"type": "number"}},
            "eta_s": {"type": ["number", "null"]},
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "created_at", "params"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
            "params": _ref("Params"),
            "progress": _ref("Progress"),
            "result": {
                "type": ["object", "null"],
                "properties": {"url": {"type": "string", "description": "Path of GET /v1/jobs/{job_id}/result."},
                               "width": {"type": "integer"}, "height": {"type": "integer"}},
            },
            "previews": {"type": "array", "items": {"type": "string"},
                         "description": "Paths of GET /v1/jobs/{job_id}/previews/{iteration}, oldest first."},
            "error": _NULLABLE_ERROR,
            "metrics": {"type": ["object", "null"], "description": "The engine's metrics plus queue_wait_s."},
            "worker": {"type": ["object", "null"],
                       "properties": {"hostname": {"type": "string"}, "pid": {"type": "integer"}}},
            "queue": {"type": "string", "enum": list(QUEUES)},
            "cancel_requested": {"type": "boolean"},
            "batch_id": {"type": ["string", "null"]},
            "inputs": {"type": "object", "properties": {
                "content_name": {"type": ["string", "null"]},
                "style_names": {"type": "array", "items": {"type": ["string", "null"]}},
            }},
        },
    },
    "TrainParams": json_schema(TRAIN_PARAM_SPECS, "Fast-style training parameters; every field is optional and "
                                                  "defaults as shown."),
    "StyleModel": {
        "type": "object",
        "required": ["id", "status", "created_at", "params", "previews", "links"],
        "properties": {
            "id": {"type": "string", "description": "The model's id: pass it as params.style_model to POST /v1/jobs."},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "created_at": {"type": "string", "format": "date-time"},
            "started_at": _NULLABLE_TIME,
            "finished_at": _NULLABLE_TIME,
            "params": _ref("TrainParams"),
            "inputs": {"type": "object", "properties": {
                "style_names": {"type": "array", "items": {"type": ["string", "null"]}},
                "train_images": {"type": "integer", "minimum": 0},
                "from_batch": {"type": ["string", "null"]},
                "builtin_training_set": {"type": "boolean"}}},
            "progress": _ref("Progress"),
            "loss_curve": {"type": ["array", "null"], "items": {"type": "array", "items": {"type": "number"}},
                           "description": "[[step, elapsed_s, total_loss], ...]; null in listings."},
            "previews": {"type": "array", "items": {"type": "string"}},
            "preview": {"type": ["string", "null"]},
            "error": _NULLABLE_ERROR,
            "metrics": {"type": ["object", "null"]},
            "cancel_requested": {"type": "boolean"},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "StyleModelList": {
        "type": "object",
        "required": ["styles", "next_cursor"],
        "properties": {"styles": {"type": "array", "items": _ref("StyleModel")},
                       "next_cursor": {"type": ["string", "null"], "format": CURSOR_FORMAT}},
    },
    "JobList": {
        "type": "object",
        "required": ["jobs", "next_cursor"],
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": {"type": ["string", "null"], "format": CURSOR_FORMAT,
                            "description": "Pass as ?cursor= for the next page; null on the last page."},
        },
    },
    "BatchItem": {
        "type": "object",
        "required": ["name", "job_id", "status"],
        "properties": {
            "name": {"type": "string", "description": "Source name: the relative path the client gave (a/x.jpg)."},
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "result_url": {"type": ["string", "null"], "description": "Path of GET /v1/jobs/{job_id}/result."},
            "progress": _ref("Progress"),
            "error": _NULLABLE_ERROR,
        },
    },
    "Batch": {
        "type": "object",
        "required": ["id", "status", "total", "counts", "items"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": list(BATCH_STATUSES)},
            "created_at": {"type": "string", "format": "date-time"},
            "canceled_at": _NULLABLE_TIME,
            "params": _ref("Params"),
            "inputs": {"type": "object", "properties": {
                "style_names": {"type": "array", "items": {"type": ["string", "null"]}}}},
            "mode": {"type": "string", "enum": ["optimize", "fast"],
                     "description": "How the children are styled (auto has been decided into one of these)."},
            "mode_reason": {"type": ["string", "null"], "description": "Why, with the figures auto weighed."},
            "style_model": {"type": ["string", "null"], "description": "The style model the children apply (fast)."},
            "total": {"type": "integer", "description": "Number of items (child jobs)."},
            "counts": {"type": "object", "description": "Children per status.",
                       "properties": {status: {"type": "integer"} for status in STATUS_VALUES}},
            "progress": {"type": "number", "description": "0 to 1; running children count by iterations."},
            "eta_s": {"type": ["number", "null"], "description": "Seconds left at the batch's pace so far."},
            "items": {"type": "array", "items": _ref("BatchItem"), "description": "One page, in the order added."},
            "offset": {"type": "integer"},
            "next_offset": {"type": ["integer", "null"], "description": "Pass as ?offset= for the next page."},
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "BatchItemsAdded": {
        "type": "object",
        "required": ["batch_id", "items"],
        "properties": {
            "batch_id": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "required": ["name", "job_id", "created"],
                                                 "properties": {
                "name": {"type": "string"}, "job_id": {"type": "string"},
                "created": {"type": "boolean", "description": "False: the name was already in the batch; its "
                            "existing job is returned and nothing new was queued."}}}},
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
            "workers": {"type": ["integer", "null"], "minimum": 0,
                        "description": "Live workers (information only: jobs queue when none is up)."},
            "error": {"type": "object"},
        },
    },
    "Capabilities": {
        "type": "object",
        "required": ["workers", "backbones", "accepting"],
        "properties": {
            "workers": {"type": "array", "items": {
                "type": "object", "required": ["hostname", "pid", "queues", "backbones", "precision", "device"],
                "properties": {
                    "hostname": {"type": "string"}, "pid": {"type": "integer"},
                    "queues": {"type": "array", "items": {"type": "string"}},
                    "backbones": {"type": "array", "items": {"type": "string"},
                                  "description": "Backbones whose weight files this worker has."},
                    "precision": {"type": "string", "description": "What precision=auto resolves to there."},
                    "device": {"type": "string", "description": "cpu or gpu:<name>."},
                    "started_at": {"type": "string"}}}},
            "backbones": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                          "description": "Per backbone, how many live workers can run it."},
            "accepting": {"type": "object", "additionalProperties": {"type": "boolean"},
                          "description": "Per backbone, whether POST /v1/jobs accepts it now (false: live workers "
                                         "exist and none has its weights; 422 backbone_unavailable)."},
        },
    },
}

# --- parameters and links ------------------------------------------------------------------------------------------

_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
           "description": "Job id as returned by POST /v1/jobs (unguessable); an unknown one is 404."}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
             "description": "Batch id as returned by POST /v1/batches; an unknown one is 404."}
_MODEL_ID = {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
             "description": "Style model id as returned by POST /v1/styles; an unknown one is 404."}
_STEP = {"name": "step", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
         "description": "A step listed in the model's previews."}
_ITERATION = {"name": "iteration", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 0, "maximum": 10**9},
              "description": "An iteration listed in the job's previews."}
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": r"^[\x21-\x7e]+$"},
    "description": "Same key and body: the first request's resource (200, Idempotent-Replayed: true); same key, "
                   "other body: 422 idempotency_key_reused; same key while the first is still running: 409.",
}


def _int_or_empty(minimum: int, maximum: int, default: int) -> dict[str, Any]:
    """An integer query parameter as api.validation.int_query_arg reads it: an empty value means the default."""
    return {"anyOf": [{"type": "integer", "minimum": minimum, "maximum": maximum}, {"type": "string", "enum": [""]}],
            "default": default}


def _limit(default: int, maximum: int) -> dict[str, Any]:
    return {"name": "limit", "in": "query", "required": False, "schema": _int_or_empty(1, maximum, default),
            "description": f"Page size, 1 to {maximum} (empty: {default}); anything else is 400 bad_limit."}


_JOB_LINKS = {
    "GetJob": {"operationId": "getJob", "parameters": {"job_id": "$response.body#/id"},
               "description": "The job just created."},
    "CancelJob": {"operationId": "cancelJob", "parameters": {"job_id": "$response.body#/id"}},
    "GetJobResult": {"operationId": "getJobResult", "parameters": {"job_id": "$response.body#/id"}},
}
_STYLE_LINKS = {
    "GetStyle": {"operationId": "getStyle", "parameters": {"model_id": "$response.body#/id"},
                 "description": "The style model just created."},
    "CancelStyle": {"operationId": "cancelStyle", "parameters": {"model_id": "$response.body#/id"}},
}
_BATCH_LINKS = {
    "GetBatch": {"operationId": "getBatch", "parameters": {"batch_id": "$response.body#/id"},
                 "description": "The batch just created."},
    "AddBatchItems": {"operationId": "addBatchItems", "parameters": {"batch_id": "$response.body#/id"}},
    "CancelBatch": {"operationId": "cancelBatch", "parameters": {"batch_id": "$response.body#/id"}},
    "GetBatchResults": {"operationId": "getBatchResults", "parameters": {"batch_id": "$response.body#/id"}},
}


def _with_links(response: dict[str, Any], links: dict[str, Any]) -> dict[str, Any]:
    return {**response, "links": links}


# --- paths ---------------------------------------------------------------------------------------------------------

_UNAVAILABLE = "Redis, storage or the broker is down; nothing was kept."
_UNAUTHORIZED = ("Missing, malformed, unknown or revoked API key (missing_api_key, bad_authorization, "
                 "invalid_api_key).")

_REDIRECT = {"description": "Redirect to a short-lived presigned URL (S3 storage).",
             "headers": {"Location": _header("The presigned URL.")}}

# The operations every job-like resource (jobs, style models, videos) repeats, written once.


def _list_operation(operation_id: str, summary: str, list_schema: str) -> dict[str, Any]:
    """GET of a tenant's resources, newest first: the status filter, page size and opaque cursor of api.listing."""
    return {
        "operationId": operation_id,
        "summary": summary,
        "parameters": [
            {"name": "status", "in": "query", "required": False,
             "schema": {"type": "string", "enum": ["", *STATUS_VALUES]}},
            _limit(JOBS_DEFAULT_LIMIT, MAX_LIST_LIMIT),
            {"name": "cursor", "in": "query", "required": False,
             "schema": {"type": "string", "format": CURSOR_FORMAT}},
        ],
        "responses": {"200": _json(_ref(list_schema), "One page."),
                      "400": _error("bad_status, bad_limit or bad_cursor."), "503": _error(_UNAVAILABLE)},
    }


def _get_operation(operation_id: str, summary: str, id_parameter: dict[str, Any], schema: str, found: str,
                   unknown: str) -> dict[str, Any]:
    """GET of one resource by id: 200 with it, 404 when it is unknown (or another tenant's)."""
    return {"operationId": operation_id, "summary": summary, "parameters": [id_parameter],
            "responses": {"200": _json(_ref(schema), found), "404": _error(unknown), "503": _error(_UNAVAILABLE)}}


def _cancel_operation(operation_id: str, summary: str, id_parameter: dict[str, Any], schema: str, canceled: str,
                      running: str, unknown: str) -> dict[str, Any]:
    """POST .../cancel: 200 when canceled at once (or already finished), 202 while running work winds down."""
    return {"operationId": operation_id, "summary": summary, "parameters": [id_parameter],
            "responses": {"200": _json(_ref(schema), canceled), "202": _json(_ref(schema), running),
                          "404": _error(unknown), "503": _error(_UNAVAILABLE)}}


def _file_operation(operation_id: str, summary: str, parameters: list[dict[str, Any]], media_type: str,
                    description: str, errors: dict[str, Any]) -> dict[str, Any]:
    """GET of a stored file: the bytes from local storage, or a redirect to a presigned URL on S3."""
    return {"operationId": operation_id, "summary": summary, "parameters": parameters,
            "responses": {"200": {"description": description,
                                  "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}},
                          "302": _REDIRECT, **errors, "503": _error(_UNAVAILABLE)}}


_JOB_FORM = {
    "type": "object",
    "required": ["content", "style"],
    "additionalProperties": False,
    "properties": {
        "content": {**_IMAGE, "description": "Exactly one content image file part. " + _IMAGE["description"]},
        "style": _STYLES,
        "params": {**_ref("Params"), "description": "A text part holding a JSON object (see Params); at most "
                   "64 KiB, UTF-8."},
        "queue": {"type": "string", "enum": list(QUEUES), "default": INTERACTIVE_QUEUE,
                  "description": "A text part: interactive (default) or bulk."},
        **webhook_form_fields(),
    },
    **WEBHOOK_DEPENDENCY,
}
_IMAGE_ENCODING = {"contentType": IMAGE_MEDIA_TYPES}
_JOB_ENCODING = {"content": _IMAGE_ENCODING, "style": _IMAGE_ENCODING, "params": {"contentType": "application/json"}}

_STYLE_FORM = {
    "type": "object",
    "required": ["style"],
    "additionalProperties": False,
    "properties": {
        "style": _STYLES,
        "train": {"type": "array", "maxItems": 256, "items": _IMAGE,
                  "description": "Photos to learn from (up to 256); none and no from_batch: the built-in set."},
        "from_batch": {"type": "string", "description": "A text part: the id of one of your batches whose contents "
                       "to learn from (not with train parts)."},
        "params": {**_ref("TrainParams"), "description": "A text part holding a JSON object (see TrainParams)."},
        **webhook_form_fields(),
    },
    **WEBHOOK_DEPENDENCY,
}
_STYLE_ENCODING = {"style": _IMAGE_ENCODING, "train": _IMAGE_ENCODING, "params": {"contentType": "application/json"}}

_BATCH_FORM = {
    "type": "object",
    "required": ["style"],
    "additionalProperties": False,
    "properties": {
        "style": _STYLES,
        "params": {**_ref("Params"), "description": "A text part holding a JSON object (see Params), style_blend "
                   "included."},
        "content": {"type": "array", "items": _IMAGE,
                    "description": "Optional first contents; each part's file name is the item's source name (a "
                                   "relative path, unique in the batch)."},
        "mode": {"type": "string", "enum": ["optimize", "fast", "auto"], "default": "optimize",
                 "description": "A text part. optimize: a Gatys job per content. fast: one forward pass per content "
                                "through params.style_model, or through a model the batch first trains on these "
                                "contents (train_params). auto: fast when training plus applying costs less than "
                                "optimizing every image (contents here plus expected_items)."},
        "train_params": {**_ref("TrainParams"), "description": "A text part holding a JSON object (see "
                         "TrainParams): the model a fast batch trains."},
        "expected_items": {"type": "string", "pattern": "^[0-9]{1,8}$",
                           "description": "A text part: how many more contents this batch will get (auto)."},
        **webhook_form_fields(BATCH_EVENTS),
    },
    **WEBHOOK_DEPENDENCY,
}
_BATCH_ENCODING = {"style": _IMAGE_ENCODING, "content": _IMAGE_ENCODING,
                   "params": {"contentType": "application/json"}}

_ITEMS_FORM = {
    "type": "object", "required": ["content"], "additionalProperties": False,
    "properties": {"content": {"type": "array", "minItems": 1, "items": _IMAGE,
                               "description": "Images; each part's file name (a relative path) is its source name."}},
}
_ITEMS_JSON = {
    "type": "object", "required": ["items"], "additionalProperties": False,
    "properties": {"items": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["sha256", "name"], "additionalProperties": False, "properties": {
            "sha256": {"type": "string", "pattern": SHA256_PATTERN,
                       "description": "sha256 of an image stored before (404 input_not_found otherwise)."},
            "name": _SOURCE_NAME}}}},
}

PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        "operationId": "healthz",
        "summary": "The API process is alive.",
        "responses": {"200": _json({"type": "object", "required": ["status"],
                                    "properties": {"status": {"type": "string"}}}, "Alive.")},
    }},
    "/readyz": {"get": {
        "operationId": "readyz",
        "summary": "Redis and storage are reachable.",
        "responses": {"200": _json(_ref("Readiness"), "Ready."),
                      "503": _json(_ref("Readiness"), "Redis or storage down; error.code names which.")},
    }},
    "/metrics": {"get": {
        "operationId": "metrics",
        "summary": "Prometheus metrics: the cluster's jobs, queues and workers (read from Redis), and this API's "
                   "requests. Metric names start with atelier_; aggregate replicas with max().",
        "responses": {"200": {"description": "Prometheus text exposition format 0.0.4.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
    "/v1/capabilities": {"get": {
        "operationId": "getCapabilities",
        "summary": "What the live workers can run: backbones with weights, precision, device, queues.",
        "responses": {"200": _json(_ref("Capabilities"), "The live workers and what they offer."),
                      "503": _error(_UNAVAILABLE)},
    }},
    "/v1/openapi.json": {"get": {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": {"200": _json({"type": "object", "required": ["openapi", "paths"]}, "OpenAPI description.")},
    }},
    "/v1/jobs": {
        "post": {
            "operationId": "createJob",
            "summary": "Submit a stylization job.",
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": _JOB_FORM, "encoding": _JOB_ENCODING}}},
            "responses": {
                "202": _with_links(_json(_ref("Job"), "Accepted and queued.", {"Location": _LOCATION}), _JOB_LINKS),
                "200": _with_links(_json(_ref("Job"), "Idempotent replay: the job of the first request with this "
                                         "Idempotency-Key.", {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED}),
                                   _JOB_LINKS),
                "400": _error("Malformed request: not multipart, a missing, repeated, unknown or wrongly-typed part "
                              "(an image sent as text, params sent as a file), params not a JSON object (or too "
                              "large, too deep, not UTF-8), bad queue, bad Idempotency-Key."),
                "409": _error("A request with this Idempotency-Key is still being processed.",
                              {"Retry-After": _RETRY_AFTER}),
                "413": _error("Upload over ATELIER_MAX_UPLOAD_BYTES, or an image with too many pixels."),
                "415": _error("A part is not an image, truncated, or an unsupported format."),
                "422": _error("A parameter is unknown or out of bounds (the message gives what is allowed), "
                              "style_blend does not match the style parts, or the Idempotency-Key was used with "
                              "another body."),
                "429": _error("Tenant rate limit or queued-jobs cap.", {"Retry-After": _RETRY_AFTER}),
                "503": _error(_UNAVAILABLE),
            },
        },
        "get": {
            "operationId": "listJobs",
            "summary": "List this tenant's jobs, newest first.",
            "parameters": [
                {"name": "status", "in": "query", "required": False,
                 "schema": {"type": "string", "enum": ["", *STATUS_VALUES]},
                 "description": "Only jobs in this status (empty: every status); anything else is 400 bad_status."},
                _limit(JOBS_DEFAULT_LIMIT, MAX_LIST_LIMIT),
                {"name": "cursor", "in": "query", "required": False,
                 "schema": {"type": "string", "format": CURSOR_FORMAT},
                 "description": "Opaque: the next_cursor of a previous page, unchanged. Any other string is 400 "
                                "bad_cursor. A cursor stays valid while jobs are added or change status."},
            ],
            "responses": {
                "200": _with_links(_json(_ref("JobList"), "One page."), {"NextPage": {
                    "operationId": "listJobs", "description": "The next page (while next_cursor is not null).",
                    "parameters": {"cursor": "$response.body#/next_cursor"}}}),
                "400": _error("bad_status, bad_limit or bad_cursor (a cursor that no page gave)."),
                "503": _error(_UNAVAILABLE),
            },
        },
    },
    "/v1/jobs/{job_id}": {"get": _get_operation(
        "getJob", "A job's status, progress, result and metrics.", _JOB_ID, "Job", "The job.",
        "Unknown job (or another tenant's).")},
    "/v1/jobs/{job_id}/cancel": {"post": _cancel_operation(
        "cancelJob", "Cancel: a queued job never runs; a running job stops within one progress interval.", _JOB_ID,
        "Job", "Canceled (was queued) or already finished (unchanged).",
        "Running: cancel_requested is set; status becomes canceled shortly.", "Unknown job.")},
    "/v1/jobs/{job_id}/result": {"get": _file_operation(
        "getJobResult", "The result PNG.", [_JOB_ID], "image/png", "The PNG (local storage).",
        {"404": _error("Unknown job, or its result is gone from storage."),
         "409": _error("Not succeeded (yet): not_ready while queued or running, no_result after.")})},
    "/v1/jobs/{job_id}/previews/{iteration}": {"get": _file_operation(
        "getJobPreview", "An intermediate result stored while the job ran.", [_JOB_ID, _ITERATION], "image/png",
        "The PNG (local storage).", {"404": _error("Unknown job, or no preview at that iteration.")})},
    "/v1/styles": {
        "post": {
            "operationId": "createStyle",
            "summary": "Train a fast-style model (Johnson et al. 2016) on the service's bulk queue.",
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": _STYLE_FORM, "encoding": _STYLE_ENCODING}}},
            "responses": {
                "202": _with_links(_json(_ref("StyleModel"), "Accepted; training is queued.",
                                         {"Location": _LOCATION}), _STYLE_LINKS),
                "200": _with_links(_json(_ref("StyleModel"), "Idempotent replay.",
                                         {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED}), _STYLE_LINKS),
                "400": _error("Malformed request (see POST /v1/jobs), too many train parts, train with from_batch, "
                              "or an empty batch."),
                "404": _error("from_batch names no batch of yours."),
                "409": _error("A request with this Idempotency-Key is still being processed.",
                              {"Retry-After": _RETRY_AFTER}),
                "413": _error("Upload too large."),
                "415": _error("A part is not an image."),
                "422": _error("A training parameter is unknown or out of bounds, a layer is unknown or too deep "
                              "for size, or no live worker has the loss network's weights."),
                "429": _error("Tenant rate limit or queued-jobs cap.", {"Retry-After": _RETRY_AFTER}),
                "503": _error(_UNAVAILABLE),
            },
        },
        "get": _list_operation("listStyles", "List this tenant's style models, newest first.", "StyleModelList"),
    },
    "/v1/styles/{model_id}": {"get": _get_operation(
        "getStyle", "A style model's training status, progress, loss curve, previews and metrics.", _MODEL_ID,
        "StyleModel", "The style model.", "Unknown style model.")},
    "/v1/styles/{model_id}/cancel": {"post": _cancel_operation(
        "cancelStyle", "Cancel a training: queued never runs; running stops at its next progress report.", _MODEL_ID,
        "StyleModel", "Canceled or already finished.", "Running: stops shortly.", "Unknown style model.")},
    "/v1/styles/{model_id}/previews/{step}": {"get": _file_operation(
        "getStylePreview", "The probe image through the network at a training step.", [_MODEL_ID, _STEP],
        "image/png", "The PNG (local storage).", {"404": _error("Unknown style model, or no preview at that step.")})},
    "/v1/batches": {"post": {
        "operationId": "createBatch",
        "summary": "Create a batch: one style set and params for many contents (each becomes a job on 'bulk').",
        "parameters": [_IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": _BATCH_FORM, "encoding": _BATCH_ENCODING}}},
        "responses": {
            "201": _with_links(_json(_ref("Batch"), "Created (its contents, if any, queued).",
                                     {"Location": _LOCATION}), _BATCH_LINKS),
            "200": _with_links(_json(_ref("Batch"), "Idempotent replay: the batch of the first request with this "
                                     "Idempotency-Key.", {"Location": _LOCATION, "Idempotent-Replayed": _REPLAYED}),
                               _BATCH_LINKS),
            "400": _error("Malformed request (not multipart, missing style, unknown or wrongly-typed part, bad "
                          "params JSON, bad or duplicate file name, bad Idempotency-Key)."),
            "409": _error("A request with this Idempotency-Key is still being processed.",
                          {"Retry-After": _RETRY_AFTER}),
            "413": _error("Upload over ATELIER_MAX_UPLOAD_BYTES, or an image with too many pixels."),
            "415": _error("A part is not an image, truncated, or an unsupported format."),
            "422": _error("A parameter is unknown or out of bounds, or the Idempotency-Key was used with another "
                          "body."),
            "429": _error("Tenant rate limit or queued-jobs cap.", {"Retry-After": _RETRY_AFTER}),
            "503": _error(_UNAVAILABLE),
        },
    }},
    "/v1/batches/{batch_id}": {"get": {
        "operationId": "getBatch",
        "summary": "Counts per status, progress, ETA and a page of items.",
        "parameters": [_BATCH_ID,
                       {"name": "offset", "in": "query", "required": False,
                        "schema": _int_or_empty(0, MAX_OFFSET, 0),
                        "description": f"First item of the page, 0 to {MAX_OFFSET} (empty: 0); anything else is "
                                       "400 bad_offset."},
                       _limit(ITEMS_DEFAULT_LIMIT, MAX_ITEMS_PAGE)],
        "responses": {"200": _json(_ref("Batch"), "The batch."), "400": _error("bad_offset or bad_limit."),
                      "404": _error("Unknown batch."), "503": _error(_UNAVAILABLE)},
    }},
    "/v1/batches/{batch_id}/items": {"post": {
        "operationId": "addBatchItems",
        "summary": "Add contents; each new source name becomes a child job. Idempotent per name.",
        "parameters": [_BATCH_ID],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": _ITEMS_FORM, "encoding": {"content": _IMAGE_ENCODING}},
            "application/json": {"schema": _ITEMS_JSON},
        }},
        "responses": {
            "202": _json(_ref("BatchItemsAdded"), "At least one new child queued."),
            "200": _json(_ref("BatchItemsAdded"), "Every name was already in the batch; nothing new."),
            "400": _error("Malformed request, bad or duplicate name, bad sha256."),
            "404": _error("Unknown batch, or a sha256 that names no stored input."),
            "409": _error("The batch was canceled."),
            "413": _error("Upload too large."),
            "415": _error("A part is not an image."),
            "429": _error("Tenant rate limit or queued-jobs cap.", {"Retry-After": _RETRY_AFTER}),
            "503": _error(_UNAVAILABLE),
        },
    }},
    "/v1/batches/{batch_id}/cancel": {"post": _cancel_operation(
        "cancelBatch", "Cancel: queued children never run, running ones stop, finished results are kept.",
        _BATCH_ID, "Batch", "Canceled; no child runs any more.",
        "Canceling: running children stop at their next report.", "Unknown batch.")},
    "/v1/batches/{batch_id}/results.zip": {"get": {
        "operationId": "getBatchResults",
        "summary": "Streamed zip of the succeeded children's results, named after their sources (a/x.jpg -> "
                   "a/x.png); partial while the batch runs.",
        "parameters": [_BATCH_ID],
        "responses": {"200": {"description": "The zip.",
                              "headers": {"X-Atelier-Results": _header("Number of results in the zip.",
                                                                       {"type": "string", "pattern": "^[0-9]+$"})},
                              "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                      "404": _error("Unknown batch."), "503": _error(_UNAVAILABLE)},
    }},
}

PATHS.update(EVENT_PATHS)  # the live-event routes (api/openapi_events.py)

# The video routes (api/openapi_videos.py; built with the helpers above, hence imported here).
from api.openapi_videos import VIDEO_PATHS, VIDEO_SCHEMAS  # noqa: E402

PATHS.update(VIDEO_PATHS)
SCHEMAS.update(VIDEO_SCHEMAS)

PATHS.update(WEBHOOK_PATHS)  # the webhook secret and delivery logs (api/openapi_webhooks.py)
SCHEMAS.update(WEBHOOK_SCHEMAS)

# api/auth.py: a tenant's API key on every job and batch route; health, readiness, metrics and this document are
# public (probes and scrapers carry no keys).
SECURED_PREFIXES = ("/v1/jobs", "/v1/batches", "/v1/capabilities", "/v1/styles", "/v1/videos", "/v1/webhooks")
SECURITY_SCHEMES = {"bearer": {
    "type": "http", "scheme": "bearer", "bearerFormat": "atl_<key id>_<secret>",
    "description": "A tenant's API key from `atelier keys create --tenant NAME`, sent as 'Authorization: Bearer "
                   "<key>'. Missing, malformed, unknown or revoked keys get 401 with WWW-Authenticate: Bearer. "
                   "Another tenant's job or batch is 404, exactly like a missing one."}}


def openapi_spec() -> dict[str, Any]:
    paths = copy.deepcopy(PATHS)
    for path, operations in paths.items():
        if path.startswith(SECURED_PREFIXES):
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
                operation["responses"]["401"] = _error(_UNAUTHORIZED, {"WWW-Authenticate": _header(
                    "Bearer challenge.", {"type": "string", "pattern": "^Bearer"})})
        for operation in operations.values():
            operation.setdefault("security", [])  # public: no key needed
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Atelier", "version": API_VERSION,
                 "description": "Neural style transfer jobs: submit, poll progress, fetch results, cancel. Errors "
                                "are JSON {\"error\": {\"code\", \"message\", \"field\"}}. A method a path does not "
                                "list is 405 with an Allow header; 500 internal_error is a bug, never an answer to "
                                "a request."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": SECURITY_SCHEMES},
    }
