"""The OpenAPI 3.1 description of the HTTP API, served at ``/v1/openapi.json``.

Written by hand, next to the code it describes; ``tests/api/test_openapi.py`` fails when a route of the app is missing
here (or described here but not served), so the two cannot drift apart silently.
"""

from __future__ import annotations

import copy
from typing import Any

from shared.jobs import STATUS_VALUES
from shared.params import json_schema
from shared.tasks import QUEUES

OPENAPI_VERSION = "3.1.0"
API_VERSION = "1.0.0"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"},
           "description": "Job id as returned by POST /v1/jobs (unguessable)."}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "Batch id as returned by POST /v1/batches."}
_PNG = {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
_REDIRECT = {"description": "Redirect to a short-lived presigned URL (S3 storage).",
             "headers": {"Location": {"schema": {"type": "string"}}}}

_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

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
    "Params": json_schema(),
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
            "error": {"type": ["object", "null"],
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
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
    "JobList": {
        "type": "object",
        "properties": {
            "jobs": {"type": "array", "items": _ref("Job")},
            "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page."},
        },
    },
    "BatchItem": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "Source name: the relative path the client gave (a/x.jpg)."},
            "job_id": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "result_url": {"type": ["string", "null"], "description": "Path of GET /v1/jobs/{job_id}/result."},
            "progress": _ref("Progress"),
            "error": {"type": ["object", "null"]},
        },
    },
    "Batch": {
        "type": "object",
        "required": ["id", "status", "total", "counts", "items"],
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["empty", "running", "finished", "canceling", "canceled"]},
            "created_at": {"type": "string", "format": "date-time"},
            "canceled_at": _NULLABLE_TIME,
            "params": _ref("Params"),
            "inputs": {"type": "object", "properties": {
                "style_names": {"type": "array", "items": {"type": ["string", "null"]}}}},
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
        "properties": {
            "batch_id": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "job_id": {"type": "string"},
                "created": {"type": "boolean", "description": "False: the name was already in the batch; its "
                            "existing job is returned and nothing new was queued."}}}},
        },
    },
    "Readiness": {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "checks": {"type": "object", "properties": {"redis": {"type": "string"}, "storage": {"type": "string"}}},
            "error": {"type": "object"},
        },
    },
}

PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        "summary": "The API process is alive.",
        "responses": {"200": _json({"type": "object"}, "Alive.")},
    }},
    "/readyz": {"get": {
        "summary": "Redis and storage are reachable.",
        "responses": {"200": _json(_ref("Readiness"), "Ready."),
                      "503": _json(_ref("Readiness"), "Redis or storage down; error.code names which.")},
    }},
    "/metrics": {"get": {
        "summary": "Prometheus metrics: the cluster's jobs, queues and workers (read from Redis), and this API's "
                   "requests. Metric names start with atelier_; aggregate replicas with max().",
        "responses": {"200": {"description": "Prometheus text exposition format 0.0.4.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }},
    "/v1/openapi.json": {"get": {
        "summary": "This document.",
        "responses": {"200": _json({"type": "object"}, "OpenAPI description.")},
    }},
    "/v1/jobs": {
        "post": {
            "summary": "Submit a stylization job.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object",
                "required": ["content", "style"],
                "properties": {
                    "content": {"type": "string", "format": "binary", "description": "One image (JPEG, PNG, WEBP, "
                                "GIF first frame, BMP)."},
                    "style": {"type": "array", "items": {"type": "string", "format": "binary"},
                              "description": "One or more style images (repeat the part)."},
                    "params": {"type": "string", "description": "A JSON object; see components.schemas.Params."},
                    "queue": {"type": "string", "enum": list(QUEUES), "default": "interactive"},
                },
            }}}},
            "responses": {
                "202": {**_json(_ref("Job"), "Accepted and queued."),
                        "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/jobs/{id}"}}},
                "400": _error("Malformed request (missing part, params not a JSON object, unknown field)."),
                "413": _error("Upload over ATELIER_MAX_UPLOAD_BYTES, or an image with too many pixels."),
                "415": _error("Not an image, truncated, or an unsupported format."),
                "422": _error("A parameter is unknown or out of bounds; the message gives what is allowed."),
                "503": _error("Redis, storage or the broker is down; nothing was kept."),
            },
        },
        "get": {
            "summary": "List jobs, newest first.",
            "parameters": [
                {"name": "status", "in": "query", "schema": {"type": "string", "enum": list(STATUS_VALUES)}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                                            "default": 20}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {"200": _json(_ref("JobList"), "One page."), "400": _error("Bad status, limit or cursor.")},
        },
    },
    "/v1/jobs/{job_id}": {"get": {
        "summary": "A job's status, progress, result and metrics.",
        "parameters": [_JOB_ID],
        "responses": {"200": _json(_ref("Job"), "The job."), "404": _error("Unknown job.")},
    }},
    "/v1/jobs/{job_id}/cancel": {"post": {
        "summary": "Cancel: a queued job never runs; a running job stops within one progress interval.",
        "parameters": [_JOB_ID],
        "responses": {
            "200": _json(_ref("Job"), "Canceled (was queued) or already finished (unchanged)."),
            "202": _json(_ref("Job"), "Running: cancel_requested is set; status becomes canceled shortly."),
            "404": _error("Unknown job."),
        },
    }},
    "/v1/jobs/{job_id}/result": {"get": {
        "summary": "The result PNG.",
        "parameters": [_JOB_ID],
        "responses": {"200": {"description": "The PNG (local storage).", **_PNG}, "302": _REDIRECT,
                      "404": _error("Unknown job."), "409": _error("Not succeeded (yet).")},
    }},
    "/v1/jobs/{job_id}/previews/{iteration}": {"get": {
        "summary": "An intermediate result stored while the job ran.",
        "parameters": [_JOB_ID, {"name": "iteration", "in": "path", "required": True,
                                 "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": {"description": "The PNG (local storage).", **_PNG}, "302": _REDIRECT,
                      "404": _error("Unknown job, or no preview at that iteration.")},
    }},
    "/v1/batches": {"post": {
        "summary": "Create a batch: one style set and params for many contents (each becomes a job on 'bulk').",
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["style"],
            "properties": {
                "style": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "One or more style images (repeat the part)."},
                "params": {"type": "string", "description": "A JSON object (see Params), style_blend included."},
                "content": {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": "Optional first contents; each file name (a relative path) is the "
                                           "item's source name, unique in the batch."},
            },
        }}}},
        "responses": {
            "201": {**_json(_ref("Batch"), "Created (its contents, if any, queued)."),
                    "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/batches/{id}"}}},
            "400": _error("Malformed request (missing style, bad params JSON, unknown field, bad file name)."),
            "413": _error("Upload over ATELIER_MAX_UPLOAD_BYTES, or an image with too many pixels."),
            "415": _error("Not an image, truncated, or an unsupported format."),
            "422": _error("A parameter is unknown or out of bounds."),
        },
    }},
    "/v1/batches/{batch_id}": {"get": {
        "summary": "Counts per status, progress, ETA and a page of items.",
        "parameters": [_BATCH_ID,
                       {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500,
                                                                   "default": 100}}],
        "responses": {"200": _json(_ref("Batch"), "The batch."), "400": _error("Bad offset or limit."),
                      "404": _error("Unknown batch.")},
    }},
    "/v1/batches/{batch_id}/items": {"post": {
        "summary": "Add contents; each new source name becomes a child job. Idempotent per name.",
        "parameters": [_BATCH_ID],
        "requestBody": {"required": True, "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["content"], "properties": {
                "content": {"type": "array", "items": {"type": "string", "format": "binary"},
                            "description": "Images; each file name (relative path) is the source name."}}}},
            "application/json": {"schema": {"type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "items": {"type": "object", "required": ["sha256", "name"], "properties": {
                    "sha256": {"type": "string", "description": "sha256 of an image stored before."},
                    "name": {"type": "string"}}}}}}},
        }},
        "responses": {
            "202": _json(_ref("BatchItemsAdded"), "At least one new child queued."),
            "200": _json(_ref("BatchItemsAdded"), "Every name was already in the batch; nothing new."),
            "400": _error("Malformed request, bad or duplicate name, bad sha256."),
            "404": _error("Unknown batch, or a sha256 that names no stored input."),
            "409": _error("The batch was canceled."),
            "413": _error("Upload too large."),
            "415": _error("Not an image."),
        },
    }},
    "/v1/batches/{batch_id}/cancel": {"post": {
        "summary": "Cancel: queued children never run, running ones stop, finished results are kept.",
        "parameters": [_BATCH_ID],
        "responses": {"200": _json(_ref("Batch"), "Canceled; no child runs any more."),
                      "202": _json(_ref("Batch"), "Canceling: running children stop at their next report."),
                      "404": _error("Unknown batch.")},
    }},
    "/v1/batches/{batch_id}/results.zip": {"get": {
        "summary": "Streamed zip of the succeeded children's results, named after their sources (a/x.jpg -> "
                   "a/x.png); partial while the batch runs.",
        "parameters": [_BATCH_ID],
        "responses": {"200": {"description": "The zip.", "content": {"application/zip": {"schema": {
            "type": "string", "format": "binary"}}}}, "404": _error("Unknown batch.")},
    }},
}


def openapi_spec() -> dict[str, Any]:
    paths = copy.deepcopy(PATHS)
    for path, operations in paths.items():
        if path.startswith(("/v1/jobs", "/v1/batches")):  # every job and batch route reads Redis
            for operation in operations.values():
                operation["responses"].setdefault("503", _error("Redis or storage down."))
                # api/auth.py: a tenant's API key on every job and batch route (README "Security").
                operation["security"] = [{"bearer": []}]
                operation["responses"].setdefault("401", _error("Missing, unknown or revoked API key."))
    for path in ("/v1/jobs", "/v1/batches"):  # api/ratelimit.py and api/idempotency.py
        create = paths[path]["post"]
        create.setdefault("parameters", []).append({
            "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string",
                                                                                    "maxLength": 255},
            "description": "Same key and body: the first request's resource (200, Idempotent-Replayed: true); same "
                           "key, other body: 422 idempotency_key_reused."})
        create["responses"].setdefault("429", _error("Tenant rate limit or queued-jobs cap; see Retry-After."))
        create["responses"].setdefault("200", _json({"type": "object"}, "Idempotent replay of an earlier request."))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "Atelier", "version": API_VERSION,
                 "description": "Neural style transfer jobs: submit, poll progress, fetch results, cancel. Errors "
                                "are JSON {\"error\": {\"code\", \"message\", \"field\"}}."},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "An API key from `atelier keys create --tenant NAME`."}}},
    }
