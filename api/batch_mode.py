"""How a batch is styled: ``mode = optimize | fast | auto`` (``POST /v1/batches``, ``atelier batch --mode``).

- ``optimize``: a Gatys job per content (the default, and what batches always did).
- ``fast``: one forward pass per content through a style model: the one named by ``params.style_model``, or one the
  batch trains first on its own contents (the request's ``content`` parts; with none, the built-in training set),
  with ``train_params`` (``shared.train_params``). Children wait, queued without a message, until the model exists;
  the training's worker then enqueues them.
- ``auto``: ``fast`` when training plus applying costs less than optimizing every image, else ``optimize``
  (``shared.fast_costs.choose_mode``), for the number of contents in the request plus ``expected_items``. The
  decision and its figures are kept in the batch record (``mode_reason``).

The costs ``auto`` uses are the ones ``bench/fast.py`` measured on the 2-core CPU (AMD EPYC, AVX2), scaled by pixel
count and network width (a coarse-to-fine job by ``job_output_iterations``, its rungs' iterations weighted by their
pixels); a GPU worker pool would want its own figures (``bench/gpu.sh``), which we have not measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import BadRequest
from shared.fast_costs import FastCosts, choose_mode
from shared.geometry import job_output_iterations
from shared.params import StyleParams
from shared.train_params import TrainParams

BATCH_MODES = ("optimize", "fast", "auto")

# Measured side by side on the 2-core CPU (bench/fast.py all and train, docs/fast.md): one Gatys iteration of VGG19
# at 512 px, one forward pass of a width-0.5 network at 512 px, and one training crop at 256 px (a batch-1 step;
# a batch-4 step costs about 4 of them). Costs grow with the pixel count; a forward pass also with the width.
GATYS_ITERATION_S_AT_512 = 1.90
APPLY_S_AT_512_WIDTH_HALF = 0.17
TRAIN_CROP_S_AT_256 = 2.12


@dataclass(frozen=True)
class BatchPlan:
    mode: str  # "optimize" | "fast"
    reason: str
    train: TrainParams | None  # the model to train first (fast without a style_model)


def estimated_costs(params: StyleParams, train: TrainParams) -> FastCosts:
    pixels = (params.size / 512) ** 2
    return FastCosts(
        train_s=0.0 if params.style_model else train.steps * train.batch_size * TRAIN_CROP_S_AT_256
        * (train.size / 256) ** 2,
        apply_s=APPLY_S_AT_512_WIDTH_HALF * pixels * (train.width / 0.5),
        optimize_s=GATYS_ITERATION_S_AT_512 * pixels * job_output_iterations(params),
    )


def plan(mode: str, params: StyleParams, train: TrainParams, images: int) -> BatchPlan:
    """The mode this batch runs in, why, and the training it needs first (if any)."""
    if mode not in BATCH_MODES:
        raise BadRequest("bad_mode", f"mode={mode[:40]!r} is not allowed; expected one of " + ", ".join(BATCH_MODES),
                         field="mode")
    if mode == "auto":
        mode, reason = choose_mode(max(images, 1), estimated_costs(params, train))
        reason = "auto: " + reason + " (costs measured on the 2-core CPU by bench/fast.py)"
    else:
        reason = f"{mode}: asked for"
    if mode == "fast" and params.style_model is None:
        return BatchPlan("fast", reason + "; training a style model on the batch's contents first", train)
    return BatchPlan(mode, reason, None)
