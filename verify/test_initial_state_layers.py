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

from impls.model import compose
from impls.model.description import Model
from verify.layer_cases import LayerCases

B = 3
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


def _post_padded(m: Model, x: np.ndarray) -> None:
    if m.name.startswith("masked"):  # post-padded: rows of 6, 4 and 2 valid steps
        x[1, 4:] = 0.0
        x[2, 2:] = 0.0


LAYERS = LayerCases(CASES, seed=41, batch=B, adjust=_post_padded)


def test_the_states_are_weights_non_zero_and_differ_per_direction():
    m = LAYERS.model("lstm-bi-seq")
    w = m.layers[0].weights
    assert {"h0", "c0", "h0_rev", "c0_rev"} <= set(w) and w["h0"].shape == (5,)
    assert ("l", "h0_rev") in m.parameters()
    assert all(np.abs(w[k]).min() > 0 for k in ("h0", "c0", "h0_rev", "c0_rev"))
    assert not np.allclose(w["h0"], w["h0_rev"]) and not np.allclose(w["h0"], w["c0"])
    x = LAYERS.data(m, 3)
    y = compose.reference_forward(m, x)
    zeroed = m.map(lambda a: np.array(a))
    for k in ("h0", "c0", "h0_rev", "c0_rev"):
        zeroed.layers[0].weights[k] = np.zeros(5)
    assert np.abs(compose.reference_forward(zeroed, x) - y).max() > 1e-3  # the state changes the output


@pytest.mark.parametrize("name", CASES)
def test_reference_gradients_match_central_differences(name):
    m = LAYERS.model(name)
    x = LAYERS.data(m, 5)
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


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)
