"""The torch port (voice "torch_nn", impls/ports/torch_port.py) on the sequence kinds, through voices.build as the
certificate builds it: forward and every gradient against the NumPy float64 reference, float32 at the table's bar
and float64 within 1e-10, for one-direction and bidirectional LSTM and GRU (every merge mode, final states and
sequences), an embedding, and padded batches (mask_zero and Masking, zero and held padded outputs, a row of length
0). A planted gate-order swap in convert.lstm_to_torch must fail the same check: the check can see a wrong port.

Ids read `torch-seq-float32-bilstm`. The reference is fed the weights the voice holds (rounded to its dtype)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import convert, unavailable_reason
from impls.contract.spec import LSTMWeights
from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.model import compose, seeded, voices
from impls.model.description import Model
from verify.headroom import check

if unavailable_reason("torch_nn"):
    pytest.skip(unavailable_reason("torch_nn"), allow_module_level=True)

B, T, I, H, V = 3, 5, 4, 3, 11
DTYPES = ("float32", "float64")


def make(name: str, input_shape: tuple, specs: list, ids: bool = False, seed: int = 0) -> Model:
    m = seeded.chain(name, input_shape, specs, seed, batch=B)
    return dataclasses.replace(m, input_dtype="int64") if ids else m


MODELS = {
    "lstm": lambda: make("lstm", (T, I), [
        ("lstm", "l1", {"units": H, "return_sequences": True}),
        ("lstm", "l2", {"units": H + 1}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ]),
    "bilstm": lambda: make("bilstm", (T, I), [
        ("lstm", "l1", {"units": H, "return_sequences": True, "direction": "bidirectional"}),
        ("lstm", "l2", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "mul"}),
        ("take_step", "last", {"index": -1}),
        ("dense", "out", {"units": 2}),
    ], seed=1),
    "bigru": lambda: make("bigru", (T, I), [
        ("gru", "g1", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "ave"}),
        ("gru", "g2", {"units": H + 1, "direction": "bidirectional", "merge_mode": "sum"}),
        ("dense", "out", {"units": 2, "activation": "tanh"}),
    ], seed=2),
    "embedding": lambda: make("embedding", (T,), [
        ("embedding", "emb", {"input_dim": V, "output_dim": I}),
        ("lstm", "l1", {"units": H, "direction": "bidirectional"}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ], ids=True, seed=3),
    "masked_embedding": lambda: make("masked_embedding", (T,), [
        ("embedding", "emb", {"input_dim": V, "output_dim": I, "mask_zero": True}),
        ("lstm", "l1", {"units": H, "return_sequences": True, "direction": "bidirectional"}),
        ("dense", "td", {"units": 4, "activation": "relu"}),
        ("gru", "g2", {"units": H, "return_sequences": True, "padded_outputs": "hold"}),
        ("lstm", "l3", {"units": H, "direction": "bidirectional", "merge_mode": "concat"}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ], ids=True, seed=4),
    "masking": lambda: make("masking", (T, I), [
        ("masking", "mask", {"mask_value": -1.0}),
        ("lstm", "l1", {"units": H, "return_sequences": True, "padded_outputs": "hold", "direction": "bidirectional"}),
        ("lstm", "l2", {"units": H}),
    ], seed=5),
}  # fmt: skip


def data(m: Model, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    if m.layers[0].kind == "embedding":
        x = g.integers(1, V, (B, T))
        if m.layers[0].options.get("mask_zero"):  # lengths 5, 3, 0
            x[1, 3:] = 0
            x[2] = 0
        return x
    x = g.uniform(-0.9, 0.9, (B, T, I))
    if m.layers[0].kind == "masking":  # lengths 5, 1, 0
        x[1, 1:] = -1.0
        x[2] = -1.0
    return x


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


def _input(m: Model, x: np.ndarray, dtype: str) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_and_gradients_match_the_reference(name, dtype):
    m = MODELS[name]()
    built = voices.build("torch_nn", m, dtype)
    ref_model, x = rounded(m, dtype), data(m)
    xin = _input(m, x, dtype)
    ref = compose.reference_forward(ref_model, xin.astype(np.float64) if xin.dtype.kind == "f" else xin)
    assert np.abs(ref).max() > 0.05
    check(built.forward(xin), ref, dtype, "torch_nn", what=f"torch_nn {name} {dtype} forward")
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, ref.shape)
    dx, grads = built.vjp(xin, dy.astype(dtype))
    ref_dx, ref_grads = compose.reference_vjp(ref_model, xin.astype(np.float64) if xin.dtype.kind == "f" else xin, dy)
    assert set(grads) == set(ref_grads)
    if ref_dx is None:
        assert dx is None
    else:
        check(dx, ref_dx, dtype, "torch_nn", what=f"torch_nn {name} {dtype} dL/dx")
    for key, g in ref_grads.items():
        check(grads[key], g, dtype, "torch_nn", what=f"torch_nn {name} {dtype} dL/d{key}")


def _swap_i_f(w: LSTMWeights) -> LSTMWeights:
    """The input and forget gates' blocks exchanged: the gate-order mistake a converter could make."""
    def swap(a):
        a = np.asarray(a)
        h = a.shape[-1] // 4
        blocks = [a[..., k * h:(k + 1) * h] for k in range(4)]
        return np.concatenate([blocks[1], blocks[0], blocks[2], blocks[3]], axis=-1)

    return LSTMWeights(swap(w.W), swap(w.U), swap(w.b_x), swap(w.b_h))


@pytest.mark.parametrize("name", ["lstm", "masked_embedding"])
def test_a_planted_gate_order_swap_fails_the_check(name, monkeypatch):
    m = MODELS[name]()
    x = data(m)
    ref = compose.reference_forward(m, x)
    real = convert.lstm_to_torch
    check(voices.build("torch_nn", m, "float64").forward(x), ref, "float64", "torch_nn", what=f"{name} unplanted")
    monkeypatch.setattr(convert, "lstm_to_torch", lambda w, suffix="l0": real(_swap_i_f(w), suffix=suffix))
    wrong = voices.build("torch_nn", m, "float64").forward(x)
    assert error_stats(wrong, ref).rel > 1e3 * tolerance("float64")
    with pytest.raises(AssertionError):  # the same bar the check above applies (not booked in the headroom table)
        assert_close(wrong, ref, "float64", what=f"{name} with i and f swapped")
