"""What the live workers can run, advertised in Redis: pure redis-py (no TensorFlow, no Celery), so the API can ask.

Each worker process that runs jobs (the pool child, after it built its backbone: ``worker/signals.py``) writes one
key and rewrites it on every heartbeat (``REFRESH_INTERVAL_S``); the key expires ``TTL_S`` after the last write, so a
worker killed without a goodbye disappears on its own, and one that stops in an orderly way deletes its key at once.

Redis layout (keys named in ``services.redis_keys``): one string per worker, JSON, plus an index of the workers so a
reader never scans the keyspace (the API reads this on every submission, and the keyspace holds every job):

    atelier:capabilities:<hostname>:<pid>   TTL TTL_S
    atelier:capabilities-index              sorted set: worker id -> the epoch second its key expires
    {"hostname": "gpu-node-3", "pid": 4242, "queues": ["interactive", "bulk"],
     "backbones": ["vgg19"], "precision": "float32", "device": "cpu", "started_at": "2026-01-01T12:00:00+00:00"}

- ``backbones``: the backbones whose weight files this worker has (checked by file existence, never by building a
  model: ``shared.weights.available_backbones``).
- ``precision``: what ``precision=auto`` resolves to on this worker (``float32`` or ``bfloat16``).
- ``device``: ``cpu`` or ``gpu:<name>``.

Reading: ``live_workers(client)`` lists them; ``backbone_available(client, name)`` answers the API's door check:
True when some live worker has the weights, False when live workers exist and none has them (refuse the job), None
when no worker is registered at all (accept: jobs queue until a worker comes up).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from services.redis_keys import CAPABILITIES_INDEX_KEY, CAPABILITIES_KEY_PREFIX, capabilities_key

log = logging.getLogger(__name__)

KEY_PREFIX = CAPABILITIES_KEY_PREFIX
# A worker rewrites its key this often; the key lives three intervals, so one slow Redis round trip does not make a
# worker vanish (the same rule as the liveness heartbeat in services/metrics.py).
REFRESH_INTERVAL_S = 10.0
TTL_S = 30.0


@dataclass(frozen=True)
class WorkerCapabilities:
    hostname: str
    pid: int
    queues: tuple[str, ...]
    backbones: tuple[str, ...]
    precision: str
    device: str
    started_at: str  # ISO 8601, UTC

    @property
    def worker_id(self) -> str:
        return f"{self.hostname}:{self.pid}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["queues"], out["backbones"] = list(self.queues), list(self.backbones)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerCapabilities:
        return cls(
            hostname=str(data["hostname"]),
            pid=int(data["pid"]),
            queues=tuple(str(q) for q in data.get("queues") or ()),
            backbones=tuple(str(b) for b in data.get("backbones") or ()),
            precision=str(data.get("precision") or "unknown"),
            device=str(data.get("device") or "unknown"),
            started_at=str(data.get("started_at") or ""),
        )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def worker_key(worker_id: str) -> str:
    return capabilities_key(worker_id)


def advertise(client: redis.Redis, capabilities: WorkerCapabilities, *, ttl_s: float = TTL_S) -> None:
    """Write (or refresh) this worker's key with a TTL of ``ttl_s``; call it every ``REFRESH_INTERVAL_S``."""
    expires_s = time.time() + ttl_s
    with client.pipeline() as pipe:  # MULTI: the index never names a worker whose key was not written
        pipe.set(worker_key(capabilities.worker_id), json.dumps(capabilities.to_dict()), px=int(ttl_s * 1000))
        pipe.zadd(CAPABILITIES_INDEX_KEY, {capabilities.worker_id: expires_s})
        pipe.execute()


def withdraw(client: redis.Redis, worker_id: str) -> None:
    """Remove a worker's key at once (orderly shutdown)."""
    with client.pipeline() as pipe:
        pipe.delete(worker_key(worker_id))
        pipe.zrem(CAPABILITIES_INDEX_KEY, worker_id)
        pipe.execute()


def live_workers(client: redis.Redis) -> list[WorkerCapabilities]:
    """Every worker whose key has not expired, sorted by worker id. Unreadable entries are skipped (logged)."""
    # Workers killed without a goodbye leave an index entry whose key expired: drop those first.
    client.zremrangebyscore(CAPABILITIES_INDEX_KEY, "-inf", time.time())
    worker_ids = sorted(member.decode() for member in client.zrange(CAPABILITIES_INDEX_KEY, 0, -1))
    if not worker_ids:
        return []
    keys = [worker_key(worker_id) for worker_id in worker_ids]
    workers = []
    for key, raw in zip(keys, client.mget(keys), strict=True):
        if raw is None:  # expired between SCAN and MGET
            continue
        try:
            workers.append(WorkerCapabilities.from_dict(json.loads(raw)))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable capabilities entry %r", key)
    return sorted(workers, key=lambda w: w.worker_id)


def backbone_available(client: redis.Redis, name: str) -> bool | None:
    """Whether a live worker can run backbone ``name``: True if one has its weights, False if live workers exist and
    none has them, None if no worker is registered at all (so jobs still queue while no worker is up)."""
    workers = live_workers(client)
    if not workers:
        return None
    return any(name in worker.backbones for worker in workers)


def summary(workers: Sequence[WorkerCapabilities]) -> dict[str, Any]:
    """A JSON-ready view for ``GET /v1/capabilities`` or ``/readyz``: the workers and, per backbone, how many live
    workers can run it."""
    counts: dict[str, int] = {}
    for worker in workers:
        for backbone in worker.backbones:
            counts[backbone] = counts.get(backbone, 0) + 1
    return {"workers": [w.to_dict() for w in workers], "backbones": counts}
