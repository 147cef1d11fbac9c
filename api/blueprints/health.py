"""``/healthz`` (the process answers) and ``/readyz`` (Redis and storage are reachable, else 503 naming which)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.context import api_context
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
    }
    if not failures:
        return body, 200
    code = f"{next(iter(failures))}_unavailable" if len(failures) == 1 else "dependencies_unavailable"
    message = "; ".join(f"{name}: {text}" for name, text in failures.items())
    body["error"] = {"code": code, "message": message, "field": None}
    return body, 503
