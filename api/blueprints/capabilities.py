"""``GET /v1/capabilities``: what the live workers can run (backbones with weights, precision, device, queues), as
they advertise it in Redis (``services.capabilities``). The API refuses jobs by the same data (``api.runnable``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.context import api_context
from services import capabilities
from services.redis_client import redis_errors
from shared.backbones import BACKBONE_NAMES

bp = Blueprint("capabilities", __name__, url_prefix="/v1/capabilities")


@bp.get("")
@redis_errors
def get_capabilities() -> dict[str, Any]:
    workers = capabilities.live_workers(api_context().registry.redis)
    view = capabilities.summary(workers)
    # Every backbone the API knows, with how many live workers can run it (0: refused while workers are up).
    view["backbones"] = {name: view["backbones"].get(name, 0) for name in BACKBONE_NAMES}
    view["accepting"] = {name: (count > 0 or not workers) for name, count in view["backbones"].items()}
    return view
