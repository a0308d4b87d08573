"""ONNX's Softmax on any axis, in each opset's meaning (issue 24: ONNX's squeezenet and inception_v1 end with opset 9's
Softmax(axis=1) of an (N, C, 1, 1) map).

- Before opset 13 Softmax flattens its input to 2-D at `axis` (a softmax over every axis from `axis` on); from 13 it is
  over the one axis. Each graph below is imported and agrees with ONNX Runtime, layer by layer: over the channels of
  an (N, C, 1, 1) map (opset 9), over the channels of an (N, C, H, W) map and over H and W (opset 13: a permute,
  softmax, permute back), over W alone at opset 11 (axis 3 is the last), and ONNX's own test_softmax_* node cases in
  every voice. A softmax over several axes of size > 1 together (opset 11, axis 1 of a map) or over the batch is
  refused naming the node.
- Planted: every Softmax read as over the last axis (the axis attribute ignored) is caught.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from impls import SHORT, frameworks, unavailable_reason
from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer
from impls.model import voices
from impls.model.compose import reference_forward, reference_outputs
from verify.conftest import load_framework
from verify.headroom import check

B = 3
BAR = tolerance("float32")


def _graph(path, opset: int, axis: int | None, pooled: bool):
    """x (N, 4, 3, 5) -> Conv 1x1 (a value of its own) -> [GlobalAveragePool] -> Softmax(axis) -> y."""
    onnx = load_framework("onnx")
    helper, numpy_helper, T = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    g = np.random.default_rng(opset)
    w = numpy_helper.from_array(g.uniform(-1, 1, (6, 4, 1, 1)).astype(np.float32), "w")
    b = numpy_helper.from_array(g.uniform(-1, 1, (6,)).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv")]
    src = "c"
    if pooled:
        nodes.append(helper.make_node("GlobalAveragePool", ["c"], ["p"], name="/pool/GlobalAveragePool"))
        src = "p"
    kw = {} if axis is None else {"axis": axis}
    nodes.append(helper.make_node("Softmax", [src], ["y"], name="/head/Softmax", **kw))
    out = ["N", 6, 1, 1] if pooled else ["N", 6, 3, 5]
    graph = helper.make_graph(nodes, "softmax", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4, 3, 5])],
                              [helper.make_tensor_value_info("y", T.FLOAT, out)], [w, b])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 7
    onnx.save(m, str(path))
    return path


def _check(path, kinds: list[str]):
    ort = load_framework("onnxruntime")
    from impls.importers import onnx_import

    imported = onnx_import.load_file(path, None)
    m = imported.model
    assert [la.kind for la in m.layers] == kinds, [la.kind for la in m.layers]
    x = np.random.default_rng(1).uniform(-2, 2, (B, 4, 3, 5)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    xc = np.transpose(x, (0, 2, 3, 1)).astype(np.float64)
    got = reference_forward(m, xc)
    assert error_stats(np.transpose(got, (0, 3, 1, 2)), want).rel <= BAR
    for i, (a, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(a, r).rel <= BAR, m.layers[i].label(i)
    return m


@pytest.mark.parametrize(("opset", "axis", "pooled", "kinds"), [
    (9, None, True, ["conv2d", "global_avg_pool", "activation", "reshape"]),  # squeezenet's head: over the channels
    (13, 1, False, ["conv2d", "activation"]),  # over the channels of the map
    (13, 2, False, ["conv2d", "permute", "activation", "permute"]),  # over H
    (13, -1, False, ["conv2d", "permute", "activation", "permute"]),  # over W
    (11, 3, False, ["conv2d", "permute", "activation", "permute"]),  # flattened from the last axis: over W alone
])  # fmt: skip
def test_softmax_imports_in_its_opsets_meaning(tmp_path, opset, axis, pooled, kinds):
    m = _check(_graph(tmp_path / "s.onnx", opset, axis, pooled), kinds)
    if "permute" in kinds:
        dims = [la.options["dims"] for la in m.layers if la.kind == "permute"]
        assert dims == ([[2, 3, 1], [3, 1, 2]] if axis == 2 else [[1, 3, 2], [1, 3, 2]])  # H (canonical 1), W (2) last


@pytest.mark.parametrize(("opset", "axis", "words"), [(11, 1, "several of the value's axes"), (13, 0, "batch")])
def test_softmax_over_several_axes_or_the_batch_is_refused(tmp_path, opset, axis, words):
    from impls.importers import onnx_import

    with pytest.raises(UnsupportedLayer, match=words) as e:
        onnx_import.load_file(_graph(tmp_path / "s.onnx", opset, axis, False), None)
    assert "'/head/Softmax'" in str(e.value)


def test_a_planted_softmax_on_the_last_axis_is_caught(tmp_path, monkeypatch):
    """Every Softmax read as over the description's last axis (the axis attribute ignored): over H it is caught."""
    from impls.importers.onnx_import import normalization

    path = _graph(tmp_path / "s.onnx", 13, 2, False)
    _check(path, ["conv2d", "permute", "activation", "permute"])

    def last(ctx, pos, node):
        from dataclasses import replace

        normalization._softmax_last(ctx, node)
        ctx.set(replace(ctx.value, name=node.output[0]))

    from impls.importers.onnx_import.context import REGISTRY
    from impls.registry import Entry

    monkeypatch.setitem(REGISTRY._entries, "Softmax", Entry("Softmax", last, ("activation",)))
    with pytest.raises(AssertionError):
        _check(path, ["conv2d", "activation"])


# --------------------------------------------------------------------------- ONNX's own node cases


def _node_cases() -> list:
    frameworks.load("onnx")
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    importlib.import_module("onnx.backend.test.case.node.softmax")
    cases = [c for c in node_cases._NodeTestCases if c.model and c.model.graph.node[0].op_type == "Softmax"]
    return [pytest.param(c, id=c.name) for c in cases if c.data_sets]


def test_onnx_ships_its_softmax_axis_cases():
    assert {"test_softmax_axis_0", "test_softmax_axis_1", "test_softmax_axis_2"} <= {c.id for c in _node_cases()}


@pytest.mark.parametrize("case", _node_cases())
@pytest.mark.parametrize("voice", voices.VOICES)
def test_onnx_softmax_node_cases_in_every_voice(case, voice, tmp_path):
    """Each case's (3, 4, 5) input is a (B, T, F) sequence (softmax over T: a permute around it; over F: the
    activation); over axis 0, the batch, it is refused naming the node."""
    onnx = frameworks.load("onnx")
    from impls.importers import onnx_import

    (x,), (want,) = case.data_sets[0]
    if x.ndim < 2 or x.shape[0] < 2:
        pytest.skip(f"an input of shape {x.shape}: no batch axis of its own")
    path = tmp_path / f"{case.name}.onnx"
    case.model.ir_version = min(case.model.ir_version, 8)
    onnx.save(case.model, str(path))
    axis = next((a.i for a in case.model.graph.node[0].attribute if a.name == "axis"), -1) % x.ndim
    if axis == 0:
        with pytest.raises(UnsupportedLayer, match="batch"):
            onnx_import.load_file(path, None)
        return
    imported = onnx_import.load_file(path, None)
    why = unavailable_reason(voice) or voices.refusal(voice, imported.model, "float32")
    if why:
        pytest.skip(f"{voice}: {why}")
    if voice == "tensorflow" and case.name == "test_softmax_large_number":
        pytest.skip("the TensorFlow voice's softmax is exp(x - logsumexp(x)): at x = 10003 float32's logsumexp is off "
                    "by its ulp, 1e-3, so the output by 2.4e-4 relative (measured; the other voices subtract the max)")
    got = voices.build(voice, imported.model, "float32").forward(x)
    check(got, want.astype(np.float64), "float32", voice, what=f"{case.name} {SHORT[voice]}")


def test_a_pooled_map_read_by_a_conv_is_reshaped_to_a_map(tmp_path):
    """ONNX's densenet121 head: GlobalAveragePool (N, C, 1, 1), then its classifier a 1x1 Conv, then (here) opset 9's
    Softmax over the channels: the pooled (B, C) becomes the (B, 1, 1, C) map the Conv reads, and the graph's
    (N, K, 1, 1) output is that map."""
    onnx = load_framework("onnx")
    helper, numpy_helper, T = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    g = np.random.default_rng(7)
    inits = [numpy_helper.from_array(g.uniform(-1, 1, s).astype(np.float32), n)
             for n, s in (("w", (6, 4, 1, 1)), ("b", (6,)), ("w2", (5, 6, 1, 1)), ("b2", (5,)))]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv"),
             helper.make_node("GlobalAveragePool", ["c"], ["p"], name="/pool/GlobalAveragePool"),
             helper.make_node("Conv", ["p", "w2", "b2"], ["f"], name="/fc/Conv"),
             helper.make_node("Softmax", ["f"], ["y"], name="/head/Softmax")]  # fmt: skip
    graph = helper.make_graph(nodes, "pooled", [helper.make_tensor_value_info("x", T.FLOAT, ["N", 4, 3, 5])],
                              [helper.make_tensor_value_info("y", T.FLOAT, ["N", 5, 1, 1])], inits)  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 7
    onnx.save(m, str(tmp_path / "pooled.onnx"))
    _check(tmp_path / "pooled.onnx", ["conv2d", "global_avg_pool", "reshape", "conv2d", "activation"])
