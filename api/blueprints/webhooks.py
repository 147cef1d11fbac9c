"""Webhook routes: the tenant's signing secret and the delivery logs (docs/webhooks.md).

- ``GET /v1/webhooks/secret`` -> ``{"secret": "whsec_..."}`` (made on first use);
- ``POST /v1/webhooks/secret/rotate`` -> the new secret; the old one keeps signing next to it for
  ``ATELIER_WEBHOOK_SECRET_GRACE_S`` (``previous_valid_until_s``);
- ``GET /v1/jobs/{id}/webhooks``, ``/v1/styles/{id}/webhooks``, ``/v1/videos/{id}/webhooks``,
  ``/v1/batches/{id}/webhooks``: the webhook and every
  delivery attempt (time, status code or error, duration, outcome), oldest first.

Ownership of the ids is checked by ``api.auth`` (the route arguments are ``job_id``, ``model_id``, ``batch_id``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.auth import current_tenant
from api.blueprints.jobs import require_image_job
from api.context import api_context
from services.batches import BatchRegistry
from services.webhooks.delivery import DeliveryLog, Schedule
from services.webhooks.secrets import SecretStore
from shared.errors import NotFound
from shared.jobs import JobKind

bp = Blueprint("webhooks", __name__, url_prefix="/v1")


def _secrets() -> SecretStore:
    ctx = api_context()
    return SecretStore(ctx.registry.redis, grace_s=ctx.settings.webhook_secret_grace_s)


@bp.get("/webhooks/secret")
def get_secret() -> dict[str, Any]:
    return {"secret": _secrets().current(current_tenant())}


@bp.post("/webhooks/secret/rotate")
def rotate_secret() -> dict[str, Any]:
    return _secrets().rotate(current_tenant())


@bp.get("/jobs/<job_id>/webhooks")
def job_webhooks(job_id: str) -> dict[str, Any]:
    return _log(job_id, require_image_job(job_id).webhook)


@bp.get("/styles/<model_id>/webhooks")
def style_webhooks(model_id: str) -> dict[str, Any]:
    record = api_context().registry.get(model_id)
    if record is None or record.kind != JobKind.TRAIN_STYLE:
        raise NotFound("style_model_not_found", f"no style model with id {model_id!r}", field="id")
    return _log(model_id, record.webhook)


@bp.get("/videos/<video_id>/webhooks")
def video_webhooks(video_id: str) -> dict[str, Any]:
    from api.blueprints.videos import require_video

    return _log(video_id, require_video(api_context(), video_id).webhook)


@bp.get("/batches/<batch_id>/webhooks")
def batch_webhooks(batch_id: str) -> dict[str, Any]:
    return _log(batch_id, BatchRegistry(api_context().registry).require(batch_id).get("webhook"))


def _log(subject_id: str, webhook: dict[str, Any] | None) -> dict[str, Any]:
    ctx = api_context()
    return {"id": subject_id, "webhook": webhook, "retry_schedule_s": Schedule.from_settings(ctx.settings).delays_s(),
            "attempts": DeliveryLog(ctx.registry.redis).read(subject_id)}
