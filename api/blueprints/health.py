"""``/healthz`` (the process answers) and ``/readyz`` (Redis and storage are reachable, else 503 naming which; also
how many workers are live, for information: jobs queue when none is)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.context import ApiContext, api_context
from services import capabilities
from services.redis_client import REDIS_ERRORS
from shared.errors import AtelierError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    ctx = api_context()
    checks = {"redis": ctx.registry.ping, "storage": ctx.storage.check}
    failures: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except AtelierError as exc:
            failures[name] = exc.message
    body: dict[str, Any] = {
        "status": "unavailable" if failures else "ready",
        "checks": {name: failures.get(name, "ok") for name in checks},
        # Informational: the API accepts jobs with no worker up (they queue); GET /v1/capabilities has the detail.
        "workers": None if "redis" in failures else _live_worker_count(ctx),
    }
    if not failures:
        return body, 200
    code = f"{next(iter(failures))}_unavailable" if len(failures) == 1 else "dependencies_unavailable"
    message = "; ".join(f"{name}: {text}" for name, text in failures.items())
    body["error"] = {"code": code, "message": message, "field": None}
    return body, 503


def _live_worker_count(ctx: ApiContext) -> int | None:
    try:
        return len(capabilities.live_workers(ctx.registry.redis))
    except REDIS_ERRORS:
        return None
