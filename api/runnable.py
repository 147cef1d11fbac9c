"""The door: what the API accepts, a worker can run. Checked before anything is stored, after the request's structure
and parameter bounds (``api.validation``).

- **Layers and geometry** (``shared.geometry.check_job``, the same pure-Python definition the engine runs by): every
  content or style layer is a layer of the backbone (static tables in ``shared.backbones``; no TensorFlow here), and
  every image, after scaling to ``size`` (styles: ``style_scale``), is large enough for the deepest layer used.
  Thin images are not refused: the engine reflect-pads them and crops back. 422 ``unknown_layer`` or
  ``image_too_small`` naming the limit and the image's size after scaling.
- **A worker that can run it** (``services.capabilities``): while live workers are registered and none of them has
  the backbone's weights, the job is refused with 422 ``backbone_unavailable`` naming the backbones they do have.
  When no worker is registered at all, jobs still queue (a worker may be starting; that is what queues are for).
"""

from __future__ import annotations

from collections.abc import Sequence

from api.context import ApiContext
from services import capabilities
from services.redis_client import redis_errors
from shared.errors import ParamError
from shared.geometry import check_job
from shared.jobs import JobKind, JobStatus
from shared.params import StyleParams
from shared.train_params import TrainParams


def check_runnable(ctx: ApiContext, params: StyleParams, content_hw: tuple[int, int] | None,
                   style_hws: Sequence[tuple[int, int]]) -> None:
    """Raise ``ParamError`` (422) unless a worker can run ``params`` on images of these (height, width) sizes.
    ``content_hw`` None (a batch created before its items) checks at ``size`` alone: the content's long side after
    scaling is ``size`` whatever its aspect ratio, so the geometry check does not depend on it."""
    check_job(params, content_hw or (params.size, params.size), style_hws)
    check_backbone_available(ctx, params.backbone)


def check_trainable(ctx: ApiContext, params: TrainParams, style_hws: Sequence[tuple[int, int]]) -> None:
    """A style model can be trained with ``params``: the Gatys job with the same loss network, crop size and
    style scale could run (layers exist, crops and style images large enough, some worker has the weights)."""
    check_runnable(ctx, params.style_params(), None, style_hws)


@redis_errors
def check_style_model(ctx: ApiContext, model_id: str | None, tenant: str) -> str | None:
    """The storage key of the tenant's trained style model ``model_id`` (None when no model is asked for), or 422:
    ``style_model_not_found`` (no such model of this tenant) or ``style_model_not_ready`` (not trained yet, or its
    training failed or was canceled)."""
    if model_id is None:
        return None
    record = ctx.registry.get(model_id)
    if record is None or record.kind != JobKind.TRAIN_STYLE or record.tenant != tenant:
        raise ParamError("style_model_not_found", f"style_model={model_id!r} names no style model of yours; see "
                         "GET /v1/styles", field="style_model")
    if record.status != JobStatus.SUCCEEDED or not record.result:
        raise ParamError("style_model_not_ready", f"style model {model_id} is {record.status}; it can style images "
                         "once its training has succeeded", field="style_model")
    return str(record.result["key"])


@redis_errors
def check_backbone_available(ctx: ApiContext, backbone: str) -> None:
    available = capabilities.backbone_available(ctx.registry.redis, backbone)
    if available is False:
        offered = sorted(capabilities.summary(capabilities.live_workers(ctx.registry.redis))["backbones"])
        raise ParamError(
            "backbone_unavailable",
            f"backbone={backbone!r} cannot run now: no live worker has its weights; the live workers offer "
            + (", ".join(offered) if offered else "no backbone")
            + " (operators: put the weight file in ATELIER_WEIGHTS_DIR on the workers)",
            field="backbone",
        )
