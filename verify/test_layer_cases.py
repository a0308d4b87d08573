"""verify/layer_cases.py's comparison fails a wrong voice: the NumPy voice with a planted bug in its forward, its
dL/dx, one parameter's gradient, or a gradient left out, each caught naming what differs; the ids, the inputs and a
refusal as the layer-family files rely on them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls.model import voices
from verify.layer_cases import LayerCases

CASES = {"tiny": ((5, 4), [("dense", "d", {"units": 3, "activation": "tanh"}), ("flatten", "f", {})])}


def _planted(monkeypatch, plant) -> LayerCases:
    """Fresh cases (nothing built yet) whose voices.build hands back plant(the real build)."""
    real = voices.build
    monkeypatch.setattr(voices, "build", lambda voice, model, dtype: plant(real(voice, model, dtype)))
    return LayerCases(CASES, seed=3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_numpy_voice_passes(dtype):
    LayerCases(CASES, seed=3).check_forward_and_gradients("numpy", "tiny", dtype)


def _wrong_forward(b):
    to_numpy = b.to_numpy
    return dataclasses.replace(b, to_numpy=lambda y: to_numpy(y) + 1e-3)


def _wrong_dx(b):
    vjp = b.vjp
    return dataclasses.replace(b, vjp=lambda x, dy: (vjp(x, dy)[0] + 1e-3, vjp(x, dy)[1]))


def _wrong_bias_gradient(b):
    vjp = b.vjp

    def planted(x, dy):
        dx, grads = vjp(x, dy)
        return dx, {k: g * 1.001 if k == ("d", "bias") else g for k, g in grads.items()}

    return dataclasses.replace(b, vjp=planted)


def _missing_gradient(b):
    vjp = b.vjp
    return dataclasses.replace(b, vjp=lambda x, dy: (vjp(x, dy)[0], {("d", "kernel"): vjp(x, dy)[1][("d", "kernel")]}))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "plant, caught",
    [(_wrong_forward, "tiny forward differ"), (_wrong_dx, "tiny dL/dx differ"),
     (_wrong_bias_gradient, "tiny dL/dd.bias differ"), (_missing_gradient, "tiny: gradients for")],
)  # fmt: skip
def test_a_planted_bug_is_caught(monkeypatch, plant, caught, dtype):
    with pytest.raises(AssertionError, match=caught):
        _planted(monkeypatch, plant).check_forward_and_gradients("numpy", "tiny", dtype)


def test_a_refusal_is_a_skip_naming_the_voice_and_why(monkeypatch):
    monkeypatch.setattr(voices, "refusal", lambda voice, model, dtype: "no such layer here")
    with pytest.raises(pytest.skip.Exception, match="numpy float32: no such layer here"):
        LayerCases(CASES, seed=3).built("numpy", "tiny", "float32")


def test_the_matrix_ids_and_the_inputs():
    zeroed = []
    cases = LayerCases({**CASES, "other": CASES["tiny"]}, seed=3, batch=4, inputs=(-2.0, 0.5),
                       adjust=lambda m, x: zeroed.append(m.name) or x.__setitem__((1, 2), 0.0))  # fmt: skip
    ids = [p.id for p in cases.matrix()]
    assert ids[:4] == ["np-float32-tiny", "np-float32-other", "np-float64-tiny", "np-float64-other"]
    assert len(ids) == len(voices.VOICES) * 2 * 2 and len(set(ids)) == len(ids)
    m = cases.model("tiny")
    x = cases.data(m, 12)
    assert x.shape == (4, 5, 4) and zeroed == ["tiny"] and not x[1, 2].any()
    assert -2.0 <= x.min() < -1.0 and x.max() < 0.5  # the range asked for, not [-1, 1]
    assert np.array_equal(x, cases.data(m, 12)) and not np.array_equal(x, cases.data(m, 13))
    assert cases.model("tiny") is m and m.layers[0].weights["bias"].any()  # built once, non-zero biases
