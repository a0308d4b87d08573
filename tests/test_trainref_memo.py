"""nnparity.trainref.step_and_gradients with the certificate's memo: the reference's training gradients once per
projected model, its Adam step once per projected model and convention (issue 27: resnet18's reference training
took three more float64 Adam steps over 11.7M weights without it). What it returns must be what it returns without
the memo, for every voice, in any order, and a voice that holds entries at their projected value (Keras' single LSTM
bias) must not change what the memo gives the next one."""

from __future__ import annotations

import numpy as np
import pytest

from impls.model import seeded, training
from impls.model.compose import reference_forward

trainref = pytest.importorskip("nnparity.trainref")

B, T = 3, 5


def _lstm():
    specs = [("lstm", "l", {"units": 3, "return_sequences": True}), ("take_step", "first", {"index": 0}),
             ("dense", "d", {"units": 2})]  # fmt: skip
    model = seeded.chain("plain", (T, 4), specs, seed=6, batch=B)
    x = np.random.default_rng(1).standard_normal((B, T, 4))
    return model, x, training.targets(model, reference_forward(model, x), seed=12)


@pytest.mark.parametrize("order", [("keras", "torch_nn", "flax", "keras"), ("flax", "torch_nn", "keras", "flax")])
def test_a_memo_gives_what_no_memo_gives_in_any_order(order):
    model, x, t = _lstm()
    fresh = {v: trainref.step_and_gradients(v, model, x, t) for v in set(order)}
    memo: dict = {}
    for v in order:
        loss, after, notes, grads = trainref.step_and_gradients(v, model, x, t, memo)
        want_loss, want, want_notes, want_grads = fresh[v]
        assert loss == want_loss and notes == want_notes and set(after) == set(want) and set(grads) == set(want_grads)
        for k in want:
            assert np.array_equal(after[k], want[k]), (v, k)
    steps = [k for k in memo if len(k) == 3]
    assert len(steps) == len({training.FRAMEWORK_ADAM[v] + (trainref._key(trainref.project(v, model.astype("float64"))[0]),)
                              for v in order})  # fmt: skip
