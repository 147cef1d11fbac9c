"""Per-tenant admission control for submissions: a rate limit and a cap on queued jobs, both ``429`` + ``Retry-After``.

- Rate: at most ``ATELIER_RATE_LIMIT_PER_MIN`` submissions (``POST /v1/jobs``, ``POST /v1/batches`` and
  ``POST /v1/batches/<id>/items``) per tenant per fixed one-minute window. A fixed window counted by one Lua script
  (INCR, EXPIRE on the first hit, read the TTL) is atomic across API processes and costs one round trip; its known
  weakness, up to twice the limit across a window boundary, is acceptable for protecting a GPU queue.
- Queue cap: a request that would take the tenant's queued jobs (single jobs and batch items, both queues) over
  ``ATELIER_MAX_QUEUED_JOBS`` gets 429 until some have started.

A refused request stores nothing; an idempotent replay (api/idempotency.py) is not counted.
"""

from __future__ import annotations

import math

from flask import Flask, Response

from api.context import ApiContext
from api.errors import error_response
from services.redis_client import redis_errors
from services.redis_keys import rate_key
from shared.errors import AtelierError
from shared.jobs import JobStatus

WINDOW_S = 60

_FIXED_WINDOW_LUA = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RateLimited(AtelierError):
    http_status = 429
    default_code = "rate_limited"

    def __init__(self, code: str, message: str, *, retry_after_s: int) -> None:
        super().__init__(code, message)
        self.retry_after_s = max(1, int(retry_after_s))


def install(app: Flask) -> None:
    """429 JSON with ``Retry-After`` (the generic AtelierError handler has no headers)."""

    @app.errorhandler(RateLimited)
    def rate_limited(exc: RateLimited) -> tuple[Response, int]:
        response, status = error_response(exc.code, exc.message, exc.http_status, exc.field)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response, status


def admit_submission(ctx: ApiContext, tenant: str, *, new_jobs: int = 0) -> None:
    """Count one submission for ``tenant``; raise ``RateLimited`` if it is over the rate or if its ``new_jobs``
    would take the tenant's queued jobs over the cap."""
    settings = ctx.settings
    if settings.max_queued_jobs and new_jobs:
        queued = ctx.registry.count_for_tenant(tenant, JobStatus.QUEUED.value)
        if queued + new_jobs > settings.max_queued_jobs:
            raise RateLimited("too_many_queued_jobs",
                              f"tenant {tenant!r} already has {queued} queued jobs; allowed: at most "
                              f"{settings.max_queued_jobs} (ATELIER_MAX_QUEUED_JOBS); retry once some have started",
                              retry_after_s=5)
    if settings.rate_limit_per_min:
        count, retry_after_s = _hit(ctx, tenant)
        if count > settings.rate_limit_per_min:
            raise RateLimited("rate_limited",
                              f"tenant {tenant!r} made {count} submissions this minute; allowed: "
                              f"{settings.rate_limit_per_min} per minute (ATELIER_RATE_LIMIT_PER_MIN)",
                              retry_after_s=retry_after_s)


@redis_errors
def _hit(ctx: ApiContext, tenant: str) -> tuple[int, int]:
    """(submissions in this window including this one, seconds until the window ends)."""
    now_s = _now_s(ctx)
    window = math.floor(now_s / WINDOW_S)
    # The window's number is in the key, so a new window starts from zero; the TTL only cleans up.
    key = rate_key(tenant, window)
    count, _ttl_s = ctx.registry.redis.eval(_FIXED_WINDOW_LUA, 1, key, WINDOW_S + 1)
    return int(count), math.ceil((window + 1) * WINDOW_S - now_s)


def _now_s(ctx: ApiContext) -> float:
    # Redis' clock, not ours: every API process then agrees on the window.
    seconds, micros = ctx.registry.redis.time()
    return seconds + micros / 1e6
