"""Job vocabulary shared by the API and the worker: statuses, ids, record shape and storage keys.

The job record is ours, not Celery's (BRIEF §2): a JSON document the API writes before answering 202 and the
worker updates. Storage keys are deterministic so a redelivered task overwrites rather than duplicates its outputs.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import Enum
from typing import Any


class JobStatus(str, Enum):  # noqa: UP042 - the (str, Enum) idiom of the contract and of rq
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    def __str__(self) -> str:
        return self.value


TERMINAL_STATUSES: frozenset[JobStatus] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
STATUS_VALUES: tuple[str, ...] = tuple(status.value for status in JobStatus)

# Pillow format name -> file extension of stored inputs.
_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}


def is_terminal(status: str | JobStatus) -> bool:
    return JobStatus(status) in TERMINAL_STATUSES


def new_job_id() -> str:
    """128 random bits, URL-safe: unguessable, so knowing one id tells nothing about another."""
    return secrets.token_hex(16)


def utc_now_iso() -> str:
    """Current time as ISO 8601 UTC with a ``Z`` suffix and millisecond precision."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def input_key(sha256_hex: str, image_format: str) -> str:
    """``inputs/<sha256>.<ext>``: content-addressed, so the same upload is stored once."""
    ext = _EXTENSIONS.get(image_format.upper(), image_format.lower())
    return f"inputs/{sha256_hex}.{ext}"


def result_key(job_id: str) -> str:
    return f"results/{job_id}/result.png"


def preview_key(job_id: str, iteration: int) -> str:
    return f"results/{job_id}/previews/{iteration:06d}.png"


def metrics_key(job_id: str) -> str:
    return f"results/{job_id}/metrics.json"


def new_job_record(
    job_id: str,
    *,
    params: dict[str, Any],
    content_key: str,
    style_keys: list[str],
    content_name: str | None,
    style_names: list[str | None],
    queue: str,
    batch_id: str | None = None,
    tenant: str = "default",
) -> dict[str, Any]:
    """A fresh ``queued`` record with every field of the schema (see the service contract)."""
    return {
        "id": job_id,
        "status": JobStatus.QUEUED.value,
        "created_at": utc_now_iso(),
        "started_at": None,
        "finished_at": None,
        "params": params,
        "inputs": {
            "content": content_key,
            "styles": list(style_keys),
            "content_name": content_name,
            "style_names": list(style_names),
        },
        "progress": None,
        "result": None,
        "previews": [],
        "error": None,
        "metrics": None,
        "worker": None,
        "deliveries": 0,
        "cancel_requested": False,
        "queue": queue,
        "batch_id": batch_id,
        "tenant": tenant,  # the API key's tenant (api/auth.py); only that tenant sees the job
    }
