"""Bearer-token authentication and tenant scoping of the ``/v1`` routes.

A ``before_request`` hook on the v1 blueprints (jobs, batches) reads ``Authorization: Bearer <key>``, looks the key
up (``services.tenants.KeyStore``: hashed keys in Redis) and puts the tenant in ``flask.g``. Missing, malformed,
unknown or revoked keys get ``401`` JSON with ``WWW-Authenticate: Bearer``. Health, readiness, metrics and the
OpenAPI document stay public (probes and scrapers carry no keys).

``ATELIER_AUTH=off`` skips the check and puts every request in the ``default`` tenant. Only the embedded
``atelier dev`` stack sets it by default (a single-user machine); every other process defaults to ``on``.

Another tenant's job or batch is answered exactly like a missing one (``404``), so ids cannot be probed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, g, request

from api.context import api_context
from services.batches import BatchRegistry
from services.tenants import DEFAULT_TENANT, KeyStore
from shared.errors import AtelierError, NotFound


class Unauthorized(AtelierError):
    http_status = 401
    default_code = "unauthorized"


def install(app: Flask, blueprints: list[Blueprint]) -> None:
    """Require a key on every route of ``blueprints``; the 401 gets a ``WWW-Authenticate`` header."""
    # An app-level hook filtered by blueprint name rather than blueprint.before_request: the blueprints are module
    # objects shared by every app a process creates (tests create many), and Flask refuses setup calls on a
    # blueprint that is already registered.
    names = frozenset(blueprint.name for blueprint in blueprints)

    @app.before_request
    def require_key() -> None:
        if request.blueprint in names:
            authenticate()

    @app.after_request
    def challenge(response: Any) -> Any:
        if response.status_code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="atelier"'
        return response


def authenticate() -> None:
    ctx = api_context()
    if ctx.settings.auth == "off":
        g.tenant = DEFAULT_TENANT
        return  # one tenant: nothing to scope
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthorized("missing_api_key", "this route needs an API key: send 'Authorization: Bearer <key>' "
                           "(create one with `atelier keys create --tenant NAME`)", field="Authorization")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("bad_authorization", "the Authorization header is not allowed; expected "
                           "'Bearer <key>'", field="Authorization")
    tenant = KeyStore(ctx.registry.redis).tenant_for(token.strip())
    if tenant is None:
        # Never echo the key back: it may be a real key pasted into the wrong place.
        raise Unauthorized("invalid_api_key", "the API key is unknown or revoked", field="Authorization")
    g.tenant = tenant
    _check_ownership(ctx)


def _check_ownership(ctx: Any) -> None:
    """Every route with a ``job_id`` or ``batch_id`` serves only the owner's; the handler answers 404 for missing."""
    args = request.view_args or {}
    if "job_id" in args:
        record = ctx.registry.get(args["job_id"])
        if record is not None:
            require_owned(record.tenant, record.id, "job")
    if "model_id" in args:
        record = ctx.registry.get(args["model_id"])
        if record is not None:
            require_owned(record.tenant, record.id, "style_model")
    if "batch_id" in args:
        batch = BatchRegistry(ctx.registry).get(args["batch_id"])
        if batch is not None:
            require_owned(str(batch.get("tenant") or DEFAULT_TENANT), batch["id"], "batch")


def current_tenant() -> str:
    """The tenant of this request (set by ``authenticate``)."""
    return str(g.get("tenant") or DEFAULT_TENANT)


def require_owned(owner: str, resource_id: str, kind: str = "job") -> None:
    """Nothing if this request's tenant is ``owner``, else the same 404 as for a missing id (so ids of other
    tenants' resources cannot be probed)."""
    if owner != current_tenant():
        raise NotFound(f"{kind}_not_found", f"no {kind} with id {resource_id!r}", field="id")
