"""The torch port's sequence kinds (impls/ports/torch_port/): lstm and gru in one or two directions with every
merge mode, embedding, masking, take_step, and padded sequences (pack_padded_sequence, held padded outputs, rows of
length 0), checked against the NumPy float64 reference: forward in float32 and float64, vjp, one Adam step (an LSTM
in torch keeps both biases: training-exact), the named errors of the generated forward, and the written port loaded
by torch alone in a fresh isolated interpreter."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.description import Model
from impls.ports import torch_port
from impls.ports.torch_port import code as torch_code

B, T, I, H, V = 3, 5, 4, 3, 9


def chain(name: str, input_shape: tuple, layers: list, ids: bool = False, seed: int = 0) -> Model:
    m = seeded.chain(name, input_shape, layers, seed, batch=B)
    return dataclasses.replace(m, input_dtype="int64") if ids else m


def lstm_stack() -> Model:
    """A sequence LSTM, a bidirectional one (concat) read at its last step (take_step: not its final states), a
    dense head."""
    return chain("lstm_stack", (T, I), [
        ("lstm", "l1", {"units": H, "return_sequences": True}),
        ("lstm", "l2", {"units": H + 1, "return_sequences": True, "direction": "bidirectional"}),
        ("take_step", "last", {"index": -1}),
        ("dense", "out", {"units": 4, "activation": "softmax"}),
    ])  # fmt: skip


def merges() -> Model:
    """Every merge mode, on sequences and on final states, LSTM and GRU."""
    return chain("merges", (T, I), [
        ("gru", "g_sum", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "sum"}),
        ("lstm", "l_mul", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "mul"}),
        ("gru", "g_ave", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "ave"}),
        ("lstm", "l_final", {"units": H + 1, "direction": "bidirectional", "merge_mode": "ave"}),
        ("dense", "out", {"units": 3, "activation": "tanh"}),
    ])  # fmt: skip


def gru_final_concat() -> Model:
    return chain("gru_final", (T, I), [
        ("gru", "g", {"units": H, "direction": "bidirectional"}),
        ("dense", "out", {"units": 2}),
    ])  # fmt: skip


def masked_embedding() -> Model:
    """Embedding mask_zero -> bidirectional LSTM (held padded outputs) -> dense on 3-D -> bidirectional GRU final
    concat -> dense: the mask reaches both recurrent layers."""
    return chain("masked_embedding", (T,), [
        ("embedding", "emb", {"input_dim": V, "output_dim": I, "mask_zero": True}),
        ("lstm", "l1", {"units": H, "return_sequences": True, "direction": "bidirectional", "padded_outputs": "hold"}),
        ("dense", "per_step", {"units": 5, "activation": "tanh"}),
        ("gru", "g2", {"units": H, "direction": "bidirectional", "merge_mode": "sum", "return_sequences": True}),
        ("lstm", "l3", {"units": H}),
        ("dense", "out", {"units": 4, "activation": "softmax"}),
    ], ids=True)  # fmt: skip


def masked_values() -> Model:
    """Masking(0.5) -> LSTM sequence (zero padded outputs, held in the second) -> LSTM hold -> final."""
    return chain("masked_values", (T, I), [
        ("masking", "mask", {"mask_value": 0.5}),
        ("lstm", "l1", {"units": H, "return_sequences": True}),
        ("lstm", "l2", {"units": H, "return_sequences": True, "padded_outputs": "hold"}),
        ("gru", "g3", {"units": H, "direction": "bidirectional"}),
    ])  # fmt: skip


MODELS = {"lstm_stack": lstm_stack, "merges": merges, "gru_final": gru_final_concat, "masked_embedding": masked_embedding,
          "masked_values": masked_values}  # fmt: skip


def sample(model: Model, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    if model.layers[0].kind == "embedding":  # post-padded ids: lengths 5, 2 and 0 (a row of padding only)
        x = g.integers(1, V, (B, T))
        x[1, 2:] = 0
        x[2, :] = 0
        return x
    x = g.uniform(-1.0, 1.0, (B, *model.input_shape))
    if model.layers[0].kind == "masking":  # lengths 5, 3, 0
        x[1, 3:] = 0.5
        x[2, :] = 0.5
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_matches_the_reference(name, dtype):
    model = MODELS[name]()
    x = sample(model)
    y = torch_port.build(model, dtype).forward(x if model.input_dtype == "int64" else x.astype(dtype))
    assert y.dtype == np.dtype(dtype)
    ref = reference_forward(model, x)
    assert np.abs(ref).max() > 0.05
    assert_close(y, ref, dtype, what=f"torch port {name} {dtype}")


@pytest.mark.parametrize("name", list(MODELS))
def test_vjp_matches_the_reference(name):
    model = MODELS[name]()
    x = sample(model)
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, model.shapes(B)[-1])
    dx, grads = torch_port.build(model, "float64").vjp(x, dy)
    ref_dx, ref_grads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters())
    if ref_dx is None:
        assert dx is None  # token ids have no gradient
    else:
        assert_close(dx, ref_dx, "float64", what=f"{name} dL/dx")
    for key, g in ref_grads.items():
        assert_close(grads[key], g, "float64", what=f"{name} dL/d{key}")
    # every gradient is non-trivial but U_rev's under take_step(-1): the backward cell's first step, from h = 0
    zero = {k for k, g in ref_grads.items() if not np.abs(g).max() > 0}
    assert zero == ({("l2", "U_rev")} if name == "lstm_stack" else set()), zero


@pytest.mark.parametrize("name", ["lstm_stack", "masked_embedding"])
def test_an_lstm_port_is_training_exact(name):
    """nn.LSTM holds bias_ih and bias_hh, the description's b_x and b_h: one Adam step moves both as the reference."""
    model = MODELS[name]()
    x = sample(model)
    t = training.targets(model, reference_forward(model, x), seed=5)
    loss, weights = torch_port.train_step(model, x, t, "float64")
    ref_loss, ref_weights = training.reference_step(model, x, t, "torch")
    assert abs(loss - ref_loss) <= tolerance("float64") * abs(ref_loss)
    for key, w in ref_weights.items():
        assert_close(weights[key], w, "float64", what=f"{name} {key} after one Adam step")
    for la in model.layers:
        if la.kind == "lstm":
            assert not np.array_equal(weights[(la.name, "b_x")], weights[(la.name, "b_h")])
            assert not np.array_equal(weights[(la.name, "b_h")], model.parameters()[(la.name, "b_h")])
            assert any("training-exact" in n for n in torch_port.notes_for(model))


def test_the_bidirectional_final_state_is_h_n_not_the_last_step():
    """A bidirectional layer's final state (return_sequences False) differs from its sequence's last step in the
    backward half: the port reads h_n, and reading out[:, -1] instead would be wrong."""
    model = gru_final_concat()
    x = sample(model)
    seq = dataclasses.replace(model, layers=(dataclasses.replace(model.layers[0], options={
        **model.layers[0].options, "return_sequences": True}),))
    last = reference_forward(seq, x)[:, -1]
    final = reference_forward(dataclasses.replace(model, layers=model.layers[:1]), x)
    assert error_stats(last[:, H:], final[:, H:]).rel > 1e-2 and np.allclose(last[:, :H], final[:, :H])
    source = torch_code.generate(model).source
    assert "torch.cat((h[0], h[1]), dim=1)" in source and "x[:, -1]" not in source


def test_generated_forward_names_a_bad_id_and_a_pre_padded_row():
    model = masked_embedding()
    net, _ = torch_port.load_port(model, "float64")
    import torch

    x = sample(model)
    x[0, 3] = V
    with pytest.raises(ValueError, match=rf"token id {V} at position \(0, 3\) is outside the table of {V} rows"):
        net(torch.from_numpy(x))
    x = sample(model)
    x[1] = [0, 0, 3, 4, 0]
    with pytest.raises(ValueError, match="row 1 is not post-padded"):
        net(torch.from_numpy(x))
    # the voice refuses both at the boundary too, before torch sees them
    built = torch_port.build(model, "float64")
    from impls.model import voices

    with pytest.raises(ValueError, match="outside the table"):
        voices._checked(model, built).to_native(np.full((B, T), -1))


def test_rows_of_length_zero_are_zeros_and_the_source_says_so():
    model = masked_values()
    x = sample(model)
    y = torch_port.build(model, "float64").forward(x)
    assert np.all(y[2] == 0) and np.abs(y[:2]).min() > 0
    source = torch_code.generate(model).source
    assert "enforce_sorted=False" in source and "total_length=5" in source and "lengths.clamp(min=1)" in source
    assert "refuses length 0" in source and "held" in source
    assert any("length 0" in n for n in torch_port.notes_for(model))


def test_a_gru_variant_torch_lacks_is_refused_in_a_bidirectional_layer():
    model = merges()
    layer = model.layers[2]
    bad = model.replace_layer(2, dataclasses.replace(layer, options={**layer.options, "variant": "reset_before"}))
    why = torch_port.refusal(bad, "float32")
    assert why is not None and "'g_ave'" in why and "reset_before" in why
    with pytest.raises(Refused, match="g_ave"):
        torch_port.build(bad, "float32")
    assert torch_port.refusal(model, "float32") is None


# --------------------------------------------------------------------------- the written port, torch alone

LOADER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import torch
    from model import load
    m = load()
    x = torch.load(sys.argv[2], weights_only=True)
    with torch.no_grad():
        torch.save(m(x), sys.argv[3])
    try:
        bad = x.clone()
        bad[0, 0] = 10 ** 6
        m(bad)
    except ValueError as e:
        print("refused:", e)
    assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
""")


def run_isolated(folder, x: np.ndarray, tmp_path) -> tuple[np.ndarray, str]:
    """The port in `folder` loaded and called by torch alone in `python -I` (no PYTHONPATH, no site of the user,
    no current directory on the path), outside the checkout."""
    import torch

    xin, yout = tmp_path / "x.pt", tmp_path / "y.pt"
    torch.save(torch.from_numpy(np.ascontiguousarray(x)), xin)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    done = subprocess.run([sys.executable, "-I", "-c", LOADER, str(folder), str(xin), str(yout)], check=False,
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(yout, weights_only=True).numpy(), done.stdout


def test_written_masked_port_loads_with_torch_alone_and_matches(tmp_path):
    model = masked_embedding().astype("float32")
    files = torch_port.write(model, tmp_path / "port")
    assert sorted(p.name for p in files) == ["model.py", "weights.pt"]
    x = sample(model)
    y, out = run_isolated(tmp_path / "port", x, tmp_path)
    assert_close(y, reference_forward(model.astype("float64"), x), "float32", what="written masked port")
    assert f"token id 1000000 at position (0, 0) is outside the table of {V} rows" in out
