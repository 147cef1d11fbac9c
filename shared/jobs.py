"""Job vocabulary shared by the API and the worker: statuses, kinds, ids, the typed job record and storage keys.

The job record is ours, not Celery's (BRIEF §2): a JSON document the API writes before answering 202 and the
worker updates. In code it is a ``JobRecord`` (to and from its JSON form); every kind of work (``kind``: a
stylization today; training a style model or a video later) is one of these, so all kinds share the registry, the
queue, the leases, the reconciler, cancel, progress and metrics. Storage keys are deterministic so a redelivered
task overwrites rather than duplicates its outputs.
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
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


def model_key(model_id: str) -> str:
    """A trained style model: our own signed format (``worker/engine/feedforward.py``), written once at the end."""
    return f"models/{model_id}/model.atls"


def checkpoint_key(model_id: str) -> str:
    """The training's last checkpoint; a redelivered training resumes from it (overwritten every N steps)."""
    return f"models/{model_id}/checkpoint.atls"


def curve_key(model_id: str) -> str:
    """The loss curve, ``[[step, elapsed_s, total], ...]``, rewritten with each progress report."""
    return f"models/{model_id}/curve.json"


def video_key(video_id: str, name: str) -> str:
    """A video's outputs and intermediates (``shared/video_jobs.py`` names them): ``results/<id>/<name>``."""
    return f"results/{video_id}/{name}"


class JobKind(str, Enum):  # noqa: UP042 - same idiom as JobStatus
    """What a job does; each kind has its own Celery task (``shared.tasks.TASK_FOR_KIND``)."""

    STYLIZE = "stylize"
    TRAIN_STYLE = "train_style"  # trains a fast-style model (POST /v1/styles); the model's id is the job's
    VIDEO = "video"  # a clip (POST /v1/videos): plans its segments, then assembles the MP4 (worker/video/service.py)
    VIDEO_SEGMENT = "video_segment"  # a run of a video's frames, styled by one worker (a child of a video job)

    def __str__(self) -> str:
        return self.value


KIND_VALUES: tuple[str, ...] = tuple(kind.value for kind in JobKind)
DEFAULT_TENANT = "default"  # records written before tenants existed belong to it


@dataclass
class JobRecord:
    """One job as the registry stores it. ``inputs`` and ``params`` are kind-specific JSON objects (for ``stylize``:
    ``inputs = {content, styles, content_name, style_names}`` holding storage keys and the client's file names,
    ``params`` = ``shared.params.StyleParams.to_dict()``); everything else is common to every kind.

    Mutable on purpose: registry transitions (``services.registry``) change a record read under WATCH and write it
    back. ``to_dict``/``from_dict`` are the JSON form; unknown keys in stored JSON are kept in ``extra`` so a record
    written by a newer version survives a round trip through an older one.
    """

    id: str
    kind: str = JobKind.STYLIZE.value
    status: str = JobStatus.QUEUED.value
    created_at: str = field(default_factory=utc_now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    previews: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    worker: dict[str, Any] | None = None
    deliveries: int = 0
    cancel_requested: bool = False
    queue: str = "interactive"
    batch_id: str | None = None
    tenant: str = DEFAULT_TENANT  # the API key's tenant (api/auth.py); only that tenant sees the job
    requeued_at: str | None = None  # set by the reconciler when it puts a lost job back in the queue
    # {"url", "events"}: where to POST when the job reaches one of ``events`` (services/webhooks, docs/webhooks.md)
    webhook: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.status)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what Redis holds)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {**self.extra, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRecord:
        """Parse the JSON form; a record without ``kind`` (written before kinds existed) is a ``stylize`` job."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        # A null where the schema has a non-null default (old records: "previews": null) takes the default.
        values = {name: data[name] for name, spec in fields.items()
                  if name in data and (data[name] is not None or spec.default is None)}
        record = cls(**values)
        record.extra = {name: value for name, value in data.items() if name not in fields}
        JobStatus(record.status)  # a corrupt status fails here, not somewhere downstream
        return record


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
    tenant: str = DEFAULT_TENANT,
    style_model_key: str | None = None,
) -> JobRecord:
    """A fresh ``queued`` stylize job; with ``style_model_key`` (a trained model's storage key) it applies that
    model instead of optimizing against style images."""
    return JobRecord(
        id=job_id,
        kind=JobKind.STYLIZE.value,
        params=params,
        inputs={
            "content": content_key,
            "styles": list(style_keys),
            "content_name": content_name,
            "style_names": list(style_names),
            "style_model": style_model_key,
        },
        queue=queue,
        batch_id=batch_id,
        tenant=tenant or DEFAULT_TENANT,
    )


def new_style_model_record(
    model_id: str,
    *,
    params: dict[str, Any],
    style_keys: list[str],
    style_names: list[str | None],
    train_keys: list[str],
    train_names: list[str | None],
    from_batch: str | None,
    tenant: str = DEFAULT_TENANT,
) -> JobRecord:
    """A fresh ``queued`` training of a fast-style model, on the bulk queue (training is long, never interactive).
    With no training images and no batch, the worker trains on the built-in set (``data/training``)."""
    return JobRecord(
        id=model_id,
        kind=JobKind.TRAIN_STYLE.value,
        params=params,
        inputs={
            "styles": list(style_keys),
            "style_names": list(style_names),
            "train": list(train_keys),
            "train_names": list(train_names),
            "from_batch": from_batch,
            "builtin_training_set": not train_keys,
        },
        queue="bulk",
        tenant=tenant or DEFAULT_TENANT,
    )
