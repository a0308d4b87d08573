"""The Keras port on sequence models: LSTM (one bias b_x + b_h), Bidirectional GRU/LSTM in every merge mode,
Embedding and Masking with Keras' own padding masks, padded_outputs as zero_output_for_mask (surviving .keras
save/load), take_step as Cropping1D + Reshape. Forward and vjp against the NumPy float64 reference, arrays() /
canonical() both ways, one Adam step against trainref's reference step in Keras' one-bias parametrization, the
refusal of 'hold' under a sequence-returning Bidirectional, and the stated limitation that the written file wraps a
negative id (Keras' ops.take) where the voice refuses it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import frameworks
from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.description import ModelError
from impls.model.voices import build as voice_build

keras_port = pytest.importorskip("impls.ports.keras_port")
trainref = pytest.importorskip("nnparity.trainref")
keras = frameworks.load("keras")
B, T = 3, 5
# take_step's Cropping1D ends the mask, as the description's take_step does; Keras warns that it does
pytestmark = pytest.mark.filterwarnings("ignore:Layer '.*' \\(of type Cropping1D\\) was passed an input with a mask")
LENGTHS = [5, 2, 0]


def ids(vocab: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).integers(1, vocab, (B, T))
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0
    return x.astype("int64")


def padded(features: int, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1.0, 1.5, (B, T, features))
    for b, n in enumerate(LENGTHS):
        x[b, n:] = 0.0
    return x


def emb_bi(kind: str = "lstm", merge: str = "concat", seq: bool = False):
    specs = [("embedding", "emb", {"input_dim": 11, "output_dim": 4, "mask_zero": True}),
             (kind, "bi", {"units": 3, "direction": "bidirectional", "merge_mode": merge, "return_sequences": seq}),
             *([("take_step", "last", {"index": -1})] if seq else []),
             ("dense", "out", {"units": 5, "activation": "softmax"})]  # fmt: skip
    return seeded.chain(f"emb_bi_{kind}_{merge}_{seq}", (T,), specs, seed=3, batch=B), ids(11)


def masked_stack(padded_outputs: str = "zero"):
    specs = [("masking", "mk", {"mask_value": 0.0}),
             ("lstm", "l1", {"units": 3, "return_sequences": True, "padded_outputs": padded_outputs}),
             ("dense", "td", {"units": 4, "activation": "tanh"}),
             ("gru", "g2", {"units": 2, "variant": "reset_before", "direction": "bidirectional", "merge_mode": "ave"})]
    return seeded.chain(f"stack_{padded_outputs}", (T, 4), specs, seed=5, batch=B), padded(4)


def plain_lstm():
    specs = [("lstm", "l", {"units": 3, "return_sequences": True}), ("take_step", "first", {"index": 0}), ("dense", "d", {"units": 2})]
    return seeded.chain("plain", (T, 4), specs, seed=6, batch=B), padded(4)


MODELS = {
    "emb_bi_lstm_concat": lambda: emb_bi(),
    "emb_bi_lstm_mul_seq": lambda: emb_bi("lstm", "mul", True),
    "emb_bi_gru_sum_seq": lambda: emb_bi("gru", "sum", True),
    "masked_zero": lambda: masked_stack("zero"),
    "masked_hold": lambda: masked_stack("hold"),
    "plain": plain_lstm,
}


@pytest.mark.parametrize("name, dtype", [(n, "float64") for n in MODELS] + [("emb_bi_lstm_mul_seq", "float32"),
                                                                           ("masked_hold", "float32")])
def test_forward_and_vjp_match_the_reference(name, dtype):
    model, x = MODELS[name]()
    built = voice_build("keras", model, dtype)
    y = built.forward(x)
    want = reference_forward(model, x)
    assert_close(y, want, dtype, what=f"keras {name} {dtype}")
    dy = np.random.default_rng(9).standard_normal(want.shape)
    dx, grads = built.vjp(x, dy)
    rdx, rgrads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters())
    assert (dx is None) == (rdx is None) == (model.input_dtype == "int64")
    if rdx is not None:
        assert_close(dx, rdx, dtype, what=f"{name} dx")
    for key, g in rgrads.items():
        assert_close(grads[key], g, dtype, what=f"{name} d{key}")


def test_arrays_and_canonical_go_both_ways_with_one_lstm_bias():
    model, _ = emb_bi("lstm", "ave", True)
    arrays = keras_port.arrays(model)
    net, _ = keras_port.assemble(model, "float64")
    got = [np.asarray(v) for v in net.get_weights()]
    assert len(got) == len(arrays) and all(np.array_equal(a, b) for a, b in zip(got, arrays, strict=True))
    lstm = model.layers[1].weights
    assert np.array_equal(arrays[1 + 2], lstm["b_x"] + lstm["b_h"])  # forward cell's one bias
    assert np.array_equal(arrays[1 + 5], lstm["b_x_rev"] + lstm["b_h_rev"])
    back = keras_port.canonical(model, arrays)
    assert np.array_equal(back[("bi", "b_x_rev")], lstm["b_x_rev"] + lstm["b_h_rev"]) and not np.any(back[("bi", "b_h")])
    g = keras_port.canonical(model, arrays, grads=True)  # a gradient of the one bias is b_x's and b_h's alike
    assert np.array_equal(g[("bi", "b_x")], g[("bi", "b_h")])


@pytest.mark.parametrize("zero", [True, False])
def test_zero_output_for_mask_survives_save_and_load(zero, tmp_path):
    model, x = masked_stack("zero" if zero else "hold")
    path = tmp_path / "m.keras"
    keras_port.write(model, path)
    net = keras.saving.load_model(path)
    assert net.get_layer("l1").zero_output_for_mask is zero
    assert net.get_layer("g2").forward_layer.zero_output_for_mask is False  # returns its final state
    y = np.asarray(net(x.astype("float32")))  # written in the source's float32
    assert_close(y, reference_forward(model, x), "float32", what="loaded port")


def test_hold_under_a_returning_bidirectional_is_refused():
    specs = [("masking", "mk", {}), ("lstm", "bi", {"units": 3, "direction": "bidirectional", "return_sequences": True,
                                                    "padded_outputs": "hold"})]  # fmt: skip
    model = seeded.chain("hold_bi", (T, 4), specs, seed=1, batch=B)
    why = keras_port.refusal(model, "float32")
    assert why and "layer 1 'bi'" in why and "zero_output_for_mask=True" in why
    with pytest.raises(Refused, match="padded_outputs 'hold'"):
        voice_build("keras", model, "float32")
    unmasked = seeded.chain("hold_bi_plain", (T, 4), specs[1:], seed=1, batch=B)  # no mask: no padded steps
    assert keras_port.refusal(unmasked, "float32") is None


def test_a_negative_id_is_refused_by_the_voice_but_wrapped_by_the_written_file(tmp_path):
    """The stated limitation: Keras' Embedding looks ids up with ops.take, which wraps -1 to the last row, so the
    written .keras file computes something for an id the contract refuses; the nnparity voice refuses it."""
    model, x = emb_bi()
    bad = x.copy()
    bad[0, 1] = -1
    built = voice_build("keras", model, "float64")
    assert any("wraps a negative id" in n for n in built.notes)
    with pytest.raises(ModelError, match="token id -1 at position \\(0, 1\\) is outside the table of 11 rows"):
        built.forward(bad)
    path = tmp_path / "emb.keras"
    keras_port.write(model, path)
    net = keras.saving.load_model(path)
    wrapped = bad.copy()
    wrapped[0, 1] = 10  # what ops.take reads for -1
    assert np.array_equal(np.asarray(net(bad)), np.asarray(net(wrapped)))


def test_the_voice_notes_the_lstm_single_bias_and_whether_it_is_training_exact():
    model, _ = plain_lstm()  # seeded: b_h is not zero
    notes = voice_build("keras", model, "float32").notes
    assert any("keras.layers.LSTM holds one bias" in n and "NOT training-exact" in n for n in notes)
    w = dict(model.layers[0].weights)
    w["b_h"] = np.zeros_like(w["b_h"])
    zero_bh = model.replace_layer(0, dataclasses.replace(model.layers[0], weights=w))
    notes0 = keras_port.lstm_notes(zero_bh)
    assert notes0 and "NOT training-exact" not in notes0[0] and "moves that one bias" in notes0[0]
    assert any("single LSTM bias" in n for n in keras_port.train_notes(model))


@pytest.mark.parametrize("name", ["emb_bi_lstm_concat", "masked_zero"])
def test_train_step_matches_the_one_bias_reference_step(name):
    model, x = MODELS[name]()
    y = reference_forward(model, x)
    if training.loss_kind(model) == "categorical_crossentropy":
        training.check_unsaturated(y)
    t = training.targets(model, y, seed=12)
    loss, after = keras_port.train_step(model, x, t, "float64")
    ref_loss, ref_after, notes = trainref.reference_step("keras", model, x, t)
    assert any("LSTM single bias" in n for n in notes)
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    assert set(after) == set(ref_after) == set(model.parameters())
    for key, w in ref_after.items():
        assert_close(after[key], w, "float64", "adam_step", what=f"{name} {key} after one Adam step")
    # the canonical two-bias step is a different step: Keras' differs from it, as the certificate says
    _, canon = training.reference_step(model, x, t, "keras")
    lstm = next(la.name for la in model.layers if la.kind == "lstm")
    assert not np.allclose(canon[(lstm, "b_x")] + canon[(lstm, "b_h")], after[(lstm, "b_x")], rtol=0, atol=1e-6)
