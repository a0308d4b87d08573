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

import importlib

import numpy as np
import pytest

from impls import SHORT, frameworks, unavailable_reason
from impls.model import compose, seeded, voices
from impls.model.description import Model
from verify.headroom import check

B = 3
DTYPES = ("float32", "float64")
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

_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs, boundary = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=37, batch=B, boundary=boundary)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


def data(m: Model, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *m.input_shape))


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    why = unavailable_reason(voice)
    if why is None:
        why = voices.refusal(voice, model(name), dtype)
    if why is not None:
        pytest.skip(f"{voice} {dtype}: {why}")
    key = (voice, name, dtype)
    if key not in _BUILT:
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


def _names(m: Model) -> set[str]:
    return {la.options.get("activation") for la in m.layers} - {None, "linear"}


def test_the_cases_hold_every_activation_and_cross_every_kink():
    names = set().union(*(_names(model(n)) for n in CASES))
    assert {"relu6", "hard_sigmoid", "hard_swish", "silu", "gelu", "gelu_tanh", "leaky_relu", "clip"} <= names
    m = model("mobile-nchw")
    x = data(m, 12)
    pre = compose.reference_outputs(m, x)[m.layer_index("spread")]
    assert pre.min() < -3 and pre.max() > 6, (pre.min(), pre.max())


MATRIX = [pytest.param(v, n, d, id=f"{SHORT[v]}-{d}-{n}") for v in voices.VOICES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, name, dtype", MATRIX)
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    x = data(m, 12).astype(dtype)
    what = f"{SHORT[voice]}-{dtype}-{name}"
    ref = rounded(m, dtype)
    check(b.forward(x), compose.reference_forward(ref, x.astype(np.float64)), dtype, voice, what=f"{what} forward")
    if b.vjp is None:
        return
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(ref, x.astype(np.float64), dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")
