"""How the GRU variants relate, measured: which re-parameterisation maps one onto another, and how
far apart the unmapped ones are on the same seeded data. The numbers are the finding."""

from __future__ import annotations

import numpy as np
import pytest

from impls import BACKENDS
from impls.contract.reparam import flip_update_gate
from impls.contract.spec import init_gru, random_array
from impls.contract.tolerance import error_stats
from verify.conftest import load

X = random_array((4, 20, 6), 11)
W = init_gru(6, 5, seed=12)
H0 = random_array((4, 5), 13, low=-0.5, high=0.5)


def _run(mod, variant, w):
    y, _ = mod.gru(mod.asarray(X, "float64"), w.map(lambda a: mod.asarray(a, "float64")), variant,
                   h0=mod.asarray(H0, "float64"))  # fmt: skip
    return mod.to_numpy(y)


@pytest.mark.parametrize("impl", BACKENDS)
def test_chung_is_reset_before_with_the_update_gate_negated(impl):
    mod = load(impl)
    mapped = error_stats(_run(mod, "chung", flip_update_gate(W)), _run(mod, "reset_before", W))
    unmapped = error_stats(_run(mod, "chung", W), _run(mod, "reset_before", W))
    assert mapped.rel < 1e-13, f"negating z's weights should map chung onto reset_before exactly; got {mapped.rel:.2e}"
    assert unmapped.rel > 0.1, f"without the mapping the variants should differ visibly; got {unmapped.rel:.2e}"


@pytest.mark.parametrize("impl", BACKENDS)
def test_reset_before_and_reset_after_differ_unless_the_recurrent_candidate_term_vanishes(impl):
    """r * (h U_h + b_hh) versus (r * h) U_h + b_hh: equal only when U_h = 0 and b_hh = 0."""
    mod = load(impl)
    apart = error_stats(_run(mod, "reset_after", W), _run(mod, "reset_before", W))
    assert apart.rel > 1e-3
    H = W.hidden_size
    no_rec = W.map(np.copy)
    no_rec.U[:, 2 * H :] = 0.0
    no_rec.b_h[2 * H :] = 0.0
    same = error_stats(_run(mod, "reset_after", no_rec), _run(mod, "reset_before", no_rec))
    assert same.rel < 1e-14
