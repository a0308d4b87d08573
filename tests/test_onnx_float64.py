"""ONNX's float64 run for the zoo (reports/onnx_float64.py): the graph made float64 and run by onnx's reference
evaluator agrees with a float64 NumPy computation written here to 1e-13, where ONNX Runtime's float32 run is a
float32 distance away. The graph holds each thing the run had to get right: a Conv with I != H and a bias, an opset-9
BatchNormalization (inference by its one output, epsilon 1e-3 read as the decimal), an LRN of even size (floor and
ceil of (size - 1) / 2 differ; ONNX Runtime's takes odd sizes, compared at 3), a Cast to float32 and a Constant float mid-graph (both must become float64), and an
opset-9 Softmax over an (N, C, H, W) map (the 2-D coercion: one softmax over C*H*W, not over C). Planted: an op that
computes float32 inside the float64 run is an error, not a result; opset 13's Softmax is over its axis alone.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from impls import BackendUnavailable, frameworks

try:
    onnx, ort = frameworks.load("onnx"), frameworks.load("onnxruntime")
except BackendUnavailable as e:
    pytest.skip(str(e), allow_module_level=True)

from reports import onnx_float64, zoo  # after the skip: it imports onnx

helper, numpy_helper, TP = onnx.helper, onnx.numpy_helper, onnx.TensorProto
G = np.random.default_rng(41)
N, C, H, W, O = 3, 4, 7, 6, 5
ALPHA, BETA, BIAS, EPS, K = 0.3, 0.75, 1.5, 1e-3, 0.37


def _f32(*shape, low=-1.0, high=1.0):
    return G.uniform(low, high, shape).astype(np.float32)


WEIGHTS = {"w": _f32(O, C, 3, 3), "b": _f32(O), "scale": _f32(O, low=0.5, high=1.5), "shift": _f32(O),
           "mean": _f32(O, low=-0.3, high=0.3), "var": _f32(O, low=0.5, high=1.5)}  # fmt: skip
X = _f32(N, C, H, W)


def _model(cast_to=TP.FLOAT, size=4) -> onnx.ModelProto:
    """size: the LRN's (ONNX Runtime takes odd sizes only; the float64 run, as the specification, any)."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["n"], epsilon=EPS, name="bn"),
        helper.make_node("Relu", ["n"], ["r"]),
        helper.make_node("LRN", ["r"], ["l"], size=size, alpha=ALPHA, beta=BETA, bias=BIAS, name="lrn"),
        helper.make_node("Cast", ["l"], ["l32"], to=cast_to, name="cast"),
        helper.make_node("Cast", ["l32"], ["l2"], to=TP.FLOAT),
        helper.make_node("Constant", [], ["k"], value_float=K),
        helper.make_node("Mul", ["l2", "k"], ["m"]),
        helper.make_node("MaxPool", ["m"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Softmax", ["p"], ["y"]),
    ]  # fmt: skip
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TP.FLOAT, [N, C, H, W])],
                              [helper.make_tensor_value_info("y", TP.FLOAT, [N, O, 3, 3])],
                              [numpy_helper.from_array(v, k) for k, v in WEIGHTS.items()])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=8)


def _reference(x: np.ndarray, size=4) -> np.ndarray:
    """The same function in float64 NumPy, each op written from the ONNX specification."""
    w = {k: v.astype(np.float64) for k, v in WEIGHTS.items()}
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))
    c = np.einsum("nchwij,ocij->nohw", win, w["w"]) + w["b"][None, :, None, None]
    v = lambda a: a[None, :, None, None]
    r = np.maximum(v(w["scale"]) * (c - v(w["mean"])) / np.sqrt(v(w["var"]) + EPS) + v(w["shift"]), 0)
    square_sum = np.zeros_like(r)
    lo, hi = {3: (1, 1), 4: (1, 2)}[size]  # floor((size-1)/2), ceil((size-1)/2), written out
    for ch in range(O):  # channels ch - lo .. ch + hi
        square_sum[:, ch] = (r[:, max(0, ch - lo) : min(O, ch + hi + 1)] ** 2).sum(axis=1)
    m = r / (BIAS + ALPHA / size * square_sum) ** BETA * np.float64(np.float32(K))
    p = m[:, :, :6, :6].reshape(N, O, 3, 2, 3, 2).max(axis=(3, 5))
    flat = np.exp(p.reshape(N, -1) - p.reshape(N, -1).max(axis=1, keepdims=True))
    return (flat / flat.sum(axis=1, keepdims=True)).reshape(p.shape)


def _rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


def test_the_float64_run_is_the_specifications_function_in_float64():
    m = _model()
    ref = _reference(X)
    y64 = onnx_float64.run_float64(m, X)
    assert y64.dtype == np.float64 and y64.shape == ref.shape
    assert _rel(y64, ref) < 1e-13, _rel(y64, ref)
    odd = _model(size=3)  # ONNX Runtime's LRN takes odd sizes only
    assert _rel(onnx_float64.run_float64(odd, X), _reference(X, 3)) < 1e-13
    s = ort.InferenceSession(odd.SerializeToString(), providers=["CPUExecutionProvider"])
    assert 1e-10 < _rel(s.run(None, {"x": X})[0], _reference(X, 3)) < 1e-5  # float32, a float32 distance away
    assert all(t.data_type == TP.FLOAT for t in m.graph.initializer)  # the model given is not changed


def test_every_float32_tensor_type_and_cast_becomes_float64():
    m64 = onnx_float64.to_float64(_model())
    assert all(t.data_type == TP.DOUBLE for t in m64.graph.initializer)
    assert {vi.type.tensor_type.elem_type for vi in (*m64.graph.input, *m64.graph.output)} == {TP.DOUBLE}
    casts = [a.i for n in m64.graph.node if n.op_type == "Cast" for a in n.attribute if a.name == "to"]
    assert casts == [TP.DOUBLE, TP.DOUBLE]
    const = next(n for n in m64.graph.node if n.op_type == "Constant").attribute[0]
    assert const.name == "value" and const.t.data_type == TP.DOUBLE
    assert numpy_helper.to_array(const.t) == np.float64(np.float32(K))  # the float32 value, as a tensor holds it


def test_an_op_computing_float32_inside_the_float64_run_is_an_error(monkeypatch):
    class NarrowLRN(onnx_float64.LRN):  # planted: the right sums, handed back in float32
        def _run(self, x, **kw):
            return (super()._run(x, **kw)[0].astype(np.float32),)

    NarrowLRN.__name__ = "LRN"
    monkeypatch.setattr(onnx_float64, "_corrected", lambda opset: [onnx_float64.BatchNormalization, NarrowLRN])
    with pytest.raises(ValueError, match="float64 run computed float32 at 'l'"):
        onnx_float64.run_float64(_model(), X)


def _one_op(op: str, opset: int, shape, **attrs) -> onnx.ModelProto:
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                              [helper.make_tensor_value_info("x", TP.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TP.FLOAT, shape)])  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)


@pytest.mark.parametrize(("op", "opset", "axis", "over"), [
    ("Softmax", 13, 1, (1,)),  # opset 13: its axis alone
    ("Softmax", 12, 1, (1, 2, 3)),  # before: the input seen as 2-D at axis, normalised over the second
    ("LogSoftmax", 11, 2, (2, 3)),
    ("LogSoftmax", 13, 2, (2,)),
])  # fmt: skip
def test_softmax_is_its_opsets_definition(op, opset, axis, over):
    x = G.standard_normal((3, 5, 2, 4)).astype(np.float32)
    x64 = x.astype(np.float64)
    shifted = x64 - x64.max(axis=over, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=over, keepdims=True))
    want = logp if op == "LogSoftmax" else np.exp(logp)
    got = onnx_float64.run_float64(_one_op(op, opset, x.shape, axis=axis), x)
    assert _rel(got, want) < 1e-14
    s = ort.InferenceSession(_one_op(op, opset, x.shape, axis=axis).SerializeToString(),
                             providers=["CPUExecutionProvider"])  # fmt: skip
    assert _rel(s.run(None, {"x": x})[0], want) < 1e-6  # ONNX Runtime reads the opset the same way


def test_what_cannot_be_made_float64_is_refused_by_name():
    m = _model(cast_to=TP.FLOAT16)
    with pytest.raises(ValueError, match="node 'cast' .*to=float16"):
        onnx_float64.to_float64(m)
    halves = [numpy_helper.from_array(np.full(4, 0.5, np.float32), k) for k in "sbmv"]
    for outputs, mode in ((["y"], 1), (["y", "rm", "rv"], 0)):  # training by its attribute, or by its outputs
        bn = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], outputs, training_mode=mode,
                              name="bn_train")  # fmt: skip
        graph = helper.make_graph([bn], "g", [helper.make_tensor_value_info("x", TP.FLOAT, [3, 4, 2])],
                                  [helper.make_tensor_value_info("y", TP.FLOAT, [3, 4, 2])], halves)  # fmt: skip
        train = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)], ir_version=8)
        with pytest.raises(ValueError, match="'bn_train' in training mode"):
            onnx_float64.run_float64(train, _f32(3, 4, 2))


def test_the_zoo_loader_runs_an_onnx_port_in_float64_with_onnxruntime_alone_for_the_port(tmp_path):
    """In the port's interpreter (nnparity not importable): y from ONNX Runtime, y64 from the float64 run, equal to
    the NumPy computation; `loaded` is what the port needed (onnxruntime), not what the float64 run imports after.
    A port holding a float16 cast still gives y, and says why it has no y64."""
    np.save(tmp_path / "x.npy", X)
    ref = _reference(X, 3)
    for name, cast_to in (("exact", TP.FLOAT), ("half", TP.FLOAT16)):
        onnx.save(_model(cast_to, size=3), str(tmp_path / f"{name}.onnx"))
        r = zoo.run(zoo.loader_command("onnx", f"{name}.onnx", f"y_{name}.npy", f"y64_{name}.npy"), tmp_path, 300, 0,
                    isolated=True)  # fmt: skip
        assert r["rc"] == 0, r["stderr"][-2000:]
        said = json.loads(r["stdout"].strip().splitlines()[-1])
        assert said["loaded"] == ["onnxruntime"], said
        assert 0 < _rel(np.load(tmp_path / f"y_{name}.npy"), ref) < (1e-5 if name == "exact" else 1e-2)
        if name == "exact":
            assert said["float64"] == "saved" and _rel(np.load(tmp_path / "y64_exact.npy"), ref) < 1e-13
        else:
            assert "float16" in said["float64"] and not (tmp_path / "y64_half.npy").exists()


@pytest.mark.parametrize(("hw", "kernel", "stride", "pad", "ceil", "dilation"), [
    (8, 3, 1, 1, 1, 1),  # googlenet's: onnx 1.23's evaluator gives 10x10, ONNX Runtime and the specification 8x8
    (16, 3, 2, 0, 1, 1), (9, 3, 2, 1, 1, 1), (7, 2, 2, 1, 1, 1), (9, 2, 3, 1, 1, 1), (16, 3, 2, 1, 0, 2),
    (9, 3, 2, 1, 1, 2),
])  # fmt: skip
def test_max_pool_sizes_and_fills_its_output_as_onnx_runtime_does(hw, kernel, stride, pad, ceil, dilation):
    x = G.standard_normal((3, 2, hw, hw + 1)).astype(np.float32)  # negative values: a zero pad would show
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[kernel] * 2, strides=[stride] * 2,
                            pads=[pad, 0, pad, 1], ceil_mode=ceil, dilations=[dilation] * 2)  # fmt: skip
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TP.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TP.FLOAT, None)])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=8)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = onnx_float64.run_float64(m, x)
    assert got.shape == want.shape and np.array_equal(got, want)  # a max of float32 values: exact
