"""Issue 24's activations (relu6, hard_sigmoid with its alpha and beta, hard_swish, silu, gelu, gelu_tanh, leaky_relu,
clip) in every voice, as layers and as a layer's activation=, and ONNX's own node tests of HardSigmoid, HardSwish,
LeakyRelu, Clip and Gelu through the ONNX importer.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype (float32, float64) x model
    (CASES): voices.build(...).forward and every gradient (.vjp, where the voice has them) against
    compose.reference_forward / reference_vjp at the table's bar, the reference fed the weights and inputs the voice
    holds (rounded to its dtype). A voice that declares a model refused is a skip naming the reason.

The inputs are rescaled by 4 first, so that the pre-activations cross every kink (relu6's 0 and 6, hard_sigmoid's -3
and 3). The reference's own backward of each is checked against central differences in verify/test_model_voices.py's
TINY; the importers' and ports' conventions (and planted bugs in them) are tests/test_activations.py's.
"""

from __future__ import annotations

import pytest

from impls.model import compose
from impls.model.description import Model
from verify.layer_cases import LayerCases

WIDE = ("rescale", "wide", {"scale": 4.0, "offset": 0.5})

# name: (input shape without the batch, layers, boundary)
CASES: dict[str, tuple[tuple[int, ...], list, str]] = {
    # MobileNet's: relu6 and hard_swish as a conv's activation=, hard_sigmoid both ways, from a channels-first source
    "mobile-nchw": ((6, 5, 3), [
        WIDE,
        ("conv2d", "c", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "activation": "relu6"}),
        ("depthwise_conv2d", "dw", {"kernel_size": [3, 3], "padding": "same", "activation": "hard_swish"}),
        ("rescale", "spread", {"scale": [12.0, -15.0, 20.0, 9.0], "offset": [-1.0, 0.5, 0.0, 1.0]}),
        ("activation", "hs", {"activation": "hard_sigmoid"}),
        ("activation", "hs_onnx", {"activation": "hard_sigmoid", "alpha": 0.2, "beta": 0.5}, ("spread",)),
        ("add", "both", {}, ("hs", "hs_onnx")),
        ("activation", "r6", {"activation": "relu6"}, ("spread",)),
        ("activation", "hsw", {"activation": "hard_swish"}, ("spread",)),
        ("concatenate", "cat", {"axis": -1}, ("both", "r6", "hsw")),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "hard_sigmoid"}),
    ], "channels_first"),
    # the smooth ones and the parameterised ones on sequences: gelu (erf), silu, leaky_relu, a clip from 0
    "smooth-sequence": ((5, 4), [
        WIDE,
        ("dense", "d", {"units": 4, "activation": "gelu"}),
        ("activation", "s", {"activation": "silu"}),
        ("rescale", "spread", {"scale": [2.0, -3.0, 1.5, 4.0], "offset": -0.5}),
        ("activation", "lr", {"activation": "leaky_relu", "negative_slope": 0.1}),
        ("activation", "cl", {"activation": "clip", "min": 0.0, "max": 2.5}),
        ("dense", "d2", {"units": 3, "activation": "silu"}),
        ("activation", "g", {"activation": "gelu"}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2, "activation": "relu6"}),
    ], "channels_last"),
    # what Keras has no layer for (keras.ops nodes): the tanh GELU, a clip of any bounds, one bound only; ONNX's float64
    # decompositions of HardSigmoid, HardSwish, LeakyRelu
    "tanh_gelu-clip": ((4,), [
        WIDE,
        ("dense", "d", {"units": 5, "activation": "gelu_tanh"}),
        ("activation", "gt0", {"activation": "gelu_tanh"}),
        ("activation", "hs", {"activation": "hard_sigmoid", "alpha": 0.2, "beta": 0.5}, ("d",)),
        ("activation", "hsw", {"activation": "hard_swish"}, ("d",)),
        ("add", "sum", {}, ("gt0", "hs", "hsw")),
        ("activation", "cl", {"activation": "clip", "min": -1.5, "max": 2.0}),
        ("activation", "gt", {"activation": "gelu_tanh"}),
        ("activation", "up", {"activation": "clip", "min": None, "max": 1.0}),
        ("activation", "lr", {"activation": "leaky_relu", "negative_slope": 0.01}),
        ("dense", "out", {"units": 3, "activation": "relu6"}),
    ], "channels_last"),
}  # fmt: skip

LAYERS = LayerCases(CASES, seed=37)


def _names(m: Model) -> set[str]:
    return {la.options.get("activation") for la in m.layers} - {None, "linear"}


def test_the_cases_hold_every_activation_and_cross_every_kink():
    names = set().union(*(_names(LAYERS.model(n)) for n in CASES))
    assert {"relu6", "hard_sigmoid", "hard_swish", "silu", "gelu", "gelu_tanh", "leaky_relu", "clip"} <= names
    m = LAYERS.model("mobile-nchw")
    x = LAYERS.data(m, 12)
    pre = compose.reference_outputs(m, x)[m.layer_index("spread")]
    assert pre.min() < -3 and pre.max() > 6, (pre.min(), pre.max())


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)
