"""Every branch of the training loss: saturated probabilities, where Keras' clip to [1e-7, 1 - 1e-7] acts,
and logits large enough that a naive softmax overflows.

The loss is categorical cross-entropy on the probabilities as Keras computes it for from_logits=False
(numpy_train.keras_categorical_crossentropy; torch_models has the same in torch): renormalise, clip,
-sum(t log q). Where the true class's probability is clipped the loss is constant, so its gradient is
exactly zero: checked against central differences and against Keras' and PyTorch's autograd. Keras'
own loss clips only probabilities that do not carry their logits: a softmax output (keras.activations,
a Dense(activation="softmax")) makes it compute the unclipped log-softmax instead, declared below.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls.contract.inputs import round_to, to_native
from impls.contract.models import init_seed_cnn
from impls.contract.spec import random_array
from impls.contract.tolerance import error_stats
from impls.model import seed as seed_models
from impls.ports import torch_port
from impls.primitives import numpy_impl as ref
from impls.train import numpy_train
from verify.cases import OpCase, matrix, outputs
from verify.conftest import load, load_framework
from verify.headroom import check
from verify.test_finite_differences import FD_BAR, central_differences

LO, HI = numpy_train.KERAS_EPSILON, 1.0 - numpy_train.KERAS_EPSILON
B, K = 6, 5
LABELS = np.array([2, 0, 4, 1, 3, 2])
ONEHOT = np.eye(K)[LABELS]


def _saturating_logits() -> np.ndarray:
    """Seeded logits, then per row: 0 the true class 25 below the rest (p ~ 1e-12: clipped low), 1 the true
    class 25 above the rest (1 - p ~ 1e-10: clipped high), 2 one wrong class 30 below (tiny, but not the
    true class), 3-5 as they come."""
    z = random_array((B, K), 20, low=-2.0, high=2.0)
    z[0, LABELS[0]] -= 25.0
    z[1, LABELS[1]] += 25.0
    z[2, (LABELS[2] + 1) % K] -= 30.0
    return z


LOGITS = _saturating_logits()
P = ref.softmax(LOGITS)
Q_TRUE = P[np.arange(B), LABELS] / P.sum(axis=1)
CLIPPED = (Q_TRUE < LO) | (Q_TRUE > HI)


def test_the_cases_reach_both_clip_branches_and_stay_clear_of_their_edges():
    """Guard for the data: one row under 1e-7, one over 1 - 1e-7, the rest well inside; no probability within
    a factor 3 of an edge, so central differences (eps 1e-6) never cross one."""
    assert Q_TRUE[0] < LO / 100 and 1 - Q_TRUE[1] < (1 - HI) / 3 and CLIPPED.tolist() == [True, True] + [False] * 4
    assert P[2].min() < LO / 100
    for q in P.ravel():
        assert not (LO / 3 < q < 3 * LO) and not (1 - 3 * (1 - HI) < q < 1 - (1 - HI) / 3)


def _loss_of_logits(a: dict) -> float:
    return float(numpy_train.keras_categorical_crossentropy(ref.softmax(a["logits"]), ONEHOT)[0])


def _numpy_grads(logits: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(loss, dL/dp, dL/dlogits) of the clipped cross-entropy of softmax(logits)."""
    p = ref.softmax(logits)
    loss, dp = numpy_train.keras_categorical_crossentropy(p, ONEHOT)
    return float(loss), dp, ref.softmax_vjp(p, dp)


def test_clipped_cross_entropy_gradient_matches_central_differences():
    _, dp, dlogits = _numpy_grads(LOGITS)
    fd = central_differences(_loss_of_logits, {"logits": LOGITS.copy()}, "logits")
    s = error_stats(dlogits, fd)
    assert s.rel <= FD_BAR, f"dL/dlogits: relative error {s.rel:.2e} > {FD_BAR:.0e} at {s.worst_index}"
    np.testing.assert_array_equal(dp[CLIPPED], 0.0)  # the clip's derivative outside [lo, hi]
    np.testing.assert_array_equal(dlogits[CLIPPED], 0.0)
    assert np.abs(fd[CLIPPED]).max() < 1e-8 and np.abs(dlogits[~CLIPPED]).max(axis=1).min() > 1e-3


def test_clipped_cross_entropy_matches_keras_autograd_on_probabilities_and_logits():
    tf, keras = load_framework("tensorflow"), load_framework("keras")
    tf_impl = load("tensorflow")
    loss, dp, dlogits = _numpy_grads(LOGITS)
    probs, logits = tf.constant(P), tf.constant(LOGITS)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([probs, logits])
        k_loss = tf.reduce_mean(keras.losses.categorical_crossentropy(ONEHOT, probs))  # plain tensor: the clip path
        via = tf_impl.softmax(logits)  # exp(x - logsumexp): no Softmax op, no logits attached
        k_loss2 = tf.reduce_mean(keras.losses.categorical_crossentropy(ONEHOT, via))
    check(float(k_loss), loss, "float64", "keras", "softmax_cross_entropy", "keras clipped loss")
    check(tape.gradient(k_loss, probs), dp, "float64", "keras", "softmax_cross_entropy_vjp", "keras dL/dp, saturated")
    check(float(k_loss2), loss, "float64", "keras", "softmax_cross_entropy", "keras clipped loss via logits")
    check(tape.gradient(k_loss2, logits), dlogits, "float64", "keras", "softmax_cross_entropy_vjp",
          "keras dL/dlogits, saturated")  # fmt: skip


def test_clipped_cross_entropy_matches_torch_autograd():
    torch, tb = load_framework("torch"), load("torch_nn")
    loss, dp, dlogits = _numpy_grads(LOGITS)
    logits = torch.from_numpy(LOGITS.copy()).requires_grad_(True)
    probs = torch.softmax(logits, dim=-1)
    probs.retain_grad()
    t_loss = torch.mean(tb.keras_categorical_crossentropy(torch.from_numpy(ONEHOT), probs))
    t_loss.backward()
    check(float(t_loss.detach()), loss, "float64", "torch_nn", "softmax_cross_entropy", "torch clipped loss")
    check(probs.grad.numpy(), dp, "float64", "torch_nn", "softmax_cross_entropy_vjp", "torch dL/dp, saturated")
    check(logits.grad.numpy(), dlogits, "float64", "torch_nn", "softmax_cross_entropy_vjp", "torch dL/dlogits, saturated")


def test_keras_loss_on_a_softmax_output_skips_the_clip():
    """Declared behaviour: a softmax output carries its logits (eagerly an attribute, in a graph the Softmax
    op), and Keras' categorical cross-entropy then computes log-softmax from them: no clip. On saturated
    probabilities that is a different loss (and a non-zero gradient) from the clipped one, which is what a
    keras.Sequential ending in Dense(activation="softmax") trains on."""
    tf, keras = load_framework("tensorflow"), load_framework("keras")
    k_loss = float(tf.reduce_mean(keras.losses.categorical_crossentropy(ONEHOT, keras.activations.softmax(tf.constant(LOGITS)))))
    unclipped = float(ref.softmax_cross_entropy(LOGITS, ONEHOT))
    check(k_loss, unclipped, "float64", "keras", "softmax_cross_entropy", "keras loss on a softmax output")
    assert abs(unclipped - _numpy_grads(LOGITS)[0]) > 1.0


def test_seed_model_gradient_with_saturated_probabilities_matches_torch():
    """The clip acting inside a whole model's backward: the seed CNN with dense2 scaled until some rows
    saturate; numpy_train's hand-written gradients against torch autograd of the same clipped loss."""
    torch, tb = load_framework("torch"), load("torch_nn")
    sizes = {"image": (12, 12, 1), "filters": (2, 3), "dense_units": 6, "classes": 4}
    p = init_seed_cnn(30, **sizes)
    p = p.__class__(p.conv1, p.conv2, p.dense1, p.dense2.map(lambda a: a * 200.0))
    x, onehot = random_array((4, 12, 12, 1), 31, low=0.0, high=1.0), np.eye(4)[[0, 3, 1, 2]]
    probs = seed_models.reference_model(p)(x)
    q = probs[np.arange(4), onehot.argmax(1)]
    assert ((q < LO) | (q > HI)).any() and not ((q < LO) | (q > HI)).all(), f"need saturated and unsaturated rows: {q}"
    loss, grads = numpy_train.seed_cnn_loss_and_grads(p, x, onehot)
    description = seed_models.from_cnn_params(p, sizes["image"])
    net, code = torch_port.load_port(description, "float64")  # the torch port of the seed CNN
    net.requires_grad_(True)
    t_loss = torch.mean(tb.keras_categorical_crossentropy(torch.from_numpy(onehot), net(torch.from_numpy(x))))
    t_loss.backward()
    check(float(t_loss.detach()), float(loss), "float64", "torch_nn", "seed_cnn_model", "saturated seed CNN loss")
    back = torch_port.canonical(description, {k: v.grad.numpy() for k, v in net.named_parameters()}, code)
    for i, (a, b) in enumerate(zip([back[k] for k in description.parameters()], numpy_train.leaves(grads))):
        check(a, b, "float64", "torch_nn", "seed_cnn_model", f"saturated seed CNN gradient {i}")


# --------------------------------------------------------------------------- logits that overflow a naive softmax


def _overflow_logits(shape, seed) -> np.ndarray:
    z = random_array(shape, seed, low=-1000.0, high=1000.0)  # exp(1000) overflows float64 (and float32 at 89)
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(z)).any()
    return z


def _xent_case(b: int, k: int, seed: int) -> OpCase:
    def make():
        return {"logits": _overflow_logits((b, k), seed), "onehot": np.eye(k)[np.random.default_rng(seed).integers(0, k, b)]}

    return OpCase("softmax_cross_entropy_vjp", f"B{b}K{k}-overflow", make,
                  lambda m, a: {"loss": m.softmax_cross_entropy(a["logits"], a["onehot"]),
                                **m.softmax_cross_entropy_vjp(a["logits"], a["onehot"])})  # fmt: skip


OVERFLOW_CASES = [
    OpCase("softmax", "x4x7-overflow", lambda: {"x": _overflow_logits((4, 7), 40)}, lambda m, a: m.softmax(a["x"])),
    _xent_case(5, 6, 41),
]


@pytest.mark.parametrize("case, impl, dtype", matrix(OVERFLOW_CASES))
def test_large_logits_do_not_overflow_in_any_voice(case, impl, dtype):
    mod = load(impl)
    inputs = case.make()
    got_raw = case.call(mod, to_native(mod, inputs, dtype))
    expected_raw = case.call(ref, round_to(inputs, dtype))
    as_list = (lambda m, o: [m.to_numpy(o[k]) for k in sorted(o)]) if isinstance(expected_raw, dict) else outputs
    for i, (g, e) in enumerate(zip(as_list(mod, got_raw), as_list(ref, expected_raw))):
        assert np.isfinite(g).all(), f"{case.id(impl, dtype)} output {i} is not finite: {g}"
        check(g, e, dtype, impl, case.op, f"{case.id(impl, dtype)} output {i}")
