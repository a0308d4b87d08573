"""The sequence kinds (lstm, bidirectional lstm/gru, embedding, masking, take_step, padded sequences) in every
from-primitives voice, and the NumPy reference itself against finite differences and independent oracles.

    voice (numpy, torch, tensorflow, jax) x dtype (float64, float32) x model (CASES): voices.build(...).forward and
    .vjp against compose.reference_forward / reference_vjp at the table's bar (float64 1e-10, float32 2e-5), the
    reference fed the weights and inputs the voice holds (rounded to its dtype).
    The reference's hand-written backward of each kind against central differences (float64, FD_BAR).
    The reference against torch.nn.LSTM + pack_padded_sequence (padded outputs "zero", final states of both
    directions) and keras.layers.LSTM / Bidirectional with a mask ("hold" and "zero"); planted off-by-ones in the
    time maps make those comparisons fail.
    Refusals every voice shares: an id outside the table (named with the table size), a pre-padded mask (the row).
    Pre-padded input is outside the contract because frameworks disagree on it: Keras' masked LSTM and torch's
    pack_padded_sequence give different final states on the same pre-padded batch.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import SHORT, convert, unavailable_reason
from impls.contract.spec import LSTMWeights
from impls.contract.tolerance import error_stats
from impls.model import compose, seeded, voices
from impls.model.description import Model, ModelError
from impls.model.layers import spec_of
from impls.primitives import numpy_impl, numpy_seq
from verify.conftest import load, load_framework
from verify.headroom import check
from verify.test_finite_differences import FD_BAR, central_differences

B, T, I, H, V = 4, 5, 4, 3, 9  # batch, steps, features, units (I != H), vocabulary
LENGTHS = (5, 2, 0, 3)  # a full row, a length-0 row, two in between
DTYPES = ("float64", "float32")
PRIMITIVE_VOICES = voices.PRIMITIVES  # numpy, torch, tensorflow, jax


def bi(mode: str, seq: bool, units: int = H, **kw) -> dict:
    return {"units": units, "direction": "bidirectional", "merge_mode": mode, "return_sequences": seq, **kw}


# name: (input shape, layers, data) with data "float", "ids" (any id, 0 included), "ids_padded" (0 after each
# row's LENGTHS), or a float mask value (each row's steps after LENGTHS equal it)
CASES: dict[str, tuple[tuple[int, ...], list, object]] = {
    "embedding-lstm-bilstm": ((T,), [("embedding", "e", {"input_dim": V, "output_dim": I}),
                                     ("lstm", "l", {"units": H, "return_sequences": True}),
                                     ("lstm", "b1", bi("mul", True)), ("lstm", "b2", bi("ave", False, 2))], "ids"),
    "bigru-bilstm-take_step": ((T, I), [("gru", "g", bi("sum", True)), ("lstm", "b", bi("concat", True)),
                                        ("take_step", "last", {"index": -1})], "float"),
    "embedding_mask-bilstm-bigru": ((T,), [("embedding", "e", {"input_dim": V, "output_dim": I, "mask_zero": True}),
                                           ("lstm", "b", bi("concat", True)),
                                           ("dense", "d", {"units": 2, "activation": "tanh"}),
                                           ("gru", "g", bi("mul", False, variant="reset_before"))], "ids_padded"),
    "masking-zero": ((T, I), [("masking", "m", {"mask_value": 0.0}),
                              ("lstm", "l1", {"units": H, "return_sequences": True}),
                              ("gru", "g", bi("sum", True)), ("lstm", "l2", bi("concat", False, 2))], 0.0),
    "masking-hold": ((T, I), [("masking", "m", {"mask_value": 0.5}),
                              ("lstm", "l1", {"units": H, "return_sequences": True, "padded_outputs": "hold"}),
                              ("gru", "g", bi("ave", True, padded_outputs="hold")),
                              ("lstm", "l2", {"units": 2})], 0.5),
}  # fmt: skip
"""Few, deep models: each voice compiles (JAX, tf.function) one forward and one vjp per model and dtype. Together
they hold a forward LSTM's sequence and final state, every merge mode, bidirectional sequences and final states of
both kinds, take_step after a bidirectional layer, an embedding with and without mask_zero, and masked stacks whose
padded outputs are zero and held (test_the_cases_hold_every_...)."""


def padded_steps(lengths, steps: int = T) -> np.ndarray:
    return np.arange(steps)[None, :] >= np.asarray(lengths)[:, None]  # (B, T): True on padding


def make_data(kind, shape: tuple[int, ...], seed: int, lengths=LENGTHS, vocab: int = V) -> np.ndarray:
    g = np.random.default_rng(seed)
    n = len(lengths)
    if kind == "ids":
        return g.integers(0, vocab, (n, *shape))
    if kind == "ids_padded":
        ids = g.integers(1, vocab, (n, *shape))
        ids[padded_steps(lengths, shape[0])] = 0
        return ids
    x = g.uniform(-1.0, 1.0, (n, *shape))
    if kind != "float":
        x[padded_steps(lengths, shape[0])] = kind
    return x


_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs, _ = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=17, batch=B)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    why = unavailable_reason(voice)
    if why is not None:
        pytest.skip(why)
    key = (voice, name, dtype)
    if key not in _BUILT:
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


def inputs(name: str, dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x as the voice is fed it, x as the reference is fed it)."""
    x = make_data(CASES[name][2], model(name).input_shape, seed)
    if np.issubdtype(x.dtype, np.integer):
        return x, x
    return x.astype(dtype), x.astype(dtype).astype(np.float64)


MATRIX = [pytest.param(v, d, n, id=f"seq-{SHORT[v]}-{d}-{n}") for v in PRIMITIVE_VOICES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, dtype, name", MATRIX)
def test_voice_forward_and_gradients_match_the_float64_reference(voice, dtype, name):
    b, m = built(voice, name, dtype), model(name)
    x, x_ref = inputs(name, dtype, 31)
    ref_model = rounded(m, dtype)
    what = f"seq-{SHORT[voice]}-{dtype}-{name}"
    y = b.forward(x)
    assert y.dtype == dtype, f"{what}: output dtype {y.dtype}, asked for {dtype}"
    check(y, compose.reference_forward(ref_model, x_ref), dtype, voice, what=f"{what} forward")

    dy = np.random.default_rng(32).uniform(-1.0, 1.0, m.shapes(B)[-1])
    dx_ref, g_ref = compose.reference_vjp(ref_model, x_ref, dy.astype(dtype).astype(np.float64))
    dx, grads = b.vjp(x, dy.astype(dtype))
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    if dx_ref is None:  # token ids have no gradient
        assert dx is None, f"{what}: a gradient for integer token ids"
    else:
        check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")


def test_the_cases_hold_every_sequence_kind_merge_mode_and_padded_output():
    layers = [(k, spec_of(k).options(o)) for _, specs, _ in CASES.values() for k, _, o in specs]
    assert {k for k, _ in layers} >= {"lstm", "gru", "embedding", "masking", "take_step", "dense"}
    rec = [(k, o) for k, o in layers if k in ("lstm", "gru")]
    assert {(o["direction"], o["return_sequences"]) for k, o in rec if k == "lstm"} == {
        (d, s) for d in ("forward", "bidirectional") for s in (True, False)}
    assert {o["merge_mode"] for _, o in rec if o["direction"] == "bidirectional"} == {"concat", "sum", "ave", "mul"}
    assert {o["mask_zero"] for k, o in layers if k == "embedding"} == {True, False}
    masked = [spec_of(k).options(o) for name in ("embedding_mask-bilstm-bigru", "masking-zero", "masking-hold")
              for k, _, o in CASES[name][1] if k in ("lstm", "gru")]
    assert {o["padded_outputs"] for o in masked if o["return_sequences"]} == {"zero", "hold"}
    assert any(o["direction"] == "bidirectional" and not o["return_sequences"] for o in masked)
    assert min(LENGTHS) == 0 and max(LENGTHS) == T and B >= 3 and I != H


# --------------------------------------------------------------------------- the reference's backward vs differences


FD_B, FD_T, FD_I, FD_H = 3, 4, 3, 2
FD_LENGTHS = (4, 1, 0)
FD_V = 5
FD_CASES: dict[str, tuple[tuple[int, ...], list, object]] = {
    **{f"lstm-{d}-{m}-{'seq' if s else 'last'}": (
        (FD_T, FD_I), [("lstm", "l", {"units": FD_H, "return_sequences": s, "direction": d, "merge_mode": m})], "float")
       for d, m, s in (("forward", "concat", True), ("forward", "concat", False), ("bidirectional", "concat", True),
                       ("bidirectional", "concat", False), ("bidirectional", "sum", True), ("bidirectional", "ave", False),
                       ("bidirectional", "mul", True), ("bidirectional", "mul", False))},
    "gru-bidirectional-masked-hold": ((FD_T, FD_I), [
        ("masking", "m", {"mask_value": 0.0}),
        ("gru", "g", bi("ave", True, FD_H, padded_outputs="hold"))], 0.0),
    "lstm-bidirectional-masked-zero": ((FD_T, FD_I), [
        ("masking", "m", {"mask_value": 0.0}),
        ("lstm", "l", bi("concat", True, FD_H)), ("lstm", "l2", bi("mul", False, FD_H, padded_outputs="hold"))], 0.0),
    "lstm-masked-hold-last": ((FD_T, FD_I), [
        ("masking", "m", {"mask_value": 0.25}),
        ("lstm", "l", {"units": FD_H, "return_sequences": True, "padded_outputs": "hold"}), ("lstm", "l2", {"units": 2})],
        0.25),
    "embedding": ((FD_T,), [("embedding", "e", {"input_dim": FD_V, "output_dim": 3})], "ids"),
    "embedding_mask-lstm": ((FD_T,), [("embedding", "e", {"input_dim": FD_V, "output_dim": 3, "mask_zero": True}),
                                      ("lstm", "l", bi("sum", False, FD_H))], "ids_padded"),
    "bilstm-take_step": ((FD_T, FD_I), [("lstm", "l", bi("concat", True, FD_H)), ("take_step", "t", {"index": 1})],
                         "float"),
}  # fmt: skip


def _fd_data(kind, shape, seed):
    x = make_data(kind, shape, seed, FD_LENGTHS, FD_V)
    if kind == "ids":  # repeated ids: the table's gradient adds them up
        x[0, :2] = 3
    return x


@pytest.mark.parametrize("case", list(FD_CASES))
def test_reference_sequence_vjp_matches_central_differences(case):
    shape, specs, kind = FD_CASES[case]
    m = seeded.chain(case, shape, specs, seed=50, batch=FD_B)
    x = _fd_data(kind, shape, 51)
    dy = np.random.default_rng(52).uniform(-1.0, 1.0, m.shapes(FD_B)[-1])
    keys = list(m.parameters())
    ins = {f"{k[0]}.{k[1]}": np.array(a, dtype=np.float64) for k, a in m.parameters().items()}
    float_input = np.issubdtype(x.dtype, np.floating)
    if float_input:
        ins["x"] = x.copy()

    def loss(a):
        mm = m.with_parameters({k: a[f"{k[0]}.{k[1]}"] for k in keys})
        return float(np.sum(dy * compose.reference_forward(mm, a["x"] if float_input else x)))

    dx, grads = compose.reference_vjp(m, x, dy)
    assert (dx is None) == (not float_input), f"{case}: dL/dx {'missing' if dx is None else 'for token ids'}"
    for name, g in {**({"x": dx} if float_input else {}), **{f"{k[0]}.{k[1]}": grads[k] for k in keys}}.items():
        if name == "x" and kind != "float":  # a padded step moved off the mask value would change the mask: valid only
            keep = ~padded_steps(FD_LENGTHS, shape[0])

            def on_valid(a, keep=keep):
                full = x.copy()
                full[keep] = a["valid"]
                return loss({**a, "x": full})

            g, fd = g[keep], central_differences(on_valid, {**ins, "valid": x[keep].copy()}, "valid")
        else:
            fd = central_differences(loss, ins, name)
        s = error_stats(g, fd)
        assert s.rel <= FD_BAR, f"{case} d/d{name}: relative error {s.rel:.2e} > {FD_BAR:.0e} at {s.worst_index}"
        assert np.max(np.abs(fd)) > 1e-5, f"{case} d/d{name}: the differences are all ~0, the check proves nothing"


# --------------------------------------------------------------------------- bidirectional final states


def _options(m: Model, layer: int) -> dict:
    la = m.layers[layer]
    return spec_of(la.kind).options(la.options)


def _cell(m: Model, layer: int, suffix: str) -> LSTMWeights:
    w = m.layers[layer].weights
    return LSTMWeights(*(w[k + suffix] for k in ("W", "U", "b_x", "b_h")))


def test_the_bidirectional_final_state_is_not_the_last_steps_backward_half():
    """The backward direction's final state is its state after position 0; `out[:, -1]` holds its FIRST step."""
    seq = seeded.chain("bi", (T, I), [("lstm", "b", bi("concat", True))], seed=5, batch=B)
    last = seeded.chain("bi", (T, I), [("lstm", "b", bi("concat", False))], seed=5, batch=B)
    x = make_data("float", (T, I), 6)
    y_seq, y_last = compose.reference_forward(seq, x), compose.reference_forward(last, x)
    np.testing.assert_array_equal(y_last[:, :H], y_seq[:, -1, :H])  # forward: the last step
    np.testing.assert_array_equal(y_last[:, H:], y_seq[:, 0, H:])  # backward: position 0
    gap = np.max(np.abs(y_last[:, H:] - y_seq[:, -1, H:]))
    assert gap > 1e-2, f"the backward final state and out[:, -1]'s backward half agree ({gap:.1e}): no test"

    torch = load_framework("torch")  # the independent oracle: torch's h_n is the final state, out[:, -1] is not
    out, h_n = _torch_lstm(torch, seq, 0, x, None)
    np.testing.assert_allclose(h_n[1], y_last[:, H:], rtol=0, atol=1e-14)
    np.testing.assert_allclose(out[:, -1], y_seq[:, -1], rtol=0, atol=1e-14)
    assert np.max(np.abs(out[:, -1, H:] - h_n[1])) > 1e-2


# --------------------------------------------------------------------------- independent oracles for padded sequences


def _torch_lstm(torch, m: Model, layer: int, x: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.LSTM holding layer `layer`'s weights (convert.lstm_to_torch) over x, packed by `lengths` (rows of
    length 0 left out: pack_padded_sequence refuses them) or not: (out (B, T, D*H) zero-padded, h_n (D, B, H))."""
    opts = _options(m, layer)
    two = opts.get("direction") == "bidirectional"
    hidden = opts["units"]
    lstm = torch.nn.LSTM(x.shape[2], hidden, batch_first=True, bidirectional=two).double()
    state = convert.lstm_to_torch(_cell(m, layer, ""), "l0")
    if two:
        state |= convert.lstm_to_torch(_cell(m, layer, "_rev"), "l0_reverse")
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    rnn = torch.nn.utils.rnn
    with torch.no_grad():
        if lengths is None:
            out, (h_n, _) = lstm(torch.from_numpy(x))
            return out.numpy(), h_n.numpy()
        rows = [b for b, L in enumerate(lengths) if L > 0]
        packed = rnn.pack_padded_sequence(torch.from_numpy(x[rows]), torch.tensor([lengths[b] for b in rows]),
                                          batch_first=True, enforce_sorted=False)
        out_p, (h_p, _) = lstm(packed)
        out_p, _ = rnn.pad_packed_sequence(out_p, batch_first=True, total_length=x.shape[1])
    out = np.zeros((x.shape[0], x.shape[1], (2 if two else 1) * hidden))
    h_n = np.zeros(((2 if two else 1), x.shape[0], hidden))
    out[rows], h_n[:, rows] = out_p.numpy(), h_p.numpy()
    return out, h_n


def _masked_bilstm(padded_outputs: str = "zero") -> Model:
    return seeded.chain("masked-bilstm", (T, I), [("masking", "m", {"mask_value": 0.0}),
                                                  ("lstm", "b", bi("concat", True, padded_outputs=padded_outputs))],
                        seed=9, batch=B)


def _masked_bilstm_last() -> Model:
    return seeded.chain("masked-bilstm", (T, I), [("masking", "m", {"mask_value": 0.0}),
                                                  ("lstm", "b", bi("concat", False))], seed=9, batch=B)


def _off_by_one_lengths(lengths, steps):
    return numpy_seq.time_maps(np.minimum(np.asarray(lengths) + 1, steps), steps)


def _off_by_one_hold(lengths, steps):
    valid, hold, rev, nonempty = numpy_seq.time_maps(lengths, steps)
    return valid, np.clip(hold - 1, 0, None), rev, nonempty


def test_reference_padded_bilstm_is_torch_pack_padded_sequence_and_a_planted_off_by_one_is_caught(monkeypatch):
    torch = load_framework("torch")
    x = make_data(0.0, (T, I), 21)
    seq, last = _masked_bilstm(), _masked_bilstm_last()
    out, h_n = _torch_lstm(torch, seq, 1, x, LENGTHS)
    y_seq, y_last = compose.reference_forward(seq, x), compose.reference_forward(last, x)
    assert error_stats(y_seq, out).rel <= 1e-14  # every step, padded ones zero, both directions aligned
    assert error_stats(y_last, np.concatenate([h_n[0], h_n[1]], axis=1)).rel <= 1e-14  # both final states
    assert np.all(y_seq[2] == 0) and np.all(y_last[2] == 0)  # the length-0 row: zeros (torch refuses it)

    for plant in (_off_by_one_lengths, _off_by_one_hold):
        monkeypatch.setattr(numpy_impl, "time_maps", plant)
        bad_seq, bad_last = compose.reference_forward(seq, x), compose.reference_forward(last, x)
        worst = max(error_stats(bad_seq, out).rel, error_stats(bad_last, np.concatenate([h_n[0], h_n[1]], 1)).rel)
        assert worst > 1e-3, f"{plant.__name__}: the reference with the planted off-by-one still matches torch ({worst:.1e})"
    monkeypatch.undo()


def _keras_lstm(keras, m: Model, layer: int, x: np.ndarray, mask: np.ndarray, zero_output: bool | None):
    """keras.layers.LSTM (zero_output None: inside Bidirectional) holding layer `layer`'s weights, float64, called
    with `mask`."""
    opts = _options(m, layer)
    two = opts.get("direction") == "bidirectional"

    def one(go_backwards=False, zero=False):
        return keras.layers.LSTM(opts["units"], return_sequences=opts["return_sequences"], go_backwards=go_backwards,
                                 zero_output_for_mask=zero, dtype="float64")

    if two:
        layer_k = keras.layers.Bidirectional(one(), backward_layer=one(True), merge_mode=opts["merge_mode"],
                                             dtype="float64")
    else:
        layer_k = one(zero=bool(zero_output))
    xin = keras.ops.convert_to_tensor(x, dtype="float64")
    layer_k(xin, mask=keras.ops.convert_to_tensor(mask))  # builds
    weights = [*convert.lstm_to_keras(_cell(m, layer, ""))]
    if two:
        weights += convert.lstm_to_keras(_cell(m, layer, "_rev"))
    layer_k.set_weights(weights)
    return np.asarray(layer_k(xin, mask=keras.ops.convert_to_tensor(mask)))


def test_reference_hold_and_zero_padded_outputs_are_keras_masked_lstms_and_a_planted_hold_is_caught(monkeypatch):
    keras = load_framework("keras")
    x = make_data(0.0, (T, I), 22)
    mask = ~padded_steps(LENGTHS)
    one = {p: seeded.chain(f"masked-lstm-{p}", (T, I), [("masking", "m", {"mask_value": 0.0}),
                                                          ("lstm", "l", {"units": H, "return_sequences": True,
                                                                         "padded_outputs": p})], seed=10, batch=B)
           for p in ("hold", "zero")}
    keras_hold = _keras_lstm(keras, one["hold"], 1, x, mask, zero_output=False)  # Keras' default
    keras_zero = _keras_lstm(keras, one["zero"], 1, x, mask, zero_output=True)
    keras_bi = _keras_lstm(keras, _masked_bilstm(), 1, x, mask, zero_output=None)  # Bidirectional zeroes padding
    ref_hold, ref_zero = compose.reference_forward(one["hold"], x), compose.reference_forward(one["zero"], x)
    ref_bi = compose.reference_forward(_masked_bilstm(), x)
    for what, got, want in (("hold", ref_hold, keras_hold), ("zero", ref_zero, keras_zero), ("bidirectional", ref_bi, keras_bi)):
        s = error_stats(got, want)
        assert s.rel <= 1e-12, f"{what}: the reference differs from Keras' masked LSTM: {s.rel:.2e} at {s.worst_index}"
    assert np.max(np.abs(ref_hold - ref_zero)) > 1e-2  # the two modes differ on this batch: the checks tell them apart
    assert np.all(ref_hold[2] == 0)  # a length-0 row holds its zero initial state

    monkeypatch.setattr(numpy_impl, "time_maps", _off_by_one_hold)
    worst = error_stats(compose.reference_forward(one["hold"], x), keras_hold).rel
    monkeypatch.undo()
    assert worst > 1e-3, f"a hold map shifted by one step still matches Keras ({worst:.1e})"


def test_pre_padded_input_is_where_keras_and_torch_disagree():
    """The same pre-padded batch (each row's padding first): Keras' masked LSTM skips the padded steps, torch's
    pack_padded_sequence takes each row's first `length` steps (padding included). Different final states: the
    contract refuses pre-padded masks rather than pick one."""
    keras, torch = load_framework("keras"), load_framework("torch")
    m = seeded.chain("pre", (T, I), [("masking", "m", {"mask_value": 0.0}), ("lstm", "l", {"units": H})], seed=11,
                     batch=B)
    lengths = (5, 2, 3, 4)
    x = np.random.default_rng(23).uniform(-1.0, 1.0, (B, T, I))
    pre = np.arange(T)[None, :] < (T - np.asarray(lengths))[:, None]
    x[pre] = 0.0
    keras_h = _keras_lstm(keras, m, 1, x, ~pre, zero_output=False)
    _, h_n = _torch_lstm(torch, m, 1, x, lengths)
    np.testing.assert_allclose(keras_h[0], h_n[0][0], rtol=0, atol=1e-12)  # the full row: they agree
    gaps = np.max(np.abs(keras_h - h_n[0]), axis=1)
    assert np.all(gaps[1:] > 1e-3), f"Keras and torch agree on pre-padded rows ({gaps}): the claim is wrong"
    with pytest.raises(ModelError, match="row 1 is not post-padded"):
        compose.reference_forward(m, x)


# --------------------------------------------------------------------------- refusals every voice shares


_EMB = {name: seeded.chain(name, (T,), [("embedding", "e", {"input_dim": V, "output_dim": I, "mask_zero": mz}),
                                        ("lstm", "l", {"units": H})], seed=3, batch=B)
        for name, mz in (("ids", False), ("ids-mask", True))}


@pytest.mark.parametrize("voice", PRIMITIVE_VOICES)
@pytest.mark.parametrize("bad", [V, -1, V + 40])
def test_an_id_outside_the_table_is_refused_naming_the_id_and_the_table_size(voice, bad):
    if unavailable_reason(voice):
        pytest.skip(unavailable_reason(voice))
    b = voices.build(voice, _EMB["ids"], "float64")
    ids = make_data("ids", (T,), 24)
    b.forward(ids)  # a good batch runs
    ids[2, 3] = bad
    with pytest.raises(ModelError, match=rf"token id {bad} at position \(2, 3\) is outside the table of {V} rows"):
        b.forward(ids)


@pytest.mark.parametrize("voice", PRIMITIVE_VOICES)
def test_a_pre_padded_mask_is_refused_naming_the_row(voice):
    if unavailable_reason(voice):
        pytest.skip(unavailable_reason(voice))
    ids = make_data("ids_padded", (T,), 25)
    ids[1] = [0, 0, 4, 5, 6]  # padding first
    with pytest.raises(ModelError, match="row 1 is not post-padded"):
        voices.build(voice, _EMB["ids-mask"], "float64").forward(ids)
    m = model("masking-zero")
    x = make_data(0.0, m.input_shape, 26)
    x[3] = 0.0
    x[3, 1] = 0.7  # a gap: valid step 1 after padded step 0
    with pytest.raises(ModelError, match="row 3 is not post-padded"):
        voices.build(voice, m, "float64").forward(x)


def test_tensorflow_voice_runs_the_padded_sequences_inside_tf_function_and_xla():
    """The bench compiles the TensorFlow voice per mode: the time maps and gathers trace as graph ops."""
    ops, name = load("tensorflow"), "masking-hold"
    b, m = built("tensorflow", name, "float64"), model(name)
    x, x_ref = inputs(name, "float64", 33)
    want = compose.reference_forward(m, x_ref)
    for mode in ("tf.function", "tf.function(jit_compile=True)"):
        got = ops.to_numpy(ops.compile(b.eager, mode)(b.to_native(x)))
        check(got, want, "float64", "tensorflow", what=f"{name} in {mode}")
