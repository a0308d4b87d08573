"""The Flax port (impls/ports/flax_port.py) on the sequence kinds: what `write` writes, loaded by its own load() in a
fresh `python -I` interpreter that has only jax, flax and numpy (no nnparity, no PYTHONPATH), agrees with the NumPy
float64 reference at the float32 bar; the files say what they hold (names, folded biases, nn.Embed's out-of-range
ids, padded sequences); what the port cannot express is refused naming the layer.

Models (B = 4, T = 5, I = 4, H = 3, every layer's weights from its kind's seeded init, non-zero b_h):
- a forward LSTM, return_sequences True then False (a stack of two);
- for each recurrent kind and merge mode, a stack of bidirectional layers (the sequence, then the final states), so
  every (kind, merge, return_sequences) of lstm/gru x concat/sum/ave/mul x True/False is one layer of some model;
- Embedding(mask_zero) -> bidirectional LSTM (sequence, zero) -> Dense on post-padded ids of lengths 5, 2, 0, 3 (a
  full row and a length-0 row), and the same ids -> bidirectional LSTM (final states, ave) -> Dense;
- Masking -> bidirectional GRU (sequence, padded_outputs hold) -> take_step(-1), and Masking -> GRU (zero) ->
  take_step(1): the padded steps as the contract says, held or zero, and a row of length 0.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close
from impls.model import compose, seeded
from impls.model.description import Model

flax_port = pytest.importorskip("impls.ports.flax_port")

ROOT = Path(__file__).resolve().parents[1]
B, T, I, H = 4, 5, 4, 3
IDS = np.array([[3, 1, 4, 1, 5], [2, 7, 0, 0, 0], [0, 0, 0, 0, 0], [6, 2, 9, 0, 0]])  # lengths 5, 2, 0, 3
MASK_VALUE = 0.25
MODES = ("concat", "sum", "ave", "mul")


def _rnn(kind: str, name: str, seq: bool, direction: str = "bidirectional", mode: str = "concat",
         padded: str = "zero") -> tuple:  # fmt: skip
    return (kind, name, {"units": H, "return_sequences": seq, "direction": direction, "merge_mode": mode,
                         "padded_outputs": padded})  # fmt: skip


def _stack(kind: str, mode: str, seed: int) -> Model:
    """bidirectional `kind` in `mode`, the sequence, then the same kind in the next mode, the final states."""
    nxt = MODES[(MODES.index(mode) + 1) % 4]
    return seeded.chain(f"bi_{kind}_{mode}", (T, I), [_rnn(kind, "seq", True, mode=mode),
                                                      _rnn(kind, "last", False, mode=nxt)], seed, batch=B)


def _masking_x(seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1, 1, (B, T, I))
    for b, n in enumerate((5, 2, 0, 3)):
        x[b, n:] = MASK_VALUE
    return x


MODELS: dict[str, Model] = {
    "lstm": seeded.chain("lstm", (T, I), [_rnn("lstm", "l1", True, "forward"), _rnn("lstm", "l2", False, "forward")],
                         1, batch=B),
    **{f"bi_{k}_{m}": _stack(k, m, 2 + n) for n, (k, m) in enumerate((k, m) for k in ("lstm", "gru") for m in MODES)},
    "emb_bilstm_seq": seeded.chain("emb", (T,), [
        ("embedding", "emb", {"input_dim": 10, "output_dim": I, "mask_zero": True}), _rnn("lstm", "bi", True),
        ("dense", "out", {"units": 2, "activation": "tanh"})], 20, batch=B),
    "emb_bilstm_last": seeded.chain("emb2", (T,), [
        ("embedding", "emb", {"input_dim": 10, "output_dim": I, "mask_zero": True}),
        _rnn("lstm", "bi", False, mode="ave"), ("dense", "out", {"units": 2})], 21, batch=B),
    "mask_bigru_take": seeded.chain("mask", (T, I), [
        ("masking", "mask", {"mask_value": MASK_VALUE}), _rnn("gru", "gru", True, padded="hold"),
        ("take_step", "last_step", {"index": -1})], 22, batch=B),
    "mask_gru_take": seeded.chain("mask2", (T, I), [
        ("masking", "mask", {"mask_value": MASK_VALUE}), _rnn("gru", "gru", True, "forward"),
        ("take_step", "step1", {"index": 1})], 23, batch=B),
}  # fmt: skip


def data(name: str) -> np.ndarray:
    if name.startswith("emb"):
        return IDS.copy()
    if name.startswith("mask"):
        return _masking_x(30)
    return np.random.default_rng(31).uniform(-1, 1, (B, T, I))


def _reference_input(x: np.ndarray) -> np.ndarray:
    return x if x.dtype.kind == "i" else x.astype("float32").astype("float64")  # what the port is fed


# --------------------------------------------------------------------------- the written port in a fresh interpreter

LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import jax
    import numpy as np
    assert sys.flags.isolated
    for i, (folder, xin, yout) in enumerate(json.loads(sys.argv[1])):
        spec = importlib.util.spec_from_file_location(f"port{i}", folder + "/model.py")
        code = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = code  # flax's dataclass transform looks the module up
        spec.loader.exec_module(code)
        module, variables = code.load()
        x = np.load(xin, allow_pickle=False)
        assert x.shape[1:] == code.INPUT_SHAPE, (x.shape, code.INPUT_SHAPE)
        y = np.asarray(jax.jit(module.apply)(variables, x))
        assert y.shape[1:] == code.OUTPUT_SHAPE and y.dtype == np.float32, (y.shape, y.dtype)
        np.save(yout, y)
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity", "verify", "torch", "tensorflow"))
    assert not bad, bad
""")


def test_the_written_ports_load_in_python_I_with_only_flax_and_give_the_reference(tmp_path):
    runs = []
    for name, m in MODELS.items():
        folder = tmp_path / name
        flax_port.write(m, folder)
        x = data(name)
        np.save(tmp_path / f"{name}.x.npy", x.astype("float32") if x.dtype.kind == "f" else x)
        runs.append((str(folder), str(tmp_path / f"{name}.x.npy"), str(tmp_path / f"{name}.y.npy")))
    # JAX's persistent compilation cache, as verify/ keeps it (.cache/jax): nothing computed changes, a rerun loads
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JAX_"))} | {
        "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(ROOT / ".cache" / "jax"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    done = subprocess.run([sys.executable, "-I", "-c", LOADER, json.dumps(runs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for name, m in MODELS.items():
        y = np.load(tmp_path / f"{name}.y.npy")
        expected = compose.reference_forward(m, _reference_input(data(name)))
        assert y.shape == expected.shape, name
        assert_close(y, expected, "float32", what=f"flax port {name}, loaded in python -I")
        if name.startswith("emb_bilstm_seq"):  # the contract's zeros at padded steps reach the dense as its bias
            np.testing.assert_allclose(y[2], np.tanh(np.broadcast_to(m.layers[2].weights["bias"], (T, 2))), atol=1e-6)
        if name == "mask_bigru_take":  # the held forward half of a padded last step, the backward half zero
            np.testing.assert_array_equal(y[1:, H:], 0.0)  # rows of lengths 2, 0, 3
            np.testing.assert_array_equal(y[2], 0.0)  # length 0
            assert np.all(np.abs(y[0, H:]) > 0)  # a full row's last step: the backward cell's first step


def test_the_reference_really_has_what_the_port_must_reproduce():
    """Flax's own nn.RNN leaves the cell's run over the padding at padded steps: a port without padded_zero /
    padded_hold would differ, and the rows' lengths cover 0, partial and full."""
    lengths = (IDS != 0).sum(1)
    assert sorted(lengths.tolist()) == [0, 2, 3, 5]
    y = compose.reference_forward(MODELS["mask_gru_take"], data("mask_gru_take"))
    np.testing.assert_array_equal(y[2], 0.0)  # a length-0 row: zero at step 1
    assert np.all(np.abs(y[[0, 1, 3]]) > 0)
    for name in ("lstm", "bi_lstm_sum", "emb_bilstm_seq"):
        m = MODELS[name]
        layer = next(la for la in m.layers if la.kind == "lstm")
        assert np.min(np.abs(layer.weights["b_h"])) > 0  # folding b_x + b_h is exercised


# --------------------------------------------------------------------------- what the files hold and say


def _imports(code: str) -> set[str]:
    tree = ast.parse(code)
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_the_files_name_the_cells_and_fold_the_lstm_biases(tmp_path):
    m = MODELS["emb_bilstm_seq"]
    code_path, npz = flax_port.write(m, tmp_path / "p")
    code = code_path.read_text()
    assert _imports(code) <= {"flax", "jax", "numpy", "pathlib"}
    for line in ("nn.Embed(10, 4", "nn.Bidirectional(forward, backward)", "seq_lengths=lengths", "padded_zero(",
                 'nn.LSTMCell(3, param_dtype=x.dtype, name="bi_backward")'):  # fmt: skip
        assert line in code, line
    doc = ast.get_docstring(ast.parse(code))
    assert "folded" in doc and "NaN" in doc and "post-padded" in doc and "length 0" in doc
    with np.load(npz, allow_pickle=False) as z:
        names = set(z.files)
        gates = [f"{c}/{g}/{w}" for c in ("bi", "bi_backward") for g, w in
                 [*((g, "kernel") for g in ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho")),
                  *((g, "bias") for g in ("hi", "hf", "hg", "ho"))]]  # fmt: skip
        assert names == {"emb/embedding", "out/kernel", "out/bias", *gates}
        w = m.layers[1].weights
        np.testing.assert_array_equal(z["bi_backward/hf/bias"], (w["b_x_rev"] + w["b_h_rev"])[H : 2 * H])  # f gate
        np.testing.assert_array_equal(z["bi/ig/kernel"], w["W"][:, 2 * H : 3 * H])  # g gate
    back = flax_port.canonical(m, flax_port.params(m), gradients=False)
    np.testing.assert_array_equal(back[("bi", "b_h")], 0.0)  # read back: b_x + b_h in b_x, b_h zero
    np.testing.assert_allclose(back[("bi", "b_x")], w["b_x"] + w["b_h"], rtol=0, atol=0)


def test_the_mask_helpers_are_written_only_where_a_mask_reaches_a_recurrent_layer():
    assert "def padded_zero" not in flax_port.source(MODELS["bi_gru_mul"])
    held = flax_port.source(MODELS["mask_bigru_take"])
    assert "def padded_hold" in held and "merge_fn=lambda f, b: (f, b)" in held and "x = x[:, -1]" in held


def test_names_stay_unique_with_backward_cells():
    m = seeded.chain("clash", (T, I), [("dense", "g_backward", {"units": I}), _rnn("gru", "g", False)], 3, batch=B)
    names = flax_port.flax_names(m)
    assert names == ["g_backward", "g_1"]
    tree = flax_port.params(m)
    assert set(tree) == {"g_backward", "g_1", "g_1_backward"}


def test_a_mask_made_after_the_first_layer_is_refused_naming_it(tmp_path):
    m = seeded.chain("late", (T, I), [("dense", "d", {"units": I}), ("masking", "late_mask", {}),
                                      _rnn("lstm", "l", False, "forward")], 4, batch=B)  # fmt: skip
    why = flax_port.refusal(m, "float32")
    assert why is not None and "layer 1 'late_mask' (masking)" in why and "post-padded" in why
    with pytest.raises(Refused, match="late_mask"):
        flax_port.write(m, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_sequence_model_here_is_not_refused():
    for name, m in MODELS.items():
        for dtype in ("float32", "float64"):
            assert flax_port.refusal(m, dtype) is None, (name, dtype)
