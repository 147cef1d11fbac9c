"""The static per-backbone tables in shared/backbones.py match the real Keras models, so they cannot drift: the
layer names (in network order) and, for each layer, the smallest input side: at the minimum the network runs to
that layer with finite features; one pixel less it fails or gives an empty map.

Xception and EfficientNetB7 are built with random weights (the explicit test-only switch; their official files are
not obtainable here): names and shapes do not depend on the weights."""

from __future__ import annotations

import re

import numpy as np
import pytest

from shared import backbones as tables
from shared.errors import ParamError

pytestmark = pytest.mark.slow

# Keras' auto-named layers: left out of the tables on purpose (their names change between builds; see the module).
AUTO_NAMED = re.compile(r"^(input_layer|conv2d|batch_normalization|add|rescaling|normalization)(_\d+)?$")


@pytest.fixture(scope="module")
def built(request):
    """name -> the engine's built backbone (random weights)."""
    from shared.weights import WeightSource
    from worker.engine.backbones import get_backbone

    source = WeightSource(random=True)
    return {name: get_backbone(name, "max", "float32", source)[0] for name in tables.BACKBONE_NAMES}


@pytest.mark.parametrize("backbone", tables.BACKBONE_NAMES)
def test_layer_tables_are_the_models_named_layers_in_network_order(built, backbone):
    real = [name for name in built[backbone].layer_names if not AUTO_NAMED.match(name)]
    assert list(tables.LAYER_NAMES[backbone]) == real
    defaults = [name for kind in ("content", "style") for name, _w in tables.DEFAULT_LAYERS[backbone][kind]]
    assert set(defaults) <= set(tables.LAYER_NAMES[backbone])


def _features(backbone, layer: str, side_px: int) -> np.ndarray:
    """``layer``'s map for a (side x 2*side) noise image (the short side is the one under test)."""
    from worker.engine import backbones

    extractor = backbones.feature_extractor(backbone, (layer,))
    image = np.random.default_rng(0).uniform(0, 255, (1, side_px, 2 * side_px, 3)).astype(np.float32)
    return np.asarray(extractor(backbone.preprocess(image), training=False), dtype=np.float32)


def _output_side(backbone, layer: str, side_px: int) -> int:
    """The height Keras' own shape inference gives ``layer`` for a (side x 2*side) input, 0 if it refuses.

    Shape inference, not a run: below the minimum TensorFlow does not always raise. Run eagerly, or through a
    function traced for unknown sizes, oneDNN's valid convolution silently returns garbage (its padded *input*:
    seen with Xception's block1_conv2 and EfficientNet's block2a_dwconv). The tables exist so the engine never
    gets there."""
    from worker.engine import backbones

    extractor = backbones.feature_extractor(backbone, (layer,))
    try:
        shape = extractor.compute_output_shape((1, side_px, 2 * side_px, 3))
    except ValueError:  # a negative output size
        return 0
    shape = shape[0] if isinstance(shape, list) else shape
    return max(0, int(shape[1]))


# Each layer where a backbone's minimum changes, and one default layer: exactly at the minimum it runs, one below
# it does not. (Every other layer's minimum is one of these by the tables' construction.)
STEPS = [
    ("vgg19", "block1_pool", 2), ("vgg19", "block3_conv1", 4), ("vgg19", "block4_conv2", 8),
    ("vgg19", "block5_conv1", 16), ("vgg19", "block5_pool", 32),
    ("xception", "block1_conv1_act", 3), ("xception", "block1_conv2", 7), ("xception", "block14_sepconv2_act", 7),
    ("efficientnetb7", "stem_activation", 2), ("efficientnetb7", "block2a_dwconv", 4),
    ("efficientnetb7", "block3a_expand_activation", 4), ("efficientnetb7", "block3a_dwconv", 8),
    ("efficientnetb7", "block4a_dwconv", 16), ("efficientnetb7", "block5a_expand_activation", 16),
]


@pytest.mark.parametrize(("backbone", "layer", "min_side_px"), STEPS)
def test_minimum_side_is_exact(built, backbone, layer, min_side_px):
    assert tables.min_side_px(backbone, layer) == min_side_px
    at_min = _features(built[backbone], layer, min_side_px)
    assert at_min.size > 0 and np.isfinite(at_min).all(), f"{backbone} {layer} fails at its minimum"
    assert at_min.shape[1] == _output_side(built[backbone], layer, min_side_px) >= 1
    assert _output_side(built[backbone], layer, min_side_px - 1) == 0, f"{backbone} {layer} fits below the minimum"


def test_efficientnet_deep_minimum_is_32_by_the_table():
    # block6a_dwconv and later: one more stride-2 step than block4a (16 -> 32). Not run here: tracing EfficientNetB7
    # that deep takes about a minute on 2 cores; the step is the same arithmetic the runs above confirm.
    assert tables.min_side_px("efficientnetb7", "block6a_dwconv") == 32
    assert tables.min_side_px("efficientnetb7", "top_activation") == 32
    assert tables.min_side_px("efficientnetb7", "block6a_expand_activation") == 16


def test_minimum_of_a_layer_set_includes_the_engines_own():
    assert tables.min_input_side_px("vgg19", ["block1_conv1"]) == 2  # total variation needs two pixels a side
    defaults = {b: [n for kind in ("content", "style") for n, _w in tables.DEFAULT_LAYERS[b][kind]]
                for b in tables.BACKBONE_NAMES}
    assert {b: tables.min_input_side_px(b, names) for b, names in defaults.items()} == {
        "vgg19": 16, "xception": 7, "efficientnetb7": 16}
    assert tables.deepest_layer("vgg19", ["block1_conv1", "block5_pool", "block4_conv2"]) == "block5_pool"


def test_unknown_layers_and_auto_named_ones_are_refused_with_the_allowed_list():
    with pytest.raises(ParamError) as caught:
        tables.check_layers("vgg19", ["block1_conv1", "block9_conv1"], "style")
    assert caught.value.code == "unknown_layer" and caught.value.field == "style_layers"
    assert "block9_conv1" in caught.value.message and "block5_pool" in caught.value.message
    with pytest.raises(ParamError):
        tables.check_layers("xception", ["add_3"], "content")
    with pytest.raises(ParamError) as caught:
        tables.layers_or_default("vgg19", (("block1_conv1", 0.0),), "style")
    assert caught.value.code == "param_out_of_range"
