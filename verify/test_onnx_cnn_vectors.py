"""ONNX's own BatchNormalization, LayerNormalization, GlobalAveragePool, GlobalMaxPool and Conv node test cases,
reproduced by every voice.

The `onnx` package ships the code that writes its operator test cases (onnx/backend/test/case/node/
batch_normalization.py, layernormalization.py, globalaveragepool.py, globalmaxpool.py, conv.py; their expected
outputs from ONNX's NumPy reference of the operator); this install has no data folders (onnx/backend/test/data/node),
so the case code is run in memory, as verify/test_onnx_lstm_vectors.py does (nothing is downloaded). For each case
inside the contract a description is built by hand from the case's own inputs (ONNX's layout is channels first: an
NCHW X is the description's NHWC map, transposed) and every voice of impls.model.voices.VOICES must reproduce the
expected output at the float32 bar (the cases are float32); a voice that refuses the model is a skip naming its
reason. Outside the contract, each skipped naming why: BatchNormalization in training_mode (batch statistics, and
the running-statistics outputs), LayerNormalization over more than the last axis, its Mean / InvStdDev outputs.
LayerNormalization over the last axis reads X as a channels-last tensor (B, ..., F): ONNX's last axis is the
description's. onnx 1.23 ships no 1-D Conv case (every conv.py case is 2-D): the Conv cases run as conv2d, and a
1-D one would run as conv1d (test_which_cases_were_found says what was found).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from impls import convert, frameworks, unavailable_reason
from impls.contract.conv_spec import same_pads
from impls.model import voices
from impls.model.compose import reference_forward
from impls.model.description import Layer, Model
from verify.headroom import check

onnx = frameworks.load("onnx")
helper = onnx.helper

OPS = ("BatchNormalization", "LayerNormalization", "GlobalAveragePool", "GlobalMaxPool", "Conv")
MODULES = ("batch_normalization", "layernormalization", "globalaveragepool", "globalmaxpool", "conv")


def _cases() -> dict:
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    before = len(node_cases._NodeTestCases)
    for m in MODULES:  # importing a case module runs its exports into _NodeTestCases
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = node_cases._NodeTestCases[before:] or node_cases._NodeTestCases
    out = {}
    for c in cases:
        if not c.model or not c.data_sets or len(c.model.graph.node) != 1 or c.model.graph.node[0].op_type not in OPS:
            continue
        ins, outs = c.data_sets[0]
        out[c.name] = (c.model.graph.node[0], dict(zip(c.model.graph.node[0].input, ins, strict=False)),
                       dict(zip([o.name for o in c.model.graph.output], outs, strict=True)))  # fmt: skip
    return out


CASES = _cases()


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _outside(node, feeds: dict, output: str) -> str | None:
    a, op = _attrs(node), node.op_type
    if output != node.output[0]:
        return f"{output} is the {op}'s {'running statistics' if op == 'BatchNormalization' else 'Mean / InvStdDev'}, no layer's output"
    if op == "BatchNormalization" and a.get("training_mode", 0):
        return "training_mode=1: normalises by the batch's statistics (the description's inference batch_norm uses the moving ones)"
    if op == "LayerNormalization":
        rank = feeds[node.input[0]].ndim
        axis = int(a.get("axis", -1)) % rank
        if axis != rank - 1:
            return f"axis={a.get('axis')} normalises axes {list(range(axis, rank))} together: the contract's layer_norm normalises the last axis only"
    return None


def _nchw(x: np.ndarray) -> np.ndarray:
    """ONNX's channels-first map -> the description's channels-last one (2-D (B, C) unchanged)."""
    return x if x.ndim == 2 else np.moveaxis(x, 1, -1)


def _f32(v) -> float:
    return float(str(np.float32(v)))


def _description(name: str, node, feeds: dict) -> tuple[Model, np.ndarray, callable]:
    """(description, canonical x, expected -> canonical) of one case."""
    a, op = _attrs(node), node.op_type
    X = np.asarray(feeds[node.input[0]], np.float64)
    w = [np.asarray(feeds[t], np.float64) if t else None for t in node.input[1:]]
    if op == "LayerNormalization":  # over the last axis: X read as channels last (B, ..., F)
        weights = {"gamma": w[0]}
        if len(w) > 1 and w[1] is not None:
            weights["beta"] = w[1]
        layer = Layer("layer_norm", "ln", {"epsilon": _f32(a.get("epsilon", 1e-5)), "center": "beta" in weights}, weights)
        x, back = X, (lambda y: y)
    elif op == "BatchNormalization":
        layer = Layer("batch_norm", "bn", {"epsilon": _f32(a.get("epsilon", 1e-5)), "momentum": _f32(a.get("momentum", 0.9))},
                      dict(zip(("gamma", "beta", "moving_mean", "moving_var"), w, strict=True)))  # fmt: skip
        x, back = _nchw(X), _nchw
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        layer = Layer("global_avg_pool" if op == "GlobalAveragePool" else "global_max_pool", "pool", {})
        x, back = _nchw(X), (lambda y: y.reshape(y.shape[0], y.shape[1]))
    else:  # Conv, 1-D or 2-D
        W = w[0]
        bias = w[1] if len(w) > 1 else None
        ks = list(W.shape[2:])
        strides = list(a.get("strides", [1] * len(ks)))
        dil = list(a.get("dilations", [1] * len(ks)))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        sizes = X.shape[2:]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            per = [same_pads(n, (k - 1) * d + 1, s) for n, k, d, s in zip(sizes, ks, dil, strides, strict=True)]
            per = per if auto == "SAME_UPPER" else [(hi, lo) for lo, hi in per]
        else:
            p = list(a.get("pads", [0] * 2 * len(ks))) if auto != "VALID" else [0] * 2 * len(ks)
            per = [(p[k], p[k + len(ks)]) for k in range(len(ks))]
        opts = {"filters": int(W.shape[0]), "groups": int(a.get("group", 1)), "use_bias": bias is not None}
        weights = {"bias": bias} if bias is not None else {}
        if len(ks) == 1:
            layer = Layer("conv1d", "conv", {**opts, "kernel_size": ks[0], "strides": strides[0], "dilation": dil[0],
                                             "padding": list(per[0])}, {"kernel": W.transpose(2, 1, 0), **weights})  # fmt: skip
        else:
            layer = Layer("conv2d", "conv", {**opts, "kernel_size": ks, "strides": strides, "dilation": dil,
                                             "padding": [list(q) for q in per]}, {"kernel": convert.oihw_to_hwio(W), **weights})  # fmt: skip
        x, back = _nchw(X), _nchw
    model = Model(name, x.shape[1:], (layer,), source="onnx").check(x.shape[0])
    return model, x, back


def _params() -> list:
    out = []
    for name, (node, feeds, outs) in CASES.items():
        for output in outs:
            why = _outside(node, feeds, output)
            marks = [pytest.mark.skip(reason=f"{name} {output}: outside the contract: {why}")] if why else []
            for voice in voices.VOICES:
                out.append(pytest.param(name, output, voice, id=f"{name}-{output}-{voice}", marks=marks))
    return out


def test_which_cases_were_found():
    """Each op's shipped cases, some inside the contract: inference BatchNormalization, a last-axis LayerNormalization
    in 2, 3 and 4 dimensions, both global pools, 2-D Convs (onnx 1.23 ships no 1-D Conv case)."""
    inside = {n for n, (node, f, outs) in CASES.items() if _outside(node, f, node.output[0]) is None}
    for op in OPS:
        assert any(CASES[n][0].op_type == op for n in inside), (op, sorted(inside))
    ln = {CASES[n][1][CASES[n][0].input[0]].ndim for n in inside if CASES[n][0].op_type == "LayerNormalization"}
    assert ln == {2, 3, 4}, ln
    assert any(_attrs(CASES[n][0]).get("training_mode") for n in CASES), "the training-mode cases are found, and skipped"
    one_d = [n for n, (node, f, _) in CASES.items() if node.op_type == "Conv" and f[node.input[0]].ndim == 3]
    assert one_d == [], f"onnx now ships 1-D Conv cases {one_d}: they run as conv1d; update this note"


@pytest.mark.parametrize("name, output, voice", _params())
def test_every_voice_reproduces_onnx_s_own_cases(name, output, voice):
    node, feeds, outs = CASES[name]
    model, x, back = _description(name, node, feeds)
    want = back(np.asarray(outs[output], np.float64))
    check(reference_forward(model, x), want, "float32", "numpy", what=f"{name}: the reference")
    why = unavailable_reason(voice)
    if why is None and voice in voices.PORTS:
        try:
            voices.port_module(voice)
        except ModuleNotFoundError as e:
            why = f"{voices.PORTS[voice]} does not exist yet ({e})"
    why = why or voices.refusal(voice, model, "float32")
    if why is not None:
        pytest.skip(f"{voice} refuses {name}: {why}")
    got = voices.build(voice, model, "float32").forward(x.astype(np.float32))
    assert got.dtype == np.float32
    check(got, want, "float32", voice, what=f"{name} {output} by {voice}")
