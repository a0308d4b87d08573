"""The certificate's whole-forward check where one compiled program gives it (issue 27): JAX from primitives traces
one chain as two programs (the forward, and every layer's output); the certificate compiles only the second and
checks the forward on its last output (per_voice.whole_forward). The forward it checks must be the build's forward,
an input the model refuses must still be refused, and a wrong last output must fail the forward check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import unavailable_reason
from impls.model import seeded, voices
from nnparity.certify.per_voice import whole_forward

B = 3


def _net():
    specs = [("conv2d", "c", {"filters": 5, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
             ("global_avg_pool", "gap", {}), ("dense", "d", {"units": 2})]  # fmt: skip
    return seeded.chain("small", (6, 5, 3), specs, seed=4, batch=B), np.random.default_rng(2).standard_normal((B, 6, 5, 3))


@pytest.mark.skipif(bool(unavailable_reason("jax")), reason=unavailable_reason("jax") or "")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_jax_checks_its_forward_on_the_last_output_and_it_is_the_forward(dtype):
    model, x = _net()
    built = voices.build("jax", model.astype(dtype), dtype)
    assert built.forward_is_last_output and built.outputs is not None
    got, want = whole_forward(built, x), built.forward(x)
    assert got.shape == want.shape == (B, 2) and got.dtype == want.dtype == np.dtype(dtype)
    bar = 1e-6 if dtype == "float32" else 1e-14  # the same chain compiled twice: XLA may fuse the two differently
    assert np.max(np.abs(got - want)) <= bar * np.max(np.abs(want))


def test_other_voices_check_their_own_forward():
    model, x = _net()
    built = voices.build("numpy", model, "float64")
    assert not built.forward_is_last_output
    calls = []
    real = built.outputs
    built.outputs = lambda a: calls.append(1) or real(a)
    assert np.array_equal(whole_forward(built, x), built.forward(x)) and not calls


def test_a_wrong_last_output_is_what_the_forward_check_sees():
    model, x = _net()
    built = voices.build("numpy", model, "float64")
    real = built.outputs
    planted = dataclasses.replace(built, forward_is_last_output=True,
                                  outputs=lambda a: [*real(a)[:-1], real(a)[-1] + 1e-3])  # fmt: skip
    assert np.max(np.abs(whole_forward(planted, x) - built.forward(x))) == pytest.approx(1e-3)


@pytest.mark.skipif(bool(unavailable_reason("jax")), reason=unavailable_reason("jax") or "")
def test_an_id_outside_the_table_is_refused_through_the_outputs_too():
    specs = [("embedding", "e", {"input_dim": 7, "output_dim": 4}), ("global_avg_pool", "gap", {}),
             ("dense", "d", {"units": 2})]  # fmt: skip
    model = seeded.chain("ids", (5,), specs, seed=3, batch=B, input_dtype="int32")
    built = voices.build("jax", model, "float64")
    bad = np.array([[1, 2, 3, 4, 9]] * B, np.int32)
    with pytest.raises(ValueError, match="9"):
        whole_forward(built, bad)
