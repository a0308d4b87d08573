"""Issue 24's normalization family in every voice: lrn (both even windows, odd sizes, NCHW and (B, L, C) maps, from
channels-first and channels-last sources), batch_norm and layer_norm in every center / scale combination, ConvNeXt's
block (layer_norm over a map's channels, dense on the last axis of a rank-4 map), Xception's separable_conv2d; and ONNX's own LRN node tests
through the ONNX importer.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype (float32, float64) x model
    (CASES): voices.build(...).forward and every gradient (.vjp, where the voice has them) against
    compose.reference_forward / reference_vjp at the table's bar, the reference fed the weights and inputs the voice
    holds (rounded to its dtype). A voice that declares a model refused is a skip naming the reason.

The reference's own backward of lrn is checked against central differences in verify/test_model_voices.py's TINY;
the frameworks' conventions (alpha / size, the even window's side) are tests/test_norm_lrn.py's.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from impls import SHORT, frameworks, unavailable_reason
from impls.model import voices
from verify.headroom import check
from verify.layer_cases import LayerCases

B = 3
LRN = {"alpha": 0.9, "beta": 0.6, "bias": 1.5}  # large alpha: the divisor far from 1, so every convention shows

CASES: dict[str, tuple[tuple[int, ...], list, str]] = {
    # AlexNet's conv -> relu -> LRN(5) -> pool, then torch's even window and ONNX's, from a channels-first source
    "alexnet-lrn-nchw": ((7, 6, 3), [
        ("conv2d", "c1", {"filters": 6, "kernel_size": [3, 3], "activation": "relu"}),
        ("lrn", "n5", {"size": 5, **LRN}),
        ("max_pool2d", "p", {"pool_size": [2, 2], "strides": [1, 1]}),
        ("lrn", "n4_torch", {"size": 4, **LRN, "extra": "before"}),
        ("lrn", "n2_onnx", {"size": 2, "alpha": 0.3, "beta": 1.2, "bias": 0.8}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ], "channels_first"),
    # (B, L, C) maps, a window wider than the channels, batch_norm and layer_norm in every combination
    "norms-1d": ((6, 4), [
        ("conv1d", "c", {"filters": 5, "kernel_size": 2, "activation": "tanh"}),
        ("lrn", "n7", {"size": 7, **LRN, "extra": "after"}),
        ("batch_norm", "bn_center", {"scale": False, "momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}),
        ("batch_norm", "bn_scale", {"center": False}),
        ("batch_norm", "bn_none", {"center": False, "scale": False}),
        ("lrn", "n4", {"size": 4, **LRN, "extra": "before"}),
        ("layer_norm", "ln_center", {"scale": False}),
        ("layer_norm", "ln_none", {"scale": False, "center": False}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_last"),
    # ConvNeXt's block on a channels-last map: a 3x3 depthwise conv, layer_norm over the channels, dense on the last
    # axis of the rank-4 map (expand, gelu, project), layer scale, stochastic depth, the residual
    "cnblock": ((5, 4, 6), [
        ("conv2d", "dw", {"filters": 6, "kernel_size": [3, 3], "padding": "same", "groups": 6}),
        ("layer_norm", "ln", {"epsilon": 1e-6}),
        ("dense", "pw1", {"units": 12, "activation": "tanh"}),
        ("dense", "pw2", {"units": 6}),
        ("layer_scale", "ls", {}),
        ("stochastic_depth", "sd", {"rate": 0.1}),
        ("add", "res", {}, ("sd", "input")),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3}),
    ], "channels_first"),
    # Xception's separable convolutions: depth_multiplier, strides with 'same', explicit pads, dilation, no bias
    "separable": ((9, 8, 3), [
        ("separable_conv2d", "s1", {"filters": 6, "kernel_size": [3, 3], "depth_multiplier": 2, "strides": [2, 2],
                                    "padding": "same", "activation": "relu"}),
        ("separable_conv2d", "s2", {"filters": 5, "kernel_size": [2, 3], "padding": [[1, 0], [2, 1]], "use_bias": False}),
        ("batch_norm", "bn", {"scale": False}),
        ("separable_conv2d", "s3", {"filters": 4, "kernel_size": [2, 2], "dilation": [2, 1], "activation": "tanh"}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3}),
    ], "channels_last"),
    # no convolution, so that ONNX Runtime runs it in float64 too (the LRN node and the formula in plain ops)
    "lrn-only": ((4, 5, 6), [
        ("layer_scale", "ls", {}),
        ("lrn", "n4", {"size": 4, **LRN, "extra": "before"}),
        ("lrn", "n3", {"size": 3, **LRN}),
        ("lrn", "n6", {"size": 6, "alpha": 2.0, "beta": 0.75, "bias": 1.0}),
        ("global_max_pool", "gmp", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_first"),
}  # fmt: skip

LAYERS = LayerCases(CASES, seed=33, batch=B)


def test_the_cases_hold_every_kind_and_window_of_the_family():
    layers = [la for name in CASES for la in LAYERS.model(name).layers]
    lrns = {(la.options["size"] % 2, la.options.get("extra", "after")) for la in layers if la.kind == "lrn"}
    assert lrns == {(1, "after"), (0, "after"), (0, "before")}
    combos = {(la.kind, la.options.get("center", True), la.options.get("scale", True)) for la in layers
              if la.kind.endswith("_norm")}  # fmt: skip
    assert {("batch_norm", c, s) for c in (True, False) for s in (True, False)} - {("batch_norm", True, True)} <= combos


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)


# --------------------------------------------------------------------------- ONNX's own node tests


def _node_cases() -> list:
    """ONNX's LRN node cases (test_lrn, test_lrn_default), written in memory by the onnx package's own case code."""
    frameworks.load("onnx")
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    importlib.import_module("onnx.backend.test.case.node.lrn")
    cases = [c for c in node_cases._NodeTestCases if c.model and c.model.graph.node[0].op_type == "LRN"]
    return [pytest.param(c, id=c.name) for c in cases if c.data_sets]


def test_onnx_ships_its_lrn_node_cases():
    assert {c.id for c in _node_cases()} >= {"test_lrn", "test_lrn_default"}


@pytest.mark.parametrize("case", _node_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_lrn_node_cases_are_reproduced_by_every_voice(case, voice, tmp_path):
    onnx = frameworks.load("onnx")
    from impls.importers import onnx_import

    path = tmp_path / f"{case.name}.onnx"
    case.model.ir_version = min(case.model.ir_version, 8)
    onnx.save(case.model, str(path))
    (x,), (want,) = case.data_sets[0]
    imported = onnx_import.load_file(path, None)
    assert [la.kind for la in imported.model.layers] == ["lrn"]
    why = unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32")
    if why:
        pytest.skip(f"{voice}: {why}")
    got = voices.build(voice, imported.model, "float32").forward(np.transpose(x, (0, 2, 3, 1)))
    check(got, np.transpose(want, (0, 2, 3, 1)).astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")
