"""Style targets computed once and shared: by the jobs of a batch, across workers, and across batches.

The targets (blended Gram matrices, ``worker.engine.StyleTargets``) depend only on the style images, the blend
weights and a few parameters, never on the content (except in the colour modes that adapt the style to each content:
those bypass the cache). They are stored in storage under a deterministic key,
``style-targets/<sha256 of cache_key_fields>.npz``, so any worker with access to storage reuses them, and kept in a
small in-process memory cache so consecutive jobs of one worker do not even read storage.

Two workers starting children of the same batch at once must not both compute: the first takes a Redis lock
(``SET NX`` with a TTL, so a worker killed while computing cannot block the others for long) and computes; the
others wait for the stored object, and take the lock themselves if its holder vanished without storing anything.

The engine checks every targets it is given against its own key (``StyleTargets.key``) and recomputes on a mismatch,
so a wrong cache entry can cost time but never give a wrong style.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.redis_client import compare_and_delete
from services.redis_keys import style_targets_lock_key
from shared.errors import NotFound
from shared.params import StyleParams

log = logging.getLogger(__name__)

KEY_PREFIX = "style-targets/"
FORMAT_VERSION = 1  # bump when StyleTargets' meaning changes, so old stored entries are ignored
LOCK_TTL_S = 300.0  # longer than computing targets for the largest size takes on a slow worker
WAIT_TIMEOUT_S = 600.0  # a waiter gives up waiting and computes itself after this long
POLL_INTERVAL_S = 0.1
MEMORY_ENTRIES = 4  # VGG19 targets are about 2.4 MB (five Gram matrices up to 512 x 512 float32)


@dataclass(frozen=True)
class CacheOutcome:
    """What the cache did for one job; goes into the job's metrics."""

    source: str  # "memory" | "storage" | "computed" | "bypassed"
    key: str | None  # storage key, None when bypassed
    compute_s: float  # seconds this job spent computing targets (0 unless source is "computed")
    wait_s: float  # seconds this job waited for another worker's computation

    @property
    def state(self) -> str:
        """The engine's vocabulary: ``computed`` (by this job) or ``reused``."""
        return "computed" if self.source in ("computed", "bypassed") else "reused"

    def metrics(self) -> dict[str, Any]:
        return {"style_targets_source": self.source, "style_targets_key": self.key,
                "style_targets_compute_s": round(self.compute_s, 3), "style_targets_wait_s": round(self.wait_s, 3)}


def cache_key_fields(style_keys: list[str], params: StyleParams, precision: str) -> dict[str, Any] | None:
    """Everything the targets depend on, or None when they depend on the content too (no sharing possible).

    Style inputs are named by their storage keys, which are content addresses (``inputs/<sha256>.<ext>``)."""
    if params.preserve_color != "none":
        return None
    return {
        "version": FORMAT_VERSION,
        "styles": list(style_keys),
        "style_blend": list(params.blend_weights(len(style_keys))),
        "style_mix": params.style_mix,
        "backbone": params.backbone,
        "pooling": params.pooling,
        "precision": precision,
        "style_layers": None if params.style_layers is None else [list(pair) for pair in params.style_layers],
        "size": params.size,
        "style_scale": params.style_scale,
    }


def storage_key(fields: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return f"{KEY_PREFIX}{digest}.npz"


def _engine_compute(styles: list[Any], params: StyleParams, *, weights: Any = None) -> Any:
    """``weights``: the engine's ``WeightSource`` (``worker/weights_config.py``; the worker binds it)."""
    from worker.engine import compute_style_targets  # TensorFlow loads in the job's process, never before a fork

    return compute_style_targets(styles, params, weights=weights)


def _engine_precision(params: StyleParams) -> str:
    from worker.engine import resolve_precision

    return resolve_precision(params.precision)


def _engine_from_bytes(data: bytes) -> Any:
    from worker.engine import StyleTargets

    return StyleTargets.from_bytes(data)


class StyleTargetCache:
    """``targets_for(style_keys, styles, params)`` -> (targets or None, ``CacheOutcome``). One per worker process.

    ``compute``, ``precision_of`` and ``from_bytes`` default to the engine's; tests inject stand-ins."""

    def __init__(
        self,
        storage: Any,
        redis_client: Any,
        *,
        compute: Callable[[list[Any], StyleParams], Any] = _engine_compute,
        precision_of: Callable[[StyleParams], str] = _engine_precision,
        from_bytes: Callable[[bytes], Any] = _engine_from_bytes,
        lock_ttl_s: float = LOCK_TTL_S,
        wait_timeout_s: float = WAIT_TIMEOUT_S,
        memory_entries: int = MEMORY_ENTRIES,
    ) -> None:
        self.storage = storage
        self.redis = redis_client
        self.compute = compute
        self.precision_of = precision_of
        self.from_bytes = from_bytes
        self.lock_ttl_s = lock_ttl_s
        self.wait_timeout_s = wait_timeout_s
        self.memory_entries = memory_entries
        self._memory: OrderedDict[str, Any] = OrderedDict()

    def targets_for(self, style_keys: list[str], styles: list[Any], params: StyleParams) -> tuple[Any, CacheOutcome]:
        fields = cache_key_fields(style_keys, params, self.precision_of(params))
        if fields is None:
            # The engine computes content-dependent targets itself (inside stylize).
            return None, CacheOutcome("bypassed", None, 0.0, 0.0)
        key = storage_key(fields)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key], CacheOutcome("memory", key, 0.0, 0.0)
        targets, outcome = self._from_storage_or_compute(key, styles, params)
        self._remember(key, targets)
        return targets, outcome

    def _from_storage_or_compute(self, key: str, styles: list[Any], params: StyleParams) -> tuple[Any, CacheOutcome]:
        started_s = time.monotonic()
        lock = style_targets_lock_key(key)
        token = uuid.uuid4().hex
        deadline_s = started_s + self.wait_timeout_s
        while True:
            targets = self._load(key)
            if targets is not None:
                return targets, CacheOutcome("storage", key, 0.0, time.monotonic() - started_s)
            if self.redis.set(lock, token, nx=True, px=int(self.lock_ttl_s * 1000)):
                break
            if time.monotonic() > deadline_s:
                log.warning("style targets %s: waited %.0f s for another worker; computing here", key,
                            self.wait_timeout_s)
                token = ""
                break
            time.sleep(POLL_INTERVAL_S)
        wait_s = time.monotonic() - started_s
        try:
            # Between our last look and taking the lock the holder may have stored it and released the lock.
            targets = self._load(key)
            if targets is not None:
                return targets, CacheOutcome("storage", key, 0.0, wait_s)
            compute_started_s = time.monotonic()
            targets = self.compute(styles, params)
            compute_s = time.monotonic() - compute_started_s
            self.storage.put(key, targets.to_bytes(), content_type="application/octet-stream")
            log.info("style targets %s computed in %.2f s and stored", key, compute_s)
            return targets, CacheOutcome("computed", key, compute_s, wait_s)
        finally:
            if token:
                compare_and_delete(self.redis, lock, token)

    def _load(self, key: str) -> Any:
        try:
            data = self.storage.get(key)
        except NotFound:
            return None
        try:
            return self.from_bytes(data)
        except Exception:  # a truncated or foreign object: recompute (and overwrite) rather than fail the job
            log.warning("style targets %s in storage could not be read; recomputing", key, exc_info=True)
            return None

    def _remember(self, key: str, targets: Any) -> None:
        self._memory[key] = targets
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

