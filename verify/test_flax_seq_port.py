"""The flax voice (voices.build("flax", ...), which is impls/ports/flax_port.py's generated code under jax.jit) on the
sequence kinds: forward and every gradient against the NumPy float64 reference, at the float32 bar in float32 and
within 1e-10 in float64 (the port computes float64: its load() turns on jax_enable_x64); a planted gate-order swap
in convert.lstm_to_flax fails that check; one optax.adam step through the port is the reference step in Flax's own
folded parametrization (flax_port.project_for_training), and is NOT the canonical two-bias step (the biases are off
by about one step, the rest is the same).

Models (B = 4, T = 5, I = 4, H = 3; seeded, non-zero b_h everywhere):
- lstm: forward LSTM (sequence) -> forward LSTM (final state) -> Dense softmax;
- bi_lstm: bidirectional LSTM (sequence, concat) -> bidirectional LSTM (final states, mul) -> Dense;
- bi_gru: bidirectional GRU (sequence, sum) -> bidirectional GRU (final states, ave) -> Dense softmax;
- padded: Embedding(mask_zero) on post-padded ids of lengths 5, 2, 0, 3 -> bidirectional LSTM (sequence, zero) ->
  LSTM (sequence, hold) -> bidirectional GRU (final states, sum) -> Dense softmax;
- masked: Masking (the same lengths) -> bidirectional GRU (sequence, hold, ave) -> take_step(-1) -> Dense.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.limits import Refused
from impls.contract.spec import LSTMWeights
from impls.contract.tolerance import error_stats, tolerance
from impls.model import compose, seeded, training, voices
from impls.model.description import Model
from verify.conftest import load
from verify.headroom import check

flax_port = pytest.importorskip("impls.ports.flax_port")

B, T, I, H = 4, 5, 4, 3
LENGTHS = (5, 2, 0, 3)
IDS = np.array([[3, 1, 4, 1, 5], [2, 7, 0, 0, 0], [0, 0, 0, 0, 0], [6, 2, 9, 0, 0]])
MASK_VALUE = -0.5


def _rnn(kind, name, seq, direction="bidirectional", mode="concat", padded="zero"):
    return (kind, name, {"units": H, "return_sequences": seq, "direction": direction, "merge_mode": mode,
                         "padded_outputs": padded})  # fmt: skip


MODELS: dict[str, Model] = {
    "lstm": seeded.chain("lstm", (T, I), [_rnn("lstm", "l1", True, "forward"), _rnn("lstm", "l2", False, "forward"),
                                          ("dense", "out", {"units": 3, "activation": "softmax"})], 40, batch=B),
    "bi_lstm": seeded.chain("bi_lstm", (T, I), [_rnn("lstm", "b1", True), _rnn("lstm", "b2", False, mode="mul"),
                                                ("dense", "out", {"units": 2})], 41, batch=B),
    "bi_gru": seeded.chain("bi_gru", (T, I), [_rnn("gru", "g1", True, mode="sum"), _rnn("gru", "g2", False, mode="ave"),
                                              ("dense", "out", {"units": 3, "activation": "softmax"})], 42, batch=B),
    "padded": seeded.chain("padded", (T,), [
        ("embedding", "emb", {"input_dim": 10, "output_dim": I, "mask_zero": True}), _rnn("lstm", "bl", True),
        _rnn("lstm", "fl", True, "forward", padded="hold"), _rnn("gru", "bg", False, mode="sum"),
        ("dense", "out", {"units": 3, "activation": "softmax"})], 43, batch=B),
    "masked": seeded.chain("masked", (T, I), [
        ("masking", "mask", {"mask_value": MASK_VALUE}), _rnn("gru", "bg", True, mode="ave", padded="hold"),
        ("take_step", "last", {"index": -1}), ("dense", "out", {"units": 2})], 44, batch=B),
}  # fmt: skip


def data(name: str, dtype: str) -> np.ndarray:
    if name == "padded":
        return IDS.copy()
    x = np.random.default_rng(50).uniform(-1, 1, (B, T, I)).astype(dtype)
    if name == "masked":
        for b, n in enumerate(LENGTHS):
            x[b, n:] = MASK_VALUE
    return x


def as_fed(x: np.ndarray) -> np.ndarray:
    """The input the reference gets: the port's own (ids as they are, floats rounded to its dtype), in float64."""
    return x if x.dtype.kind == "i" else x.astype("float64")


@pytest.fixture(scope="module", autouse=True)
def _flax():
    load("flax")  # skips with the reason where Flax is not installed


@pytest.fixture(scope="module")
def built():
    cache: dict = {}

    def get(name: str, dtype: str):
        if (name, dtype) not in cache:
            cache[(name, dtype)] = voices.build("flax", MODELS[name], dtype)
        return cache[(name, dtype)]

    return get


def _compare(b, m: Model, name: str, dtype: str) -> None:
    x = data(name, dtype)
    y_ref = compose.reference_forward(m, as_fed(x))
    y = b.forward(x)
    assert y.dtype == dtype
    check(y, y_ref, dtype, "flax", what=f"flax voice {name} {dtype} forward")
    dy = np.random.default_rng(51).uniform(-1, 1, y_ref.shape).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(m, as_fed(x), dy.astype("float64"))
    dx, grads = b.vjp(x, dy)
    assert list(grads) == list(m.parameters())
    if dx_ref is None:
        assert dx is None  # token ids have no gradient
    else:
        check(dx, dx_ref, dtype, "flax", what=f"flax voice {name} {dtype} dL/dx")
    for key, g in grads.items():
        assert g.shape == m.parameters()[key].shape, key
        check(g, g_ref[key], dtype, "flax", what=f"flax voice {name} {dtype} dL/d{key}")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_and_every_gradient_match_the_reference(built, name, dtype):
    b = built(name, dtype)
    assert b.mode == "jit"
    _compare(b, MODELS[name], name, dtype)


def test_the_float64_build_is_within_1e_10():
    assert tolerance("float64") == 1e-10  # the bar the float64 cases above pass


def test_the_notes_say_the_lstm_is_forward_exact_not_training_exact(built):
    notes = " ".join(built("padded", "float64").notes)
    assert "NOT training-exact" in notes and "nn.Bidirectional" in notes and "seq_lengths" in notes
    assert "nn.Embed" in notes


# --------------------------------------------------------------------------- a planted bug must fail


def _swap_i_f(w: LSTMWeights) -> LSTMWeights:
    def swap(a):
        a = np.asarray(a)
        return np.concatenate([a[..., H : 2 * H], a[..., :H], a[..., 2 * H :]], axis=-1)

    return LSTMWeights(swap(w.W), swap(w.U), swap(w.b_x), swap(w.b_h))


@pytest.mark.parametrize("name", ["bi_lstm", "padded"])
def test_a_gate_order_swap_in_the_flax_lstm_converter_fails(monkeypatch, name):
    right = convert.lstm_to_flax
    monkeypatch.setattr(convert, "lstm_to_flax", lambda w: right(_swap_i_f(w)))  # i and f blocks swapped
    b = voices.build("flax", MODELS[name], "float32")
    with pytest.raises(AssertionError, match="differ"):
        _compare(b, MODELS[name], name, "float32")
    y = b.forward(data(name, "float32"))
    rel = error_stats(y, compose.reference_forward(MODELS[name], as_fed(data(name, "float32")))).rel
    assert rel > 1e-3, rel  # far outside any bar, not a rounding matter


# --------------------------------------------------------------------------- training


def _reference_step_folded(m: Model, x, t):
    """training.reference_step on the model as Flax's cells hold it, the projected-away b_h entries held at zero
    (what nnparity/trainref.reference_step does for a GRU, with flax_port.project_for_training's projection)."""
    projected, frozen, notes = flax_port.project_for_training(m.astype("float64"))
    loss, after = training.reference_step(projected, x, t, *training.FRAMEWORK_ADAM["flax"])
    for key, held in frozen.items():
        after[key] = after[key].copy()
        after[key][held] = np.asarray(projected.parameters()[key])[held]
    return loss, after, frozen, notes


@pytest.mark.parametrize("name", ["lstm", "padded", "masked"])
def test_the_train_step_is_the_reference_step_in_flaxs_folded_parametrization(name):
    m = MODELS[name]
    x = as_fed(data(name, "float64"))
    y = compose.reference_forward(m, x)
    if training.loss_kind(m) == "categorical_crossentropy":
        training.check_unsaturated(y)
    t = training.targets(m, y, 52)
    result = flax_port.train_step(m, x, t)
    loss, weights = result
    loss_ref, w_ref, frozen, notes = _reference_step_folded(m, x, t)
    kinds = {la.kind for la in m.layers}
    assert not result.exact
    assert ("lstm" in kinds) == (flax_port.NOT_TRAINING_EXACT_LSTM in result.notes)
    assert ("gru" in kinds) == (flax_port.NOT_TRAINING_EXACT in result.notes)
    assert len(notes) == sum(la.kind in ("lstm", "gru") for la in m.layers)
    assert abs(loss - loss_ref) <= tolerance("float64") * abs(loss_ref)
    assert list(weights) == list(m.parameters())
    for key, w in weights.items():
        check(w, w_ref[key], "float64", "flax", what=f"{name} after one optax.adam step, folded: {key}")
    # and it is not the canonical step: a folded bias moves ~lr where b_x and b_h move ~lr each
    _, w_canon = training.reference_step(m, x, t, *training.FRAMEWORK_ADAM["flax"])
    for (layer, wname), held in frozen.items():
        bx = wname.replace("b_h", "b_x")
        mine = weights[(layer, bx)][held]
        canon = (w_canon[(layer, bx)] + w_canon[(layer, wname)])[held]
        off = np.abs(mine - canon)
        moved = np.abs(np.asarray(weights[(layer, bx)])[held] - (m.parameters()[(layer, bx)] +
                                                                 m.parameters()[(layer, wname)])[held])  # fmt: skip
        assert np.all(moved > 0) and np.all(off < 1.5 * training.LR), (layer, wname)
        assert np.max(off) > 0.5 * training.LR, (layer, wname, off)  # about one step apart somewhere


def test_the_lstm_projection_changes_no_output():
    m = MODELS["padded"]
    projected, frozen, _ = flax_port.project_for_training(m)
    assert set(frozen) == {("bl", "b_h"), ("bl", "b_h_rev"), ("fl", "b_h"), ("bg", "b_h"), ("bg", "b_h_rev")}
    assert frozen[("bl", "b_h")] == slice(0, 4 * H) and frozen[("bg", "b_h_rev")] == slice(0, 2 * H)
    np.testing.assert_array_equal(projected.parameters()[("bl", "b_h_rev")], 0.0)
    y, yp = compose.reference_forward(m, IDS), compose.reference_forward(projected, IDS)
    assert error_stats(yp, y).rel < 1e-15


@pytest.mark.parametrize("name", list(MODELS))
def test_the_certificates_training_reference_projects_as_the_port_does(name):
    """nnparity/trainref.project("flax", ...) (what certify compares the port's step with) is this projection."""
    trainref = pytest.importorskip("nnparity.trainref")
    m = MODELS[name].astype("float64")
    mine, frozen, _ = flax_port.project_for_training(m)
    theirs, frozen_t, _ = trainref.project("flax", m)
    assert frozen == frozen_t
    for key, w in mine.parameters().items():
        np.testing.assert_array_equal(theirs.parameters()[key], w, err_msg=str(key))


def test_refusals_reach_the_voice():
    m = seeded.chain("late", (T, I), [("dense", "d", {"units": I}), ("masking", "late_mask", {}),
                                      _rnn("gru", "g", False)], 5, batch=B)  # fmt: skip
    assert "late_mask" in voices.refusal("flax", m, "float32")
    with pytest.raises(Refused, match="late_mask"):
        voices.build("flax", m, "float32")
