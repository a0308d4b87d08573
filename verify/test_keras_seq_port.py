"""The keras voice (voices.build("keras", ...), the Keras port itself) on the sequence kinds: forward and gradients
against the NumPy float64 reference for LSTM, bidirectional (every merge mode), embedding (mask_zero) and masked
models; and the check is shown to catch the bugs it exists for: a gate-order swap planted in
convert.lstm_to_keras or convert.lstm_from_keras, and a merge-mode mix-up planted in the port ('sum' written for
'ave')."""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.tolerance import assert_close
from impls.model import seeded, voices
from impls.model.compose import reference_forward, reference_vjp

keras_recurrent = pytest.importorskip("impls.ports.keras_port.recurrent")  # the port's recurrent emitters
pytestmark = pytest.mark.filterwarnings("ignore:Layer '.*' \\(of type Cropping1D\\) was passed an input with a mask")
B, T = 3, 5
LENGTHS = [5, 3, 0]


def ids(vocab: int) -> np.ndarray:
    x = np.random.default_rng(0).integers(1, vocab, (B, T))
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0
    return x


def lstm():
    specs = [("lstm", "l1", {"units": 3, "return_sequences": True}), ("lstm", "l2", {"units": 2})]
    return seeded.chain("lstm", (T, 4), specs, seed=1, batch=B), np.random.default_rng(2).uniform(-1, 1.5, (B, T, 4))


def bidirectional(merge: str):
    specs = [("embedding", "emb", {"input_dim": 13, "output_dim": 4, "mask_zero": True}),
             ("lstm", "bi", {"units": 3, "direction": "bidirectional", "merge_mode": merge, "return_sequences": True}),
             ("dense", "td", {"units": 3, "activation": "tanh"}),
             ("gru", "g", {"units": 2, "direction": "bidirectional", "merge_mode": merge}),
             ("dense", "out", {"units": 4, "activation": "softmax"})]  # fmt: skip
    return seeded.chain(f"bi_{merge}", (T,), specs, seed=3, batch=B), ids(13)


def masked():
    x = np.random.default_rng(4).uniform(-1, 1.5, (B, T, 4))
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0.0
    specs = [("masking", "mk", {}), ("lstm", "l", {"units": 3, "return_sequences": True, "padded_outputs": "hold"}),
             ("take_step", "last", {"index": -1}), ("dense", "d", {"units": 2})]  # fmt: skip
    return seeded.chain("masked", (T, 4), specs, seed=5, batch=B), x


MODELS = {"lstm": lstm, "masked": masked, **{f"bi_{m}": (lambda m=m: bidirectional(m)) for m in ("concat", "sum", "ave", "mul")}}


def check(model, x, dtype: str) -> None:
    """The keras voice's forward and vjp (input and every parameter) against the reference at the table's bar."""
    built = voices.build("keras", model, dtype)
    want = reference_forward(model, x)
    assert_close(built.forward(x), want, dtype, what=f"keras {model.name} {dtype} forward")
    dy = np.random.default_rng(7).standard_normal(want.shape)
    dx, grads = built.vjp(x, dy)
    rdx, rgrads = reference_vjp(model, x, dy)
    if rdx is not None:
        assert_close(dx, rdx, dtype, what=f"{model.name} dx")
    for key, g in rgrads.items():
        assert_close(grads[key], g, dtype, what=f"{model.name} d{'/'.join(key)}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_the_keras_voice_matches_the_reference(name, dtype):
    check(*MODELS[name](), dtype)


def _swap_if(a: np.ndarray) -> np.ndarray:
    """Gates (i, f, g, o) -> (f, i, g, o) on the last axis: the bug a wrong gate order is."""
    i, f, g, o = np.split(np.asarray(a), 4, axis=-1)
    return np.concatenate([f, i, g, o], axis=-1)


def test_a_gate_order_swap_in_lstm_to_keras_is_caught(monkeypatch):
    real = convert.lstm_to_keras
    monkeypatch.setattr(convert, "lstm_to_keras", lambda w: [_swap_if(a) for a in real(w)])
    with pytest.raises(AssertionError, match="forward"):
        check(*lstm(), "float64")


def test_a_gate_order_swap_in_lstm_from_keras_is_caught(monkeypatch):
    """Read back wrong, the weights' gradients come back under the wrong gates (the forward is untouched)."""
    real = convert.lstm_from_keras
    monkeypatch.setattr(convert, "lstm_from_keras", lambda ws: real([_swap_if(a) for a in ws]))
    with pytest.raises(AssertionError, match=r"d(l1|l2)/(W|U|b_x|b_h)"):
        check(*lstm(), "float64")


def test_a_merge_mode_mix_up_in_the_port_is_caught(monkeypatch):
    real = keras_recurrent.recurrent_layer

    def sum_for_ave(kind, name, opts, dt):
        return real(kind, name, {**opts, "merge_mode": "sum" if opts["merge_mode"] == "ave" else opts["merge_mode"]}, dt)

    monkeypatch.setattr(keras_recurrent, "recurrent_layer", sum_for_ave)
    check(*bidirectional("concat"), "float64")  # the plant leaves other modes alone
    with pytest.raises(AssertionError, match="forward"):
        check(*bidirectional("ave"), "float64")
