"""The job as clients see it: the record minus internals, storage keys turned into API URLs.

URLs are paths relative to the API root (like the ``Location`` header), so they stay right behind any proxy:
``result.url`` is ``/v1/jobs/<id>/result`` and each entry of ``previews`` is ``/v1/jobs/<id>/previews/<iteration>``.
Those routes stream the PNG from local storage or redirect to a short-lived presigned S3 URL.
"""

from __future__ import annotations

import re
from typing import Any

from shared.jobs import JobRecord

PREVIEW_KEY_PATTERN = re.compile(r"/previews/(\d+)\.png$")

PUBLIC_FIELDS = ("id", "kind", "status", "created_at", "started_at", "finished_at", "params", "progress", "error",
                 "metrics", "worker", "queue", "cancel_requested", "batch_id")


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def result_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}/result"


def preview_url(job_id: str, iteration: int) -> str:
    return f"/v1/jobs/{job_id}/previews/{iteration}"


def preview_iteration(key: str) -> int | None:
    """The iteration number in a preview key (``results/<id>/previews/000050.png`` -> 50)."""
    match = PREVIEW_KEY_PATTERN.search(key)
    return int(match.group(1)) if match else None


def present_job(record: JobRecord) -> dict[str, Any]:
    job: dict[str, Any] = {name: getattr(record, name) for name in PUBLIC_FIELDS}
    job["cancel_requested"] = bool(record.cancel_requested)
    inputs = record.inputs
    job["inputs"] = {"content_name": inputs.get("content_name"), "style_names": inputs.get("style_names", [])}
    result = record.result
    job["result"] = None if not result else {
        "url": result_url(record.id),
        "width": result.get("width"),
        "height": result.get("height"),
    }
    iterations = (preview_iteration(key) for key in record.previews)
    job["previews"] = [preview_url(record.id, n) for n in sorted(i for i in iterations if i is not None)]
    return job
