"""Recurrent layers started from given initial states (initial_state "weights": h0, c0 (H,) per direction, broadcast
over the batch; docs/DESIGN.md "Recurrent layers") in every voice against the float64 reference, and planted bugs.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype x model (CASES):
    voices.build(...).forward and every gradient (h0 / c0 included) against compose.reference_forward /
    reference_vjp, the reference fed the weights the voice holds (rounded to its dtype). A voice that declares a model
    refused is a skip naming the reason. The reference's own backward is checked against central differences here.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.model import compose, seeded, voices
from impls.model.description import Model
from verify.headroom import check

B = 3
DTYPES = ("float32", "float64")
IS = {"initial_state": "weights"}

# name: (input shape without the batch, layers); I = 4 != H = 5
CASES: dict[str, tuple[tuple[int, ...], list]] = {
    "gru-seq": ((6, 4), [("gru", "g", {"units": 5, "return_sequences": True, **IS}), ("dense", "out", {"units": 2})]),
    "gru-bi-final": ((6, 4), [("gru", "g", {"units": 5, "direction": "bidirectional", **IS}),
                              ("dense", "out", {"units": 2})]),
    "gru-before": ((6, 4), [("gru", "g", {"units": 5, "variant": "reset_before", **IS})]),
    "lstm-seq": ((6, 4), [("lstm", "l", {"units": 5, "return_sequences": True, **IS}), ("dense", "out", {"units": 2})]),
    "lstm-bi-seq": ((6, 4), [("lstm", "l", {"units": 5, "direction": "bidirectional", "return_sequences": True, **IS}),
                             ("lstm", "l2", {"units": 3, **IS})]),
    "lstm-bi-sum-final": ((6, 4), [("lstm", "l", {"units": 5, "direction": "bidirectional", "merge_mode": "sum", **IS})]),
    # padded sequences (a masking layer; post-padded rows of 6, 4 and 2 valid steps): the states under a mask
    "masked-gru-bi-seq": ((6, 4), [("masking", "m", {"mask_value": 0.0}),
                                   ("gru", "g", {"units": 5, "direction": "bidirectional", "return_sequences": True, **IS})]),
    "masked-lstm-final": ((6, 4), [("masking", "m", {"mask_value": 0.0}), ("lstm", "l", {"units": 5, **IS})]),
}  # fmt: skip

_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=41, batch=B)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


def data(m: Model, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *m.input_shape))
    if m.name.startswith("masked"):  # post-padded: rows of 6, 4 and 2 valid steps
        x[1, 4:] = 0.0
        x[2, 2:] = 0.0
    return x


def test_the_states_are_weights_non_zero_and_differ_per_direction():
    m = model("lstm-bi-seq")
    w = m.layers[0].weights
    assert {"h0", "c0", "h0_rev", "c0_rev"} <= set(w) and w["h0"].shape == (5,)
    assert ("l", "h0_rev") in m.parameters()
    assert all(np.abs(w[k]).min() > 0 for k in ("h0", "c0", "h0_rev", "c0_rev"))
    assert not np.allclose(w["h0"], w["h0_rev"]) and not np.allclose(w["h0"], w["c0"])
    x = data(m, 3)
    y = compose.reference_forward(m, x)
    zeroed = m.map(lambda a: np.array(a))
    for k in ("h0", "c0", "h0_rev", "c0_rev"):
        zeroed.layers[0].weights[k] = np.zeros(5)
    assert np.abs(compose.reference_forward(zeroed, x) - y).max() > 1e-3  # the state changes the output


@pytest.mark.parametrize("name", CASES)
def test_reference_gradients_match_central_differences(name):
    m = model(name)
    x = data(m, 5)
    dy = np.random.default_rng(6).uniform(-1, 1, m.shapes(B)[-1])
    _, grads = compose.reference_vjp(m, x, dy)
    eps = 1e-6
    for key in [k for k in m.parameters() if k[1].startswith(("h0", "c0"))]:
        w = m.layers[m.layer_index(key[0])].weights[key[1]]
        num = np.zeros_like(w)
        for j in range(w.size):
            old = w.flat[j]
            w.flat[j] = old + eps
            up = np.sum(compose.reference_forward(m, x) * dy)
            w.flat[j] = old - eps
            down = np.sum(compose.reference_forward(m, x) * dy)
            w.flat[j] = old
            num.flat[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[key], num, rtol=1e-6, atol=1e-8, err_msg=f"{name} {key}")


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    why = unavailable_reason(voice)
    if why is None:
        why = voices.refusal(voice, model(name), dtype)
    if why is not None:
        pytest.skip(f"{voice} {dtype}: {why}")
    key = (voice, name, dtype)
    if key not in _BUILT:
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


MATRIX = [pytest.param(v, n, d, id=f"{SHORT[v]}-{d}-{n}") for v in voices.VOICES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, name, dtype", MATRIX)
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    x = data(m, 12).astype(dtype)
    what = f"{SHORT[voice]}-{dtype}-{name}"
    ref = rounded(m, dtype)
    check(b.forward(x), compose.reference_forward(ref, x.astype(np.float64)), dtype, voice, what=f"{what} forward")
    if b.vjp is None:
        return
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(ref, x.astype(np.float64), dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")
