"""The general path's matrix: every voice builds any model description (impls/model/voices.py), and its forward and
gradients are the NumPy float64 reference's at the table's bar; the reference's own model-level backward is checked
against central finite differences on a tiny model of every layer kind.

    voice (impls.model.voices.VOICES) x model (an every-option CNN, a GRU model in reset_after and in reset_before,
    the seed models at small sizes)
    x dtype (float32, float64): build(voice, model, dtype).forward vs compose.reference_forward, and .vjp vs
    compose.reference_vjp for the input and every parameter, where the voice has gradients.

A voice whose framework is not installed, whose port module does not exist yet, or which declares the model or the
dtype refused (voices.refusal, with its reason) is skipped with that reason. Comparisons go through
verify.headroom.check, so each (dtype, voice)'s closest call to its bar lands in the headroom table. Ids read
`model-flax-float32-cnn`. The reference is fed the inputs and weights the voice holds (rounded to its dtype).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.contract.tolerance import error_stats
from impls.model import compose, seeded, voices
from impls.model import seed as seed_models
from impls.model.description import Model
from impls.model.layers import KINDS
from verify.headroom import check
from verify.test_finite_differences import FD_BAR, central_differences

B = 3
DTYPES = ("float32", "float64")


def make(name: str, input_shape: tuple[int, ...], specs: list, seed: int = 0) -> Model:
    """A model of `specs` [(kind, name, options)], each layer's weights from its kind's seeded init."""
    return seeded.chain(name, input_shape, specs, seed, batch=B)


def _cnn() -> Model:
    return make("cnn", (9, 10, 4), [
        ("conv2d", "conv_a", {"filters": 6, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
                              "activation": "relu"}),
        ("conv2d", "conv_b", {"filters": 4, "kernel_size": [3, 2], "dilation": [2, 1], "groups": 2,
                              "padding": [[1, 0], [0, 1]], "activation": "tanh"}),
        ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "padding": "same",
                                    "activation": "sigmoid"}),
        ("zero_pad2d", "pad", {"padding": [[1, 0], [0, 2]]}),
        ("max_pool2d", "max", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}),
        ("avg_pool2d", "avg", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}),
        ("avg_pool2d", "avg_pad", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[1, 0], [0, 1]],
                                   "count_include_pad": True}),
        ("activation", "act", {"activation": "relu"}),
        ("flatten", "flat", {}),
        ("dropout", "drop", {"rate": 0.3}),
        ("dense", "fc1", {"units": 7, "activation": "tanh", "use_bias": False}),
        ("dense", "fc2", {"units": 5, "activation": "softmax"}),
    ])  # fmt: skip


def _gru(variant: str = "reset_after") -> Model:
    return make(f"gru_{variant}", (6, 5), [
        ("gru", "gru1", {"units": 4, "variant": variant, "return_sequences": True}),
        ("dense", "td", {"units": 3, "activation": "sigmoid"}),  # on the last axis of (B, T, 4)
        ("gru", "gru2", {"units": 6, "variant": variant, "return_sequences": False}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ], seed=3)  # fmt: skip


MODELS: dict[str, Callable[[], Model]] = {
    "cnn": _cnn,
    "gru": _gru,
    "gru_reset_before": lambda: _gru("reset_before"),  # Keras' single bias, ONNX's linear_before_reset=0
    "seed_gru": lambda: seed_models.seed_gru(seed=4, input_size=5, units=(6, 4), classes=3, seq_len=5),
    "seed_cnn": lambda: seed_models.seed_cnn(seed=5, image=(10, 12, 1), filters=(3, 4), dense_units=6, classes=3),
}
_MADE: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MADE:
        _MADE[name] = MODELS[name]()
    return _MADE[name]


def data(m: Model, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *m.input_shape))


def rounded(m: Model, dtype: str) -> Model:
    """The weights as a `dtype` voice holds them, back in float64: what the reference is fed."""
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    """voices.build, once per (voice, model, dtype) for the session; a skip with the reason where it cannot run."""
    key = (voice, name, dtype)
    if key not in _BUILT:
        why = unavailable_reason(voice)
        if why is None and voice in voices.PORTS:
            try:
                voices.port_module(voice)
            except ModuleNotFoundError as e:
                why = f"{voices.PORTS[voice]} does not exist yet ({e})"
        if why is None:
            why = voices.refusal(voice, model(name), dtype)
            why = None if why is None else f"{voice} refuses {name} in {dtype}: {why}"
        if why is not None:
            pytest.skip(why)
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


MATRIX = [pytest.param(v, n, d, id=f"model-{SHORT[v]}-{d}-{n}") for v in voices.VOICES for d in DTYPES for n in MODELS]
FLOAT64_VJP_ONLY = ("gru_reset_before", "seed_gru", "seed_cnn")
VJP_MATRIX = [p for p in MATRIX if not (p.values[1] in FLOAT64_VJP_ONLY and p.values[2] == "float32")]
"""These models' gradients in float64 only: their layers' float32 gradients are the cnn and gru models' (which
hold every kind they do), and each voice's compile of one more vjp costs ~1 s here."""


@pytest.mark.parametrize("voice, name, dtype", MATRIX)
def test_voice_forward_matches_the_float64_reference(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    x = data(m, 11).astype(dtype)
    y = b.forward(x)
    what = f"model-{SHORT[voice]}-{dtype}-{name} forward"
    assert y.dtype == dtype, f"{what}: dtype {y.dtype}, asked for {dtype}"
    check(y, compose.reference_forward(rounded(m, dtype), x.astype(np.float64)), dtype, voice, what=what)


@pytest.mark.parametrize("voice, name, dtype", VJP_MATRIX)
def test_voice_vjp_matches_the_reference_for_the_input_and_every_parameter(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    if b.vjp is None:
        pytest.skip(f"{voice} has no gradients: {b.notes or 'Built.vjp is None'}")
    x = data(m, 12).astype(dtype)
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(rounded(m, dtype), x.astype(np.float64), dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    what = f"model-{SHORT[voice]}-{dtype}-{name}"
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")


# --------------------------------------------------------------------------- the reference's backward vs differences


TINY: dict[str, tuple[tuple[int, ...], list]] = {
    **{f"gru-{v}-{'seq' if seq else 'last'}": ((3, 3), [("gru", "g", {"units": 2, "variant": v, "return_sequences": seq})])
       for v, seq in (("seed", True), ("reset_before", False), ("reset_after", True), ("chung", False))},
    "conv2d": ((6, 5, 2), [("conv2d", "c", {"filters": 4, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same",
                                            "dilation": [1, 2], "groups": 2, "activation": "tanh"})]),
    "conv2d-explicit": ((5, 5, 2), [("conv2d", "c", {"filters": 2, "kernel_size": [2, 2], "padding": [[1, 0], [0, 2]],
                                                     "activation": "sigmoid"})]),
    "depthwise_conv2d": ((5, 4, 2), [("depthwise_conv2d", "d", {"kernel_size": [2, 2], "depth_multiplier": 2,
                                                                "padding": "same", "activation": "relu"})]),
    "max_pool2d": ((5, 4, 2), [("max_pool2d", "p", {"pool_size": [2, 2], "strides": [1, 2], "padding": "same"})]),
    "avg_pool2d": ((5, 4, 2), [("avg_pool2d", "p", {"pool_size": [2, 2], "strides": [2, 1], "padding": "same"})]),
    "avg_pool2d-pad": ((4, 4, 2), [("avg_pool2d", "p", {"pool_size": [3, 2], "padding": [[1, 1], [0, 1]],
                                                        "count_include_pad": True})]),
    "zero_pad2d": ((3, 3, 2), [("zero_pad2d", "z", {"padding": [[0, 1], [2, 0]]})]),
    "flatten-dense": ((2, 3, 2), [("flatten", "f", {}), ("dense", "d", {"units": 3, "activation": "softmax"})]),
    "dense-3d": ((4, 3), [("dense", "d", {"units": 2, "activation": "tanh"})]),
    "dense-nobias": ((3,), [("dense", "d", {"units": 2, "use_bias": False, "activation": "sigmoid"})]),
    **{f"activation-{a}": ((4,), [("activation", "a", {"activation": a})]) for a in ("relu", "softmax", "tanh", "sigmoid")},
    "dropout": ((4,), [("dropout", "o", {"rate": 0.5})]),
    "lstm-seq": ((3, 3), [("lstm", "l", {"units": 2, "return_sequences": True})]),
    "lstm-bidirectional-mul": ((3, 3), [("lstm", "l", {"units": 2, "direction": "bidirectional", "merge_mode": "mul"})]),
    "gru-bidirectional-take_step": ((3, 3), [("gru", "g", {"units": 2, "direction": "bidirectional",
                                                           "return_sequences": True}), ("take_step", "t", {"index": -1})]),
    "masking-lstm": ((3, 3), [("masking", "m", {"mask_value": 5.0}), ("lstm", "l", {"units": 2})]),
    "conv1d-causal": ((7, 3), [("conv1d", "c", {"filters": 4, "kernel_size": 3, "padding": "causal", "dilation": 2,
                                                "activation": "tanh"})]),
    "conv1d-same-strided-grouped": ((7, 4), [("conv1d", "c", {"filters": 6, "kernel_size": 3, "padding": "same",
                                                              "strides": 2, "groups": 2})]),
    "batch_norm": ((4, 3), [("batch_norm", "b", {"epsilon": 1e-3})]),
    "layer_norm": ((4, 3), [("layer_norm", "l", {"epsilon": 1e-5})]),
    "global_avg_pool": ((4, 3), [("global_avg_pool", "g", {})]),
    "global_max_pool": ((3, 3, 2), [("global_max_pool", "g", {})]),
    "reshape-permute": ((4, 6), [("reshape", "r", {"target_shape": [2, -1, 3]}), ("permute", "p", {"dims": [3, 1, 2]}),
                                 ("flatten", "f", {}), ("dense", "d", {"units": 2})]),
    "residual-add": ((5, 3), [("conv1d", "c", {"filters": 3, "kernel_size": 3, "padding": "same"}),
                              ("add", "a", {}, ("c", "input")), ("layer_norm", "l", {})]),
    "concatenate": ((5, 3), [("conv1d", "c1", {"filters": 2, "kernel_size": 3, "padding": "same"}),
                             ("dense", "c2", {"units": 3}, ("input",)), ("concatenate", "cat", {"axis": -1}, ("c1", "c2"))]),
    # -- activations
    **{f"activation-{a}" + "".join(f"-{v}" for v in p.values()): ((4,), [("rescale", "s", {"scale": [4.0, -5.0, 7.0, 3.0], "offset": [1.0, 0.5, 3.0, -0.5]}),
                                  ("activation", "a", {"activation": a, **p})])
       for a, p in (("relu6", {}), ("hard_sigmoid", {}), ("hard_sigmoid", {"alpha": 0.2, "beta": 0.5}), ("hard_swish", {}),
                    ("silu", {}), ("gelu", {}), ("gelu_tanh", {}), ("leaky_relu", {"negative_slope": 0.3}),
                    ("clip", {"min": -2.0, "max": 3.5}), ("clip", {"min": None, "max": 2.0}))},
    "depthwise_conv2d-nobias-relu6": ((5, 4, 3), [("depthwise_conv2d", "d", {"kernel_size": [3, 3], "padding": "same",
                                                                          "use_bias": False, "activation": "relu6"})]),  # MobileNetV2's
    "conv-hard_swish-dense-gelu": ((4, 3, 2), [("conv2d", "c", {"filters": 3, "kernel_size": [2, 2], "activation": "hard_swish"}),
                                                ("flatten", "f", {}), ("dense", "d", {"units": 3, "activation": "gelu"})]),
    # -- elementwise and constants
    "multiply-broadcast": ((3, 2, 4), [("global_avg_pool", "g", {}), ("reshape", "r", {"target_shape": [1, 1, 4]}),
                                       ("multiply", "m", {}, ("r", "input")), ("multiply", "m3", {}, ("m", "input", "m"))]),
    "rescale-layer_scale-stochastic_depth": ((3, 4), [
        ("rescale", "s", {"scale": [0.5, -2.0, 1.5, 3.0], "offset": 0.25}), ("layer_scale", "ls", {}),
        ("stochastic_depth", "sd", {"rate": 0.2, "mode": "batch"}), ("rescale", "s2", {"scale": -0.5, "offset": [1, 2, 3, 4]})]),
    # -- pooling and shape
    "pool2d-ceil_mode": ((5, 6, 2), [("max_pool2d", "m", {"pool_size": [2, 3], "strides": [2, 2], "padding": [[1, 1], [0, 0]],
                                                           "ceil_mode": True}),
                                     ("avg_pool2d", "a", {"pool_size": [2, 2], "strides": [2, 1], "padding": [[1, 1], [1, 0]],
                                                          "ceil_mode": True, "count_include_pad": True})]),
    "adaptive_avg_pool2d": ((5, 7, 2), [("adaptive_avg_pool2d", "a", {"output_size": [3, 4]})]),
    "crop2d-slice-channel_shuffle": ((4, 5, 6), [("crop2d", "c", {"cropping": [[1, 0], [1, 2]]}),
                                                  ("channel_shuffle", "s", {"groups": 3}),
                                                  ("slice", "k", {"axis": -1, "start": 1, "stop": 5}),
                                                  ("slice", "h", {"axis": 1, "start": 1, "stop": 3})]),
    # -- normalization, convolution and the rest
    "separable_conv2d": ((6, 5, 2), [("separable_conv2d", "s", {"filters": 3, "kernel_size": [3, 2], "depth_multiplier": 2,
                                                                "strides": [2, 1], "padding": "same", "activation": "tanh"})]),
    "separable_conv2d-dilated-nobias": ((5, 5, 3), [("separable_conv2d", "s", {"filters": 2, "kernel_size": [2, 2],
                                                                               "dilation": [2, 1], "use_bias": False})]),
    "lrn-even-before": ((2, 3, 5), [("lrn", "n", {"size": 4, "alpha": 0.9, "beta": 0.6, "bias": 1.5, "extra": "before"})]),
    "lrn-even-after-odd": ((4, 6), [("lrn", "n", {"size": 2, "alpha": 1.2, "beta": 0.8, "bias": 0.7}),
                                    ("lrn", "n3", {"size": 3, "alpha": 0.5, "beta": 1.3, "bias": 2.0})]),
    # -- attention (issue 25)
    "mha-self-causal": ((4, 5), [("multi_head_attention", "a", {"num_heads": 2, "key_dim": 3, "causal": True},
                                  ("input", "input"))]),
    "mha-cross-key-nobias": ((4, 5), [("dense", "mem", {"units": 3}), ("dense", "kk", {"units": 2, "activation": "tanh"}, ("input",)),
                                      ("multi_head_attention", "a", {"num_heads": 3, "key_dim": 2, "value_dim": 4,
                                                                     "output_dim": 6, "use_bias": False},
                                       ("input", "mem", "kk"))]),
    "mha-masked": ((5, 3), [("masking", "m", {"mask_value": 5.0}),
                            ("multi_head_attention", "a", {"num_heads": 2, "key_dim": 2}, ("m", "m")),
                            ("lstm", "l", {"units": 2})]),
    "class_token-position_embedding-take_step": ((4, 3), [("class_token", "ct", {}), ("position_embedding", "pe", {}),
                                                          ("dense", "d", {"units": 2, "activation": "tanh"}),
                                                          ("take_step", "t", {"index": 0})]),
    "position_embedding-class_token": ((3, 2), [("position_embedding", "pe", {}), ("class_token", "ct", {}),
                                                ("layer_norm", "l", {})]),
    # -- recurrent initial states (issue 25)
}  # fmt: skip
FD_ELSEWHERE = {"embedding": "its input is integer ids: verify/test_sequence_layers.py differences its table"}


def test_every_layer_kind_has_a_tiny_finite_difference_model():
    assert {sp[0] for _, specs in TINY.values() for sp in specs} == set(KINDS) - set(FD_ELSEWHERE)


@pytest.mark.parametrize("case", list(TINY))
def test_reference_model_vjp_matches_central_differences(case):
    shape, specs = TINY[case]
    m = make(case, shape, specs, seed=40)
    x = np.random.default_rng(41).uniform(-1.0, 1.0, (B, *shape))
    dy = np.random.default_rng(42).uniform(-1.0, 1.0, m.shapes(B)[-1])
    keys = list(m.parameters())
    inputs = {"x": x.copy(), **{f"{k[0]}.{k[1]}": np.array(a, dtype=np.float64) for k, a in m.parameters().items()}}

    def loss(a: dict[str, np.ndarray]) -> float:
        mm = m.with_parameters({k: a[f"{k[0]}.{k[1]}"] for k in keys})
        return float(np.sum(dy * compose.reference_forward(mm, a["x"])))

    dx, grads = compose.reference_vjp(m, x, dy)
    for name, g in {"x": dx, **{f"{k[0]}.{k[1]}": grads[k] for k in keys}}.items():
        s = error_stats(g, central_differences(loss, inputs, name))
        assert s.rel <= FD_BAR, f"{case} d/d{name}: relative error {s.rel:.2e} > {FD_BAR:.0e} at {s.worst_index}"
