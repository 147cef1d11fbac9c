"""Per-tenant webhook signing secrets in Redis: created on first use, rotatable with a grace period.

``atelier:webhooks:secret:<tenant>`` is a hash ``current`` (``whsec_...``), ``previous`` and ``previous_until``
(epoch seconds). After a rotation the previous secret keeps signing, next to the new one, until ``previous_until``
(``ATELIER_WEBHOOK_SECRET_GRACE_S``, default 24 h): a receiver that still has the old secret keeps verifying while its
operator installs the new one (the specification allows several signatures in one header for exactly this).
"""

from __future__ import annotations

import time

import redis

from services.redis_client import redis_errors
from services.redis_keys import webhook_secret_key
from services.webhooks.signing import new_secret


class SecretStore:
    def __init__(self, redis_client: redis.Redis, *, grace_s: float = 86400.0) -> None:
        self.redis = redis_client
        self.grace_s = grace_s

    @redis_errors
    def current(self, tenant: str) -> str:
        """The tenant's secret, made now if it has none (HSETNX: two first requests at once agree on one)."""
        key = webhook_secret_key(tenant)
        self.redis.hsetnx(key, "current", new_secret())
        return _text(self.redis.hget(key, "current"))

    @redis_errors
    def signing_secrets(self, tenant: str, *, now_s: float | None = None) -> list[str]:
        """The secrets a delivery signs with now: the current one, plus the previous one during its grace period."""
        current = self.current(tenant)
        previous, until = self.redis.hmget(webhook_secret_key(tenant), "previous", "previous_until")
        now_s = time.time() if now_s is None else now_s
        if previous and until and float(until) > now_s:
            return [current, _text(previous)]
        return [current]

    @redis_errors
    def rotate(self, tenant: str, *, now_s: float | None = None) -> dict[str, object]:
        """A new current secret; the old one signs too until the grace period ends. Returns what the API shows."""
        key = webhook_secret_key(tenant)
        old = self.current(tenant)
        fresh = new_secret()
        until = (time.time() if now_s is None else now_s) + self.grace_s
        self.redis.hset(key, mapping={"current": fresh, "previous": old, "previous_until": repr(until)})
        return {"secret": fresh, "previous_valid_until_s": int(until)}


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
