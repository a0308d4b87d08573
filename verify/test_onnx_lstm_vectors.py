"""ONNX's own LSTM and GRU node test cases, reproduced by every voice.

The `onnx` package ships its operator test cases: onnx/backend/test/data/node/test_lstm_* and test_gru_* (a
model.onnx and test_data_set_0/*.pb each) where the install has them, and always the code that writes them,
onnx/backend/test/case/node/lstm.py and gru.py (their expected outputs from ONNX's NumPy reference of the operator).
This module reads the data folders when present and otherwise runs that shipped case code in memory (nothing is
downloaded). For every case whose node lies inside the contract (zero initial state, no peepholes, sequence_lens,
clip or other activations, direction forward or bidirectional, either layout) a description is built from the
case's own inputs (W, R, B through convert.lstm_from_onnx / gru_from_onnx) and every voice of
impls.model.voices.VOICES must reproduce each expressible output (Y, Y_h; the cell state Y_c is not a layer's
output) at the float32 bar: the cases are float32. A voice that refuses the model (a GRU variant its framework has
not, a port that does not express a kind yet) is a skip naming its reason; so is a case outside the contract.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from impls import convert, frameworks, unavailable_reason
from impls.model import voices
from impls.model.compose import reference_forward
from impls.model.description import Layer, Model
from verify.headroom import check

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}
_INPUTS = {"LSTM": ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"),
           "GRU": ("X", "W", "R", "B", "sequence_lens", "initial_h")}  # fmt: skip


def _from_folders() -> list[tuple[str, object, dict, dict]]:
    """(name, model, inputs, expected outputs) of the shipped data folders, where this install has them."""
    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    out = []
    for case in sorted([*root.glob("test_lstm_*"), *root.glob("test_gru_*")]) if root.is_dir() else []:
        model = onnx.load(str(case / "model.onnx"))
        data = case / "test_data_set_0"
        if not data.is_dir():
            continue

        def read(kind: str, data: Path = data) -> list[np.ndarray]:
            arrays = []
            for f in sorted(data.glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
                t = onnx.TensorProto()
                t.ParseFromString(f.read_bytes())
                arrays.append(numpy_helper.to_array(t))
            return arrays

        ins = dict(zip([i.name for i in model.graph.input], read("input"), strict=True))
        outs = dict(zip([o.name for o in model.graph.output], read("output"), strict=True))
        out.append((case.name, model, ins, outs))
    return out


def _from_case_code() -> list[tuple[str, object, dict, dict]]:
    """The same cases written in memory by the onnx package's own case code (lstm.py, gru.py)."""
    node_cases = importlib.import_module("onnx.backend.test.case.node")
    before = len(node_cases._NodeTestCases)
    for m in ("lstm", "gru"):  # importing a case module runs its exports into _NodeTestCases
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    cases = node_cases._NodeTestCases[before:] or node_cases._NodeTestCases
    out = []
    for c in cases:
        if not c.model or not c.data_sets or c.model.graph.node[0].op_type not in _INPUTS:
            continue
        ins, outs = c.data_sets[0]
        out.append((c.name, c.model, dict(zip([i.name for i in c.model.graph.input], ins, strict=True)),
                    dict(zip([o.name for o in c.model.graph.output], outs, strict=True))))  # fmt: skip
    return out


def _cases() -> list[tuple[str, object, dict, dict]]:
    found = _from_folders()
    return found if found else _from_case_code()


CASES = {name: (model, ins, outs) for name, model, ins, outs in _cases()}


def _outside(node, feeds: dict) -> str | None:
    """Why the node is outside the contract (every reason, joined), or None."""
    op = node.op_type
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    D = 2 if direction == "bidirectional" else 1
    acts = [x.decode() if isinstance(x, bytes) else x for x in a.get("activations", [])]
    names = dict(zip(_INPUTS[op], [*node.input, *[""] * 8]))
    why = []
    if direction not in ("forward", "bidirectional"):
        why.append(f"direction={direction!r}: the contract's layers run forward or bidirectional")
    if "clip" in a:
        why.append("clip: the contract's cells do not clip")
    if acts not in ([], _ACTS[op] * D):
        why.append(f"activations {acts}: sigmoid gates and tanh only")
    if a.get("input_forget", 0):
        why.append("input_forget=1 (coupled gates)")
    if names["sequence_lens"]:
        why.append("sequence_lens: the description's padded sequences come from a mask layer, not an ONNX input")
    for k in ("initial_h", "initial_c"):
        s = feeds[names[k]] if names.get(k) else None
        if s is not None and np.any(s != np.swapaxes(s, 0, 1)[:1].swapaxes(0, 1) if a.get("layout", 0) else s != s[:, :1]):
            why.append(f"{k} differing between batch rows: the description's given state is one per direction")
    if names.get("P") and np.any(feeds[names["P"]] != 0):
        why.append("peepholes P")
    return "; ".join(why) or None


def _description(name: str, node, feeds: dict, output: str) -> tuple[Model, np.ndarray, callable]:
    """(description, canonical x (B, T, I), expected output -> canonical) for one output (Y or Y_h) of the case."""
    op = node.op_type
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    layout = int(a.get("layout", 0))
    names = dict(zip(_INPUTS[op], [*node.input, *[""] * 8]))
    X, W, R = (feeds[names[k]] for k in ("X", "W", "R"))
    D, H = W.shape[0], R.shape[-1]
    G = 4 if op == "LSTM" else 3
    Bias = feeds[names["B"]] if names["B"] else np.zeros((D, 2 * G * H), W.dtype)
    if op == "LSTM":
        cells = convert.lstm_from_onnx(W, R, Bias)
    else:
        cells = [convert.gru_from_onnx(W[d : d + 1], R[d : d + 1], Bias[d : d + 1]) for d in range(D)]
    weights = {k + s: np.asarray(getattr(c, k), np.float64) for s, c in zip(("", "_rev"), cells)
               for k in ("W", "U", "b_x", "b_h")}  # fmt: skip
    seq = output == "Y"
    opts = {"units": H, "return_sequences": seq, "direction": direction}
    given = {n: feeds[names[k]] for k, n in (("initial_h", "h0"), ("initial_c", "c0")) if names.get(k)}
    if any(np.any(v != 0) for v in given.values()):  # one state per direction, the same in every row (_outside)
        opts["initial_state"] = "weights"
        for n in ("h0", "c0") if op == "LSTM" else ("h0",):
            v = given.get(n, np.zeros((D, 1, H)))
            v = np.swapaxes(v, 0, 1) if layout else v  # layout 1 holds (B, D, H)
            weights |= {n + s: np.asarray(v[d, 0], np.float64) for d, s in enumerate(("", "_rev")[:D])}
    if op == "GRU":
        opts["variant"] = "reset_after" if a.get("linear_before_reset", 0) else "reset_before"
    x = np.asarray(X if layout else X.transpose(1, 0, 2), np.float64)  # canonical (B, T, I)
    model = Model(name, x.shape[1:], (Layer(op.lower(), "rnn", opts, weights),), source="onnx").check(x.shape[0])

    def expected(y: np.ndarray) -> np.ndarray:
        if seq:  # Y (T, D, B, H) / layout 1 (B, T, D, H) -> (B, T, D * H): forward then backward (merge concat)
            y = y if layout else y.transpose(2, 0, 1, 3)
            return y.reshape(y.shape[0], y.shape[1], -1)
        y = y if layout else y.transpose(1, 0, 2)  # Y_h (D, B, H) / (B, D, H) -> (B, D * H)
        return y.reshape(y.shape[0], -1)

    return model, x, expected


def _params() -> list:
    out = []
    for name, (model, feeds, outs) in CASES.items():
        node = model.graph.node[0]
        why = _outside(node, feeds)
        for output in outs:
            marks = []
            if why is not None:
                marks = [pytest.mark.skip(reason=f"{name}: outside the contract: {why}")]
            elif output == "Y_c":
                marks = [pytest.mark.skip(reason=f"{name}: Y_c is the LSTM's cell state, no layer's output")]
            for voice in voices.VOICES:
                out.append(pytest.param(name, output, voice, id=f"{name}-{output}-{voice}", marks=marks))
    return out


def test_the_cases_were_found():
    """The shipped cases (folders or case code) hold LSTM and GRU cases inside the contract, bidirectional among them."""
    assert any(n.startswith("test_lstm") for n in CASES) and any(n.startswith("test_gru") for n in CASES), sorted(CASES)
    inside = [n for n, (m, f, _) in CASES.items() if _outside(m.graph.node[0], f) is None]
    assert any("bidirectional" in n for n in inside) and any(n.startswith("test_lstm") for n in inside), inside


@pytest.mark.parametrize("name, output, voice", _params())
def test_every_voice_reproduces_onnx_s_own_cases(name, output, voice):
    model_proto, feeds, outs = CASES[name]
    model, x, expected = _description(name, model_proto.graph.node[0], feeds, output)
    want = expected(np.asarray(outs[output], np.float64))
    # the float64 reference of the description against ONNX's expected values first: the description is right
    check(reference_forward(model, x), want, "float32", "numpy", what=f"{name} {output}: the reference")
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
