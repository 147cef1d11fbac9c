"""The Redis connection every Atelier component uses, the errors it raises, and the one compare-and-delete script.

- ``connect(url)``: a client with short timeouts and two quick retries: a blip is absorbed, an outage answers
  ``503`` at once instead of hanging a request.
- ``REDIS_ERRORS``: what a Redis call can raise when Redis is down or misbehaves; ``redis_errors`` turns those into
  ``Unavailable("redis_unavailable", …)`` (503) for library methods.
- ``compare_and_delete(client, key, token)``: delete ``key`` only while it still holds ``token`` (releasing a lock
  or lease we own, never one another process took after ours expired).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.errors import Unavailable

T = TypeVar("T")

# redis-py raises RedisError subclasses for connection, timeout and protocol problems.
REDIS_ERRORS: tuple[type[Exception], ...] = (redis.RedisError,)


def connect(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(
        redis_url,
        socket_connect_timeout=2,
        socket_timeout=10,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
    )


def redis_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Decorator: a Redis failure inside ``method`` becomes ``Unavailable("redis_unavailable")``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except REDIS_ERRORS as exc:
            raise Unavailable("redis_unavailable", f"Redis is unavailable: {exc}") from exc

    return wrapper


_COMPARE_AND_DELETE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def compare_and_delete(client: redis.Redis, key: str, token: str) -> bool:
    """Delete ``key`` if its value is ``token``; True if it was deleted. Atomic (one Lua script)."""
    return bool(client.eval(_COMPARE_AND_DELETE_LUA, 1, key, token))
