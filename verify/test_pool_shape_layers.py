"""Issue 24's pooling and shape constructs in every voice: ceil_mode max / average pools (torch's divisor with and
without count_include_pad), max pools with explicit asymmetric pads over negative inputs (the Keras port's pads must
never win), adaptive_avg_pool2d to sizes that do and do not divide the input, crop2d, slice, channel_shuffle.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype (float32, float64) x model
    (CASES): voices.build(...).forward and every gradient (.vjp, where the voice has them) against
    compose.reference_forward / reference_vjp at the table's bar, the reference fed the weights and inputs the voice
    holds (rounded to its dtype). A voice that declares a model refused is a skip naming the reason.

The reference's own backward of each kind is checked against central differences in verify/test_model_voices.py's
TINY; importers, ports loaded alone and planted convention bugs are tests/test_pool_shape.py's.
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

_POOLS = [
    ("conv2d", "c", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),  # signed: pads must never win a max
    ("max_pool2d", "ceil_max", {"pool_size": [3, 3], "strides": [2, 2], "padding": [[1, 1], [1, 1]], "ceil_mode": True}),
    ("avg_pool2d", "ceil_avg_counted", {"pool_size": [3, 3], "strides": [2, 2], "padding": [[1, 1], [1, 1]],
                                        "ceil_mode": True, "count_include_pad": True}),
    ("avg_pool2d", "ceil_avg", {"pool_size": [3, 2], "strides": [2, 1], "padding": [[1, 1], [0, 0]], "ceil_mode": True}),
    ("max_pool2d", "pads_max", {"pool_size": [3, 2], "strides": [1, 1], "padding": [[2, 0], [0, 1]]}),
    ("avg_pool2d", "pads_avg", {"pool_size": [2, 3], "strides": [1, 2], "padding": [[1, 0], [1, 1]]}),
    ("adaptive_avg_pool2d", "adaptive", {"output_size": [3, 2]}),
    ("flatten", "f", {}),
    ("dense", "out", {"units": 3}),
]  # fmt: skip

_SHAPES = [  # shufflenet_v2's unit: chunk in two, one half convolved, cat, channel shuffle; a crop, a slice of H
    ("conv2d", "c", {"filters": 6, "kernel_size": [3, 3], "padding": "same"}),
    ("slice", "x1", {"axis": -1, "start": 0, "stop": 3}, ("c",)),
    ("slice", "x2", {"axis": -1, "start": 3, "stop": 6}, ("c",)),
    ("conv2d", "branch", {"filters": 3, "kernel_size": [1, 1], "activation": "relu"}, ("x2",)),
    ("concatenate", "cat", {"axis": -1}, ("x1", "branch")),
    ("channel_shuffle", "shuffle", {"groups": 2}),
    ("channel_shuffle", "shuffle3", {"groups": 3}),
    ("crop2d", "crop", {"cropping": [[1, 0], [2, 1]]}),
    ("slice", "rows", {"axis": 1, "start": 1, "stop": 4}),
    ("slice", "cols", {"axis": 2, "start": 0, "stop": 2}),
    ("flatten", "f", {}),
    ("dense", "out", {"units": 3}),
]  # fmt: skip

# name: (input shape without the batch, layers, boundary)
CASES: dict[str, tuple[tuple[int, ...], list, str]] = {
    "pools-nchw": ((11, 10, 3), _POOLS, "channels_first"),
    "pools-nhwc": ((11, 10, 3), _POOLS, "channels_last"),
    # adaptive pools that tile (7 -> 7, 8 -> 4: avg_pool2d) and that grow (1 -> 7: each cell repeated), as alexnet's
    # and vgg's AdaptiveAvgPool2d((6, 6)) / ((7, 7)) meet them
    "adaptive-nchw": ((8, 7, 2), [
        ("adaptive_avg_pool2d", "tile", {"output_size": [4, 7]}),
        ("conv2d", "c", {"filters": 3, "kernel_size": [4, 7]}),  # (1, 1, 3)
        ("adaptive_avg_pool2d", "grow", {"output_size": [3, 2]}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_first"),
    # torch's AvgPool2d(2, ceil_mode=True): no pads, count_include_pad True by default, yet the overhang is not counted
    "ceil-valid-counted-nchw": ((7, 5, 2), [
        ("conv2d", "c", {"filters": 3, "kernel_size": [1, 1]}),
        ("avg_pool2d", "avg", {"pool_size": [2, 2], "strides": [2, 2], "ceil_mode": True, "count_include_pad": True}),
        ("max_pool2d", "max", {"pool_size": [3, 2], "strides": [2, 1], "ceil_mode": True}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_first"),
    "shapes-nchw": ((6, 5, 2), _SHAPES, "channels_first"),
    "shapes-nhwc": ((6, 5, 2), _SHAPES, "channels_last"),
    "shapes-sequence": ((5, 6), [  # (B, T, F): a slice of the steps and of the features, a shuffle of the features
        ("slice", "steps", {"axis": 1, "start": 1, "stop": 4}),
        ("channel_shuffle", "shuffle", {"groups": 3}),
        ("slice", "features", {"axis": -1, "start": 2, "stop": 5}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_last"),
    # an axis pooled to 1 (MobileNet's keepdims global pools and squeeze-excitation import as (1, 1)): Keras' own
    # AdaptiveAveragePooling2D raises there in its TensorFlow backend, so the Keras port must not write it
    "adaptive-to-one": ((6, 5, 3), [
        ("conv2d", "c", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("adaptive_avg_pool2d", "rows_to_one", {"output_size": [1, 3]}),
        ("adaptive_avg_pool2d", "to_one", {"output_size": [1, 1]}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 3}),
    ], "channels_last"),
    # no conv: ONNX Runtime computes these in float64 too (its Conv and AveragePool kernels are float32 only)
    "max-adaptive-nchw": ((7, 9, 2), [
        ("max_pool2d", "ceil_max", {"pool_size": [2, 3], "strides": [2, 2], "padding": [[1, 1], [1, 1]], "ceil_mode": True}),
        ("max_pool2d", "pads_max", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[0, 1], [1, 0]]}),
        ("adaptive_avg_pool2d", "grow", {"output_size": [7, 3]}),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ], "channels_first"),
}  # fmt: skip

# the inputs mostly negative: a zero pad would win a max at every border
LAYERS = LayerCases(CASES, seed=37, batch=B, inputs=(-2.0, 0.5))


def test_the_cases_overhang_and_pad_where_they_should():
    from impls.model.layers.pool2d import overhang

    m = LAYERS.model("pools-nchw")
    shapes = m.input_shapes(1)
    by = {la.name: (i, la) for i, la in enumerate(m.layers)}
    for name in ("ceil_max", "ceil_avg_counted", "ceil_avg"):
        i, la = by[name]
        assert max(overhang(la.options, shapes[i])) > 0, name  # a window reaches past the pads
    assert m.shapes(1)[by["ceil_max"][0] + 1] == (1, 6, 6, 4)  # W: ceil((10 + 2 - 3) / 2) + 1 = 6; floor gives 5
    kinds = {la.kind for name in CASES for la in LAYERS.model(name).layers}
    assert {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "crop2d", "slice", "channel_shuffle"} <= kinds


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)


# --------------------------------------------------------------------------- ONNX's own node tests

_SKIP_ATTRS = ("dilations", "storage_order")
ROUNDED = ("test_averagepool_2d_ceil_last_window_starts_on_pad",)
"""Cases whose expected output onnx writes by hand to 4 decimals (0.2841 for 2.5564 / 9 = 0.284044, which torch's
AvgPool2d(3, 3, 1, ceil_mode=True) and ONNX Runtime compute too)."""


def _pool_cases() -> list:
    """ONNX's MaxPool and AveragePool node cases (ceil_mode, pads, count_include_pad, the last window starting on
    a pad), written in memory by the onnx package's own case code: the 2-D float ones of one output."""
    frameworks.load("onnx")
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    before = len(node_cases._NodeTestCases)
    for m in ("maxpool", "averagepool"):
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = node_cases._NodeTestCases[before:] or [c for c in node_cases._NodeTestCases
                                                   if c.model and c.model.graph.node[0].op_type in ("MaxPool", "AveragePool")]  # fmt: skip
    return [pytest.param(c, id=c.name) for c in cases if c.model and c.data_sets]


def _outside(case) -> str | None:
    onnx = frameworks.load("onnx")
    node = case.model.graph.node[0]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    (x,), _ = case.data_sets[0]
    if x.dtype != np.float32 or x.ndim != 4:
        return f"{x.dtype} input of rank {x.ndim}: the description's pools take float NCHW images"
    if len(node.output) > 1 or any(a in attrs and any(v != 1 for v in np.ravel(attrs[a])) for a in _SKIP_ATTRS):
        return f"{sorted(attrs)}, {len(node.output)} outputs: dilations and the Indices output are outside the contract"
    return None


@pytest.mark.parametrize("case", _pool_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_pool_node_cases_are_reproduced_by_every_voice(case, voice, tmp_path):
    """Each case imported as max_pool2d / avg_pool2d (ceil_mode=1 as ceil_mode) and run by every voice at the float32
    bar against ONNX's expected output."""
    why = _outside(case)
    if why:
        pytest.skip(why)
    onnx = frameworks.load("onnx")
    from impls.importers import onnx_import

    m = case.model
    m.ir_version = min(m.ir_version, 8)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(m, str(path))
    (x,), (want,) = case.data_sets[0]
    imported = onnx_import.load_file(path, None)
    assert [la.kind for la in imported.model.layers] == [{"MaxPool": "max_pool2d", "AveragePool": "avg_pool2d"}[m.graph.node[0].op_type]]
    unavailable = unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32")
    if unavailable:
        pytest.skip(f"{voice}: {unavailable}")
    got = voices.build(voice, imported.model, "float32").forward(np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1))))
    if case.name in ROUNDED:  # its expected values are written by hand to 4 decimals: within one unit of the last
        assert np.max(np.abs(np.transpose(got, (0, 3, 1, 2)) - want)) <= 1e-4, case.name
        return
    check(np.transpose(got, (0, 3, 1, 2)), want.astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")


def _slice_split_cases() -> list:
    frameworks.load("onnx")
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    before = len(node_cases._NodeTestCases)
    for m in ("slice", "split"):
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = node_cases._NodeTestCases[before:] or [c for c in node_cases._NodeTestCases
                                                   if c.model and c.model.graph.node[0].op_type in ("Slice", "Split")]  # fmt: skip
    return [pytest.param(c, id=c.name) for c in cases if c.model and c.data_sets]


def _one_output_graph(case, tmp_path):
    """The case's graph with its index inputs (Slice's starts / ends / axes / steps, Split's sizes) as initializers,
    and a Split's outputs joined by a Concat in reverse order (a description has one output): (path, x, expected)."""
    onnx = frameworks.load("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    g = case.model.graph
    ins, outs = case.data_sets[0]
    node = g.node[0]
    inits = [numpy_helper.from_array(np.asarray(a), name) for name, a in zip(node.input[1:], ins[1:], strict=False) if name]
    nodes, outputs, want = [node], [g.output[0]], outs[0]
    if node.op_type == "Split":
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        nodes.append(helper.make_node("Concat", list(node.output)[::-1], ["joined"], axis=axis, name="/join/Concat"))
        want = np.concatenate(outs[::-1], axis=axis)
        outputs = [helper.make_tensor_value_info("joined", g.output[0].type.tensor_type.elem_type, list(want.shape))]
    graph = helper.make_graph(nodes, case.name, [g.input[0]], outputs, inits)
    m = helper.make_model(graph, opset_imports=list(case.model.opset_import))
    m.ir_version = min(case.model.ir_version, 8)
    path = tmp_path / f"{case.name}.onnx"
    onnx.save(m, str(path))
    return path, ins[0], want


@pytest.mark.parametrize("case", _slice_split_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_slice_and_split_node_cases(case, voice, tmp_path):
    """Each case on a batched input imports as slice layers (a Split's joined by a concatenate) run by every voice at
    the float32 bar against ONNX's expected output; one that slices the batch, steps, or empties an axis is refused
    naming the node."""
    from impls.importers import UnsupportedLayer, onnx_import

    path, x, want = _one_output_graph(case, tmp_path)
    if x.ndim < 2 or x.shape[0] == 0:
        pytest.skip(f"an input of shape {x.shape}: a description's input is batched (B, ...)")
    try:
        imported = onnx_import.load_file(path, None)
    except UnsupportedLayer as e:
        assert any(w in str(e) for w in ("past the batch", "steps", "to something")), str(e)
        assert case.name in ("test_slice", "test_slice_start_out_of_bounds", "test_slice_neg_steps"), str(e)
        return
    assert {la.kind for la in imported.model.layers} <= {"slice", "concatenate"}
    unavailable = unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32")
    if unavailable:
        pytest.skip(f"{voice}: {unavailable}")
    got = voices.build(voice, imported.model, "float32").forward(x)
    check(got, want.astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")
