"""``/v1/openapi.json``: the OpenAPI description of every route (``api.openapi``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from api.openapi import openapi_spec

bp = Blueprint("docs", __name__)


@bp.get("/v1/openapi.json")
def openapi() -> dict[str, Any]:
    return openapi_spec()
