"""``Idempotency-Key`` on ``POST /v1/jobs`` and ``POST /v1/batches``: a client that lost an answer may send again.

The same key with the same body returns the resource the first request created (``200`` instead of ``202``/``201``,
header ``Idempotent-Replayed: true``); the same key with another body is ``422 idempotency_key_reused``. "Same body"
is a fingerprint: SHA-256 over the canonical JSON of the validated parameters, the SHA-256 of every uploaded file in
order, and the queue, so two uploads of the same bytes under other file names are the same request.

Keys are per tenant (one tenant cannot collide with or probe another's keys) and remembered for
``ATELIER_IDEMPOTENCY_TTL_S``. The entry ``{fingerprint, id}`` is written with ``SET NX`` *before* the resource is
created, under the id the resource will get, so two concurrent requests with one key cannot both create: the loser
sees the entry; while the winner is still creating, the loser gets ``409 idempotency_in_progress`` with
``Retry-After: 1``. If creating fails, the entry is deleted, so the client can retry with the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request

from api.context import ApiContext
from api.ratelimit import RateLimited
from services.redis_client import redis_errors
from services.redis_keys import idempotency_key
from shared.errors import BadRequest, ParamError

HEADER = "Idempotency-Key"
# Visible ASCII, like the IETF draft's examples (UUIDs, random strings); long enough for any of them.
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")

T = TypeVar("T")


class InProgress(RateLimited):
    """409 with ``Retry-After`` (answered by the RateLimited handler): the first request with this key is running."""

    http_status = 409


def fingerprint(**parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def create_once(ctx: ApiContext, tenant: str, scope: str, body_fingerprint: str, *, new_id: Callable[[], str],
                create: Callable[[str], T], load: Callable[[str], T | None]) -> tuple[T, bool]:
    """``(resource, created)``. Without the header: ``create(new_id())``. With it: create once per key, replay after."""
    client_key = request.headers.get(HEADER)
    if client_key is None:
        return create(new_id()), True
    if not KEY_PATTERN.match(client_key):
        raise BadRequest("bad_idempotency_key", f"{HEADER} {client_key[:60]!r} is not allowed; expected 1 to 255 "
                         "visible ASCII characters (a UUID is a good choice)", field=HEADER)
    redis_key = idempotency_key(tenant, scope, hashlib.sha256(client_key.encode()).hexdigest())
    resource_id = new_id()
    entry = {"fingerprint": body_fingerprint, "id": resource_id}
    if _claim(ctx, redis_key, entry):
        try:
            return create(resource_id), True
        except BaseException:
            _forget(ctx, redis_key)
            raise
    existing = _read(ctx, redis_key)
    if existing is None:  # expired between our SET NX and GET: a fresh start is correct
        return create_once(ctx, tenant, scope, body_fingerprint, new_id=new_id, create=create, load=load)
    if existing["fingerprint"] != body_fingerprint:
        raise ParamError("idempotency_key_reused", f"{HEADER} {client_key[:60]!r} was already used with a different "
                         "request body; use a new key for a new request", field=HEADER)
    resource = load(existing["id"])
    if resource is None:
        raise InProgress("idempotency_in_progress", f"a request with {HEADER} {client_key[:60]!r} is still being "
                         "processed; retry in a moment", retry_after_s=1)
    return resource, False


@redis_errors
def _claim(ctx: ApiContext, redis_key: str, entry: dict[str, str]) -> bool:
    return bool(ctx.registry.redis.set(redis_key, json.dumps(entry), nx=True, ex=ctx.settings.idempotency_ttl_s))


@redis_errors
def _read(ctx: ApiContext, redis_key: str) -> dict[str, str] | None:
    raw = ctx.registry.redis.get(redis_key)
    return None if raw is None else json.loads(raw)


def _forget(ctx: ApiContext, redis_key: str) -> None:
    try:
        ctx.registry.redis.delete(redis_key)
    except Exception:  # noqa: BLE001 - best effort; the entry expires, and the error being raised matters more
        pass
