"""Service settings: one typed, frozen object read from ``ATELIER_*`` environment variables.

Every process (API, worker, ``atelier dev``) builds its settings with ``Settings.from_env()``; tests build them from
a plain dict. A bad value raises ``SettingsError`` naming the variable, the value and what is allowed, so a
misconfigured deployment fails at start-up rather than on the first job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shared.errors import AtelierError
from shared.params import BACKBONES

PREFIX = "ATELIER_"
MIB = 1024 * 1024
LOG_FORMATS = ("json", "text")
AUTH_MODES = ("on", "off")


class SettingsError(AtelierError):
    """An ``ATELIER_*`` variable has a value we cannot use."""

    http_status = 500
    default_code = "invalid_setting"


def default_storage_url() -> str:
    """``file://`` + ``./var/storage`` made absolute (relative to the current directory at start-up)."""
    return "file://" + str(Path("var/storage").resolve())


@dataclass(frozen=True)
class Settings:
    """Configuration of the service. Field names carry units; env names are ``ATELIER_`` + upper-case name."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    storage: str = ""  # "file:///abs/path" or "s3://bucket"; "" means default_storage_url()
    s3_endpoint_url: str | None = None  # None: AWS itself; credentials come from the standard AWS_* variables
    max_upload_bytes: int = 20 * MIB
    max_image_pixels: int = 40_000_000  # checked from the image header, before decoding
    job_time_limit_s: int = 3600
    # Training a style model takes longer than any image (1000 steps at 256 px batch 4 are about 2 h on a 2-core CPU,
    # 1-2 min on a GPU); it checkpoints, so a stop past this limit loses at most checkpoint_every steps.
    train_time_limit_s: int = 6 * 3600
    visibility_timeout_s: int = 0  # 0: 2 x the longest of the two limits + 600 (must exceed the longest job: BRIEF §4)
    max_deliveries: int = 3
    # A running job's lease (worker/lease.py) expires this long after its worker stops renewing it (killed, lost):
    # how long a redelivered job waits before taking over from a dead worker.
    lease_ttl_s: float = 20.0
    presign_ttl_s: int = 300
    progress_min_interval_s: float = 0.5  # the worker writes progress at most this often
    preview_every: int = 50  # store a preview image every N iterations (0: never)
    # Live events (api/sse.py, docs/events.md): open event streams per API process (each holds one gunicorn thread;
    # services.commands.api_argv adds this many threads to the request threads), the comment line that keeps an idle
    # stream alive, and the longest a stream stays open before the client reconnects with Last-Event-ID.
    sse_max_streams: int = 8
    sse_heartbeat_s: float = 15.0
    sse_max_stream_s: float = 300.0
    weights_dir: str | None = None  # official Keras weight files (Xception, EfficientNetB7); worker/weights_config.py
    cache_dir: str | None = None  # converted VGG19 weights are kept here; None means ~/.cache/atelier
    # The most memory one engine loss-and-gradient pass may hold (bytes); larger images run in exact tiles
    # (worker/engine/tiling.py). 0: a tenth of the machine's memory (engine_memory_budget_bytes).
    engine_memory_bytes: int = 0
    log_format: str = "json"  # "json" (one object per line, with job_id) or "text" (for a terminal)
    # Backbone a worker process builds before it takes its first job (readiness): a name, "default" (the default
    # params' backbone) or "none" (build lazily on the first job).
    preload_backbone: str = "default"
    # Security and reliability (README "Security", "Reliability"). Authentication is "on" everywhere except the
    # embedded `atelier dev` default, which sets ATELIER_AUTH=off itself.
    auth: str = "on"
    rate_limit_per_min: int = 60  # job/batch submissions per tenant per minute (0: no limit)
    max_queued_jobs: int = 500  # per tenant, jobs waiting to run on either queue (0: no cap)
    idempotency_ttl_s: int = 86400  # how long an Idempotency-Key is remembered
    reconcile_interval_s: float = 10.0  # how often the reconciler looks for lost jobs
    # Result uploads are retried this many times with exponential backoff (0.5 s doubling to 8 s: about 40 s in
    # all for 8) before the job fails with storage_unavailable (worker/retry.py).
    storage_retry_attempts: int = 8
    reconcile_grace_s: float = 30.0  # a queued job younger than this is never re-enqueued (message may be in flight)
    # HMAC key the workers sign trained style models and checkpoints with, and require when loading them, so only
    # files this service wrote are ever loaded. Unset: a random key made once per deployment and kept in Redis.
    model_signing_key: str | None = None
    # Webhooks (docs/webhooks.md). Host names and CIDRs a webhook may call although they are not public addresses
    # (comma separated; tests and `atelier dev` users allow 127.0.0.1). Deliveries are retried on 429, 5xx and
    # connection errors after base * factor^(n-1) seconds, up to max_attempts attempts in all: 5 s, 20 s, 80 s ...
    # 5.7 h by default, about 7.6 h from the first attempt to the last.
    webhook_allowlist: str = ""
    webhook_timeout_s: float = 10.0  # one attempt: connect plus response
    webhook_retry_base_s: float = 5.0
    webhook_retry_factor: float = 4.0
    webhook_max_attempts: int = 8
    webhook_secret_grace_s: float = 86400.0  # after a rotation, the previous secret keeps signing this long
    # Videos at the door (POST /v1/videos, shared/video.py probe_video): bytes 413, pixels per frame 413, seconds
    # and frames 422. 2 minutes of 30 fps 1080p is the order of a phone clip; the frame cap bounds the work.
    video_max_bytes: int = 200 * MIB
    video_max_pixels: int = 3840 * 2160
    video_max_duration_s: float = 120.0
    video_max_frames: int = 3600

    def __post_init__(self) -> None:
        if not self.storage:
            object.__setattr__(self, "storage", default_storage_url())
        if not self.visibility_timeout_s:
            object.__setattr__(self, "visibility_timeout_s",
                               2 * max(self.job_time_limit_s, self.train_time_limit_s) + 600)
        _check_storage_url(self.storage)
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError(
                message=f"ATELIER_REDIS_URL={self.redis_url!r} is not allowed; expected redis://host:port/db",
                field="ATELIER_REDIS_URL",
            )
        preload_choices = ("default", "none", *BACKBONES)
        if self.preload_backbone.strip().lower() not in preload_choices:
            raise SettingsError(
                message=f"ATELIER_PRELOAD_BACKBONE={self.preload_backbone!r} is not allowed; expected one of "
                + ", ".join(preload_choices),
                field="ATELIER_PRELOAD_BACKBONE",
            )
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                message=f"ATELIER_LOG_FORMAT={self.log_format!r} is not allowed; expected one of "
                + ", ".join(LOG_FORMATS),
                field="ATELIER_LOG_FORMAT",
            )
        if self.auth not in AUTH_MODES:
            raise SettingsError(message=f"ATELIER_AUTH={self.auth!r} is not allowed; expected on or off",
                                field="ATELIER_AUTH")
        longest_s = max(self.job_time_limit_s, self.train_time_limit_s)
        if self.visibility_timeout_s <= longest_s:
            raise SettingsError(
                message=(
                    f"ATELIER_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s} must exceed the longest job limit "
                    f"(ATELIER_JOB_TIME_LIMIT_S={self.job_time_limit_s}, ATELIER_TRAIN_TIME_LIMIT_S="
                    f"{self.train_time_limit_s}), or long jobs are delivered twice"
                ),
                field="ATELIER_VISIBILITY_TIMEOUT_S",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``ATELIER_*`` variable that is set; unset or empty ones keep their defaults."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, (kind, minimum) in _FIELDS.items():
            env_name = PREFIX + name.upper()
            raw = environ.get(env_name, "").strip()
            if raw:
                values[name] = _parse(env_name, raw, kind, minimum)
        return cls(**values)

    @property
    def storage_is_s3(self) -> bool:
        return self.storage.startswith("s3://")

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# field -> (type, minimum); the type drives parsing of the environment string.
_FIELDS: dict[str, tuple[type, float | None]] = {
    "redis_url": (str, None),
    "storage": (str, None),
    "s3_endpoint_url": (str, None),
    "max_upload_bytes": (int, 1),
    "max_image_pixels": (int, 1),
    "job_time_limit_s": (int, 1),
    "train_time_limit_s": (int, 1),
    "visibility_timeout_s": (int, 1),
    "max_deliveries": (int, 1),
    "lease_ttl_s": (float, 1),
    "presign_ttl_s": (int, 1),
    "progress_min_interval_s": (float, 0),
    "preview_every": (int, 0),
    "sse_max_streams": (int, 1),
    "sse_heartbeat_s": (float, 0.1),
    "sse_max_stream_s": (float, 1),
    "weights_dir": (str, None),
    "model_signing_key": (str, None),
    "cache_dir": (str, None),
    "engine_memory_bytes": (int, 0),
    "log_format": (str, None),
    "preload_backbone": (str, None),
    "auth": (str, None),
    "rate_limit_per_min": (int, 0),
    "max_queued_jobs": (int, 0),
    "idempotency_ttl_s": (int, 1),
    "reconcile_interval_s": (float, 0.1),
    "reconcile_grace_s": (float, 0),
    "storage_retry_attempts": (int, 1),
    "webhook_allowlist": (str, None),
    "webhook_timeout_s": (float, 0.1),
    "webhook_retry_base_s": (float, 0),
    "webhook_retry_factor": (float, 1),
    "webhook_max_attempts": (int, 1),
    "webhook_secret_grace_s": (float, 0),
    "video_max_bytes": (int, 1),
    "video_max_pixels": (int, 1),
    "video_max_duration_s": (float, 0.1),
    "video_max_frames": (int, 1),
}


def _parse(env_name: str, raw: str, kind: type, minimum: float | None) -> Any:
    if kind is str:
        return raw
    try:
        value = kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise SettingsError(message=f"{env_name}={raw!r} is not allowed; expected {expected}", field=env_name) from None
    if minimum is not None and value < minimum:
        raise SettingsError(message=f"{env_name}={raw!r} is not allowed; expected at least {minimum:g}", field=env_name)
    return value


def _check_storage_url(url: str) -> None:
    if url.startswith("file://") and Path(url[len("file://") :]).is_absolute():
        return
    if url.startswith("s3://") and url[len("s3://") :].strip("/") and "/" not in url[len("s3://") :].strip("/"):
        return
    raise SettingsError(
        message=f"ATELIER_STORAGE={url!r} is not allowed; expected file:///absolute/path or s3://bucket",
        field="ATELIER_STORAGE",
    )


# Share of the machine's memory one engine pass gets by default. Besides the pass, a job holds whole-image arrays
# (the L-BFGS history: 25 float64 copies of the image at scipy's m=10) and a host may run several worker processes;
# a tenth kept a 2048 px print under 4 GiB of peak RSS on a 24 GB machine (docs/engine.md, "Print sizes").
ENGINE_MEMORY_FRACTION = 0.1


def machine_memory_bytes() -> int:
    """Physical memory, or the cgroup (v2) limit of this container when that is lower."""
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return physical
    return min(physical, int(limit)) if limit.isdigit() else physical


def engine_memory_budget_bytes(settings: Settings) -> int:
    """What the worker and the local CLI pass to the engine as ``memory_budget_bytes`` (ATELIER_ENGINE_MEMORY_BYTES,
    or ``ENGINE_MEMORY_FRACTION`` of the machine's memory when it is 0)."""
    if settings.engine_memory_bytes:
        return settings.engine_memory_bytes
    return int(ENGINE_MEMORY_FRACTION * machine_memory_bytes())
