"""Issue 24's element-wise kinds and constants (multiply, rescale, layer_scale, stochastic_depth) in every voice, and
ONNX's own Mul / Add / Sub / Div node tests through the ONNX importer.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype (float32, float64) x model
    (CASES): voices.build(...).forward and every gradient (.vjp, where the voice has them) against
    compose.reference_forward / reference_vjp at the table's bar, the reference fed the weights and inputs the voice
    holds (rounded to its dtype). A voice that declares a model refused is a skip naming the reason.

The reference's own backward of each kind is checked against central differences in verify/test_model_voices.py's
TINY; the per-channel broadcasting conventions of the importers and ports are tests/test_elementwise.py's.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from impls import SHORT, frameworks, unavailable_reason
from impls.model import voices
from impls.model.description import INPUT
from verify.headroom import check
from verify.layer_cases import LayerCases

B = 3

# name: (input shape without the batch, layers, boundary)
CASES: dict[str, tuple[tuple[int, ...], list, str]] = {
    # a squeeze-excitation block with a hard-sigmoid gate of constants, a layer scale, stochastic depth and a residual,
    # per-channel constants, a product of three tensors (one read twice), from a channels-first source (torch, ONNX)
    "se-layer_scale-nchw": ((5, 4, 3), [
        ("rescale", "pre", {"scale": [0.5, -1.0, 2.0], "offset": [0.1, 0.2, -0.3]}),
        ("conv2d", "c", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("conv2d", "squeeze", {"filters": 4, "kernel_size": [5, 4], "activation": "relu"}),  # (1, 1, 4)
        ("rescale", "hs", {"scale": 1 / 6, "offset": 0.5}),
        ("multiply", "se", {}, ("hs", "c")),
        ("layer_scale", "ls", {}),
        ("stochastic_depth", "sd", {"rate": 0.1, "mode": "row"}),
        ("add", "res", {}, ("sd", "c")),
        ("multiply", "cube", {}, ("res", "res", "c")),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3}),
    ], "channels_first"),
    # keras MobileNetV3's hard sigmoid on a linear conv: x + 3 right after Conv2D's bias, a number offset that
    # TensorFlow's constant folding merges into the conv's BiasAdd (the Keras port's float64 constant once refused it)
    "conv-offset-nhwc": ((5, 4, 3), [
        ("conv2d", "c", {"filters": 6, "kernel_size": [3, 3], "padding": "same"}),
        ("rescale", "plus3", {"scale": 1.0, "offset": 3.0}),
        ("activation", "relu6", {"activation": "relu6"}),
        ("rescale", "sixth", {"scale": 1 / 6, "offset": 0.0}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_last"),
    # sequences: a per-feature rescale, a layer scale on (B, T, F), a gate (B, 1, F) broadcast over the steps
    "sequence-gate": ((6, 4), [
        ("rescale", "norm", {"scale": [1.0, 2.0, 0.5, -1.0], "offset": -0.25}),
        ("dense", "d", {"units": 4, "activation": "tanh"}),
        ("layer_scale", "ls", {}),
        ("global_max_pool", "gmp", {}, (INPUT,)),
        ("reshape", "gate", {"target_shape": [1, 4]}),
        ("multiply", "gated", {}, ("ls", "gate")),
        ("stochastic_depth", "sd", {"rate": 0.3, "mode": "batch"}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2, "activation": "softmax"}),
    ], "channels_last"),
}  # fmt: skip

LAYERS = LayerCases(CASES, seed=31, batch=B)


def test_the_cases_hold_every_kind_of_the_family():
    kinds = {la.kind for name in CASES for la in LAYERS.model(name).layers}
    assert {"multiply", "rescale", "layer_scale", "stochastic_depth"} <= kinds
    shapes = LAYERS.model("se-layer_scale-nchw").input_shapes(B)
    se = LAYERS.model("se-layer_scale-nchw").layer_index("se")
    assert shapes[se] == ((B, 1, 1, 4), (B, 5, 4, 4))  # the gate broadcasts over H and W


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)


# --------------------------------------------------------------------------- ONNX's own node tests


def _node_cases() -> list:
    """ONNX's Mul, Add, Sub and Div node cases, written in memory by the onnx package's own case code."""
    onnx = frameworks.load("onnx")  # noqa: F841 - the case code imports it
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    before = len(node_cases._NodeTestCases)
    for m in ("mul", "add", "sub", "div"):
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = node_cases._NodeTestCases[before:] or [c for c in node_cases._NodeTestCases
                                                   if c.model and c.model.graph.node[0].op_type in ("Mul", "Add", "Sub", "Div")]  # fmt: skip
    return [pytest.param(c, id=c.name) for c in cases if c.model and c.data_sets]


def _with_constant(case, tmp_path):
    """The case's graph with its second input made an initializer (its own data): a one-input model of a tensor and
    a constant, or None where the case lies outside the contract (with why)."""
    onnx = frameworks.load("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    (x, y), (want,) = case.data_sets[0]
    if x.dtype != np.float32 or x.ndim < 2:
        return None, f"{x.dtype} inputs of shape {x.shape}: the description takes float inputs, batch first"
    if y.shape != (x.shape[-1],):
        return None, (f"a second input of the first's shape {y.shape}: one value per element is neither one number nor one per "
                      "channel (two graph inputs: a description takes one)")  # fmt: skip
    g = case.model.graph
    node = helper.make_node(g.node[0].op_type, [g.input[0].name, "k"], [g.output[0].name], name=f"/{case.name}/op")
    graph = helper.make_graph([node], case.name, [g.input[0]], [g.output[0]], [numpy_helper.from_array(y, "k")])
    m = helper.make_model(graph, opset_imports=list(case.model.opset_import))
    m.ir_version = min(case.model.ir_version, 8)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(m, str(path))
    return (path, x, want), None


@pytest.mark.parametrize("case", _node_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_node_cases_are_reproduced_by_every_voice(case, voice, tmp_path):
    """x op k with k one value per feature (the *_bcast cases): imported (rescale, or layer_scale for Mul) and run by
    every voice at the float32 bar against ONNX's expected output."""
    made, why = _with_constant(case, tmp_path)
    if made is None:
        pytest.skip(why)
    path, x, want = made
    from impls.importers import onnx_import

    imported = onnx_import.load_file(path, None)
    assert [la.kind for la in imported.model.layers] == ["layer_scale" if "mul" in case.name else "rescale"]
    unavailable = unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32")
    if unavailable:
        pytest.skip(f"{voice}: {unavailable}")
    got = voices.build(voice, imported.model, "float32").forward(x)
    check(got, want.astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")
