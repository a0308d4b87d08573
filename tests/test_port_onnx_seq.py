"""The ONNX port's sequence kinds (impls/ports/onnx_port.py): LSTM, bidirectional LSTM and GRU in every merge mode,
embedding (Gather), masking, take_step, and padded sequences as sequence_lens computed inside the graph.

Every check is against the NumPy float64 reference at the float32 bar: the written .onnx file run by onnxruntime
alone in a fresh `python -I` interpreter (nnparity never imported), and the voice in process. Planted faults (an
LSTM gate order swapped in convert.lstm_to_onnx, sequence_lens one short) are caught by the same comparison.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls import convert
from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close, error_stats
from impls.model import seeded, voices
from impls.model.compose import reference_forward
from impls.model.description import Model, ModelError

onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)

B, T, I, H = 3, 5, 4, 3
VOCAB = 7
IDS = np.array([[3, 1, 6, 2, 0], [5, 2, 0, 0, 0], [0, 0, 0, 0, 0]], np.int64)  # lengths 4, 2 and 0
IDS_SOME = np.array([[3, 1, 6, 2, 0], [5, 2, 4, 0, 0], [1, 6, 0, 0, 0]], np.int64)  # lengths 4, 3, 2: none empty


def make(name: str, input_shape: tuple, specs: list, input_dtype: str = "float32", seed: int = 4) -> Model:
    m = seeded.chain(name, input_shape, specs, seed, batch=B)
    return dataclasses.replace(m, input_dtype=input_dtype)


def bi(kind: str, name: str, merge: str, seq: bool, **extra) -> tuple:
    return (kind, name, {"units": H, "direction": "bidirectional", "merge_mode": merge, "return_sequences": seq, **extra})


def emb(mask_zero: bool = True) -> tuple:
    return ("embedding", "emb", {"input_dim": VOCAB, "output_dim": I, "mask_zero": mask_zero})


def masked_x(seed: int = 2, value: float = 0.25) -> np.ndarray:
    """(B, T, I) with rows of 3, 5 and 0 valid steps: the padded steps all equal `value`."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (B, T, I))
    x[0, 3:] = value
    x[2, :] = value
    return x


def floats(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, T, I))


MERGES = ("concat", "sum", "ave", "mul")
CASES: dict[str, tuple] = {
    "lstm-seq": (lambda: make("lstm", (T, I), [("lstm", "l", {"units": H, "return_sequences": True}),
                                                ("dense", "d", {"units": 2, "activation": "tanh"})]), floats),
    "lstm-last": (lambda: make("lstm_last", (T, I), [("lstm", "l", {"units": H}), ("dense", "d", {"units": 2})]), floats),
    **{f"bilstm-{m}-{'seq' if s else 'state'}": ((lambda m=m, s=s: make(f"bilstm_{m}", (T, I), [bi("lstm", "bl", m, s)])), floats)
       for m in MERGES for s in (True, False)},
    "bigru-take_step": (lambda: make("bigru", (T, I), [bi("gru", "bg", "concat", True), ("take_step", "last", {"index": -1})]), floats),
    "bigru-sum-state": (lambda: make("bigru_sum", (T, I), [bi("gru", "bg", "sum", False, variant="reset_before")]), floats),
    "emb-bilstm-dense": (lambda: make("emb_bilstm", (T,), [emb(), bi("lstm", "bl", "concat", False),
                                                           ("dense", "d", {"units": 2, "activation": "softmax"})], "int64"),
                         lambda seed=0: IDS),
    "emb-bilstm-seq-hold": (lambda: make("emb_hold", (T,), [emb(), bi("lstm", "bl", "concat", True, padded_outputs="hold")], "int64"),
                            lambda seed=0: IDS),
    "emb-lstm-seq-zero-int32": (lambda: make("emb_zero", (T,), [emb(), ("lstm", "l", {"units": H, "return_sequences": True}),
                                                                ("dense", "d", {"units": 2})], "int32"),
                                lambda seed=0: IDS.astype(np.int32)),
    "emb-plain-lstm": (lambda: make("emb_plain", (T,), [emb(False), ("lstm", "l", {"units": H})], "int64"), lambda seed=0: IDS),
    "masking-gru": (lambda: make("mask_gru", (T, I), [("masking", "m", {"mask_value": 0.25}),
                                                      ("gru", "g", {"units": H, "return_sequences": True, "padded_outputs": "hold"}),
                                                      ("gru", "g2", {"units": 2})]), masked_x),
    "masking-bigru-seq": (lambda: make("mask_bigru", (T, I), [("masking", "m", {"mask_value": 0.25}),
                                                              ("dense", "d", {"units": 5, "activation": "tanh"}),
                                                              bi("gru", "bg", "mul", True)]), masked_x),
}  # fmt: skip


_LOADER = """
import sys
import numpy as np
import onnxruntime as ort
for path, x_path, y_path in zip(*[iter(sys.argv[1:])] * 3):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.load(x_path, allow_pickle=False)
    np.save(y_path, s.run(None, {s.get_inputs()[0].name: x})[0], allow_pickle=False)
    print(s.get_inputs()[0].type, "|", s.get_modelmeta().description)
assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
"""


def run_alone(jobs: list[tuple[Path, np.ndarray]], tmp: Path) -> tuple[list[np.ndarray], list[str]]:
    """Each (port file, input) in a fresh `python -I` (no PYTHONPATH, no user site, cwd elsewhere)."""
    argv = []
    for k, (path, x) in enumerate(jobs):
        np.save(tmp / f"x{k}.npy", x, allow_pickle=False)
        argv += [str(path), str(tmp / f"x{k}.npy"), str(tmp / f"y{k}.npy")]
    cwd = tmp / "elsewhere"
    cwd.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-I", "-c", _LOADER, *argv], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return [np.load(tmp / f"y{k}.npy", allow_pickle=False) for k in range(len(jobs))], done.stdout.strip().splitlines()


def test_written_ports_alone_agree_with_the_reference(tmp_path):
    jobs, expected, names = [], [], []
    for case, (factory, data) in CASES.items():
        model = factory()
        x = data()
        out = tmp_path / f"{case}.onnx"
        assert onnx_port.write(model, out) == [out]
        jobs.append((out, x if x.dtype.kind == "i" else x.astype(np.float32)))
        expected.append(reference_forward(model, x))
        names.append((case, model))
    outs, lines = run_alone(jobs, tmp_path)
    for (case, model), got, want, line in zip(names, outs, expected, lines, strict=True):
        assert got.dtype == np.float32
        assert_close(got, want, "float32", what=f"onnx port {case} in onnxruntime alone")
        if model.layers[0].kind == "embedding":
            assert f"tensor({model.input_dtype})" in line.split("|")[0], line  # ids enter as the source's integers
            assert "Gather wraps a negative id" in line, line
        masked = any(s is not None for s in model.mask_sources())
        assert ("post-padded" in line) == masked, line  # what the graph cannot check, said where it matters


@pytest.mark.parametrize("case", ["emb-bilstm-seq-hold", "masking-gru", "bilstm-ave-seq", "bigru-take_step"])
def test_the_voice_in_process(case):
    factory, data = CASES[case]
    model, x = factory(), data()
    built = voices.build("onnxruntime", model, "float32")
    assert built.vjp is None and built.step is None  # no gradients, declared
    assert_close(built.forward(x), reference_forward(model, x), "float32", what=f"onnxruntime voice {case}")


def test_hold_differs_from_zero_and_is_emulated():
    """'hold' and 'zero' give different sequences at padded steps (so the check above can fail), and the port
    emulates hold with a GatherElements node, noted."""
    zero = make("z", (T,), [emb(), ("lstm", "l", {"units": H, "return_sequences": True})], "int64")
    hold = make("h", (T,), [emb(), ("lstm", "l", {"units": H, "return_sequences": True, "padded_outputs": "hold"})], "int64")
    rz, rh = reference_forward(zero, IDS), reference_forward(hold, IDS)
    assert error_stats(rz, rh).max_abs > 1e-2
    built = onnx_port.build(hold, "float32")
    assert any("GatherElements" in n for n in built.notes), built.notes
    assert_close(voices.build("onnxruntime", hold, "float32").forward(IDS), rh, "float32")
    assert_close(voices.build("onnxruntime", zero, "float32").forward(IDS), rz, "float32")
    assert np.all(built.forward(IDS)[2] == 0)  # a row of length 0 gives zeros (ONNX Runtime's and the contract's)


def _bar_exceeded(got: np.ndarray, want: np.ndarray) -> bool:
    try:
        assert_close(got, want, "float32")
    except AssertionError:
        return True
    return False


def test_a_planted_gate_order_swap_is_caught(monkeypatch):
    factory, data = CASES["emb-bilstm-dense"]
    model, x = factory(), data()
    want = reference_forward(model, x)
    assert not _bar_exceeded(onnx_port.build(model, "float32").forward(x), want)
    monkeypatch.setattr(convert, "ONNX_LSTM_FROM_CANON", (0, 1, 3, 2))  # f and o swapped: torch's order mislabelled
    got = onnx_port.build(model, "float32").forward(x)
    assert _bar_exceeded(got, want), error_stats(got, want)


def test_a_planted_off_by_one_in_sequence_lens_is_caught():
    """sequence_lens one short on every row (inserted between the computed lengths and the LSTM): the agreement fails."""
    from impls.runtime import ort_impl

    model = make("emb_bilstm", (T,), [emb(), bi("lstm", "bl", "concat", True)], "int64")
    want = reference_forward(model, IDS_SOME)
    proto = onnx_port.graph(model, "float32")
    (lstm,) = [n for n in proto.graph.node if n.op_type == "LSTM"]
    assert lstm.input[4], "the LSTM takes sequence_lens"
    sess = ort_impl.session(proto)
    assert not _bar_exceeded(sess.run(None, {"input": IDS_SOME})[0], want)
    one = onnx_port.numpy_helper.from_array(np.array(1, np.int32), "planted.one")
    proto.graph.node.append(onnx_port.helper.make_node("Constant", [], ["planted.one"], value=one))
    proto.graph.node.append(onnx_port.helper.make_node("Sub", [lstm.input[4], "planted.one"], ["planted.lens"]))
    lstm.input[4] = "planted.lens"
    nodes = list(proto.graph.node)
    k = nodes.index(lstm)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes[:k] + nodes[-2:] + nodes[k:-2])  # topological order: the Sub before the LSTM
    got = ort_impl.session(proto).run(None, {"input": IDS_SOME})[0]
    assert _bar_exceeded(got, want), error_stats(got, want)


def test_ids_outside_the_table_are_refused_by_the_voice():
    """ONNX's Gather would wrap -1 to the last row; the voice refuses it at the boundary, naming the id."""
    factory, _ = CASES["emb-bilstm-dense"]
    built = voices.build("onnxruntime", factory(), "float32")
    bad = IDS.copy()
    bad[1, 1] = -1
    with pytest.raises(ModelError, match=r"token id -1 .*7 rows"):
        built.forward(bad)
    pre = IDS.copy()
    pre[0] = [0, 3, 1, 6, 2]  # pre-padded: outside the contract, refused by the voice (the file alone cannot check)
    with pytest.raises(ModelError, match="not post-padded"):
        built.forward(pre)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_float64_recurrent_layers_are_refused_with_the_reason(kind):
    model = make("r64", (T, I), [(kind, "the_rnn", {"units": H, "direction": "bidirectional"})])
    why = onnx_port.refusal(model, "float64")
    assert why is not None and "'the_rnn'" in why and "float32 only" in why
    with pytest.raises(Refused, match="the_rnn"):
        voices.build("onnxruntime", model, "float64")


def test_a_masking_layer_alone_zeroes_the_padded_steps():
    model = make("mask_only", (T, I), [("masking", "m", {"mask_value": 0.25})])
    x = masked_x()
    got = onnx_port.build(model, "float32").forward(x)
    assert np.all(got[2] == 0) and np.all(got[0, 3:] == 0)
    assert_close(got, reference_forward(model, x), "float32")
