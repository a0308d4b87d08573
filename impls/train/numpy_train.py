"""Training the seed models in NumPy: forward and backward built from numpy_impl's hand-written vjps,
the loss as Keras computes it, and Adam written out in both published conventions.

Loss: categorical cross-entropy on the softmax probabilities, as keras/src/backend/tensorflow/nn.py
computes it for from_logits=False: renormalise p / sum(p), clip to [1e-7, 1 - 1e-7], -sum(t log p),
then the mean over the batch. (In a compiled Keras train step the Softmax output carries its logits
and Keras uses softmax_cross_entropy_with_logits instead; the two agree to rounding while no
probability falls below 1e-7, which is the case in these runs.)

Adam (Kingma & Ba 2015, Algorithm 1): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, both from zero;
step t = 1, 2, ... The two frameworks finish differently (keras/src/optimizers/adam.py,
torch/optim/adam.py, single-tensor path):
    torch:  p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)          eps = 1e-8
    keras:  p <- p - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)             eps = 1e-7
Keras folds both bias corrections into the step size (the paper's "more efficient" ordering at the end
of its section 2), so its eps is added to the un-corrected sqrt(v): keras with eps_k equals torch with
eps_t = eps_k / sqrt(1 - b2^t). The same eps therefore means a larger effective eps in Keras early on
(1 / sqrt(1 - 0.999) ~ 31.6x at t = 1), on top of the different defaults. Each flavour here follows its
framework's operation order and where each scalar is computed (Keras in the variable's dtype, torch
in Python floats), so float32 runs round like the framework they mirror.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract.models import SEED_CNN_POOL, SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
from ..contract.spec import ConvWeights, DenseWeights, GRUWeights
from ..primitives import numpy_impl as ref

FLAVOURS = ("keras", "torch")
DEFAULT_EPS = {"keras": 1e-7, "torch": 1e-8}  # keras.optimizers.Adam and torch.optim.Adam defaults
KERAS_EPSILON = 1e-7  # keras.config.epsilon(): the clip in categorical cross-entropy


# --------------------------------------------------------------------------- loss


def keras_categorical_crossentropy(p: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the batch of -sum(t log clip(p / sum p)), and its gradient with respect to p.
    p, onehot (B, K) -> (scalar loss, dL/dp (B, K))."""
    if p.shape != onehot.shape or p.ndim != 2:
        raise ref.spec.ShapeError(f"categorical cross-entropy: p.shape={p.shape}, onehot.shape={onehot.shape}")
    t = onehot.astype(p.dtype)
    s = np.sum(p, axis=-1, keepdims=True)
    q = p / s  # renormalised
    lo, hi = KERAS_EPSILON, 1.0 - KERAS_EPSILON
    qc = np.clip(q, lo, hi)
    B = p.shape[0]
    loss = np.mean(-np.sum(t * np.log(qc), axis=-1))
    dqc = -t / qc / B
    dq = dqc * ((q >= lo) & (q <= hi))  # clip passes the gradient inside [lo, hi], ends included (TF's)
    dp = dq / s - np.sum(dq * p, axis=-1, keepdims=True) / (s * s)
    return np.asarray(loss, dtype=p.dtype), dp


# --------------------------------------------------------------------------- the seed models, forward and backward


def seed_gru_loss_and_grads(
    params: SeedGRUParams, x: np.ndarray, onehot: np.ndarray, variant: str = SEED_GRU_VARIANT
) -> tuple[np.ndarray, SeedGRUParams]:
    """GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax) -> loss; gradients by the vjps."""
    p = params
    tape1 = ref.gru_forward(x, p.gru1, variant)  # y (B, T, 128)
    tape2 = ref.gru_forward(tape1.y, p.gru2, variant)  # y (B, T, 64)
    h2 = tape2.y[:, -1]  # (B, 64)
    probs = ref.softmax(ref.dense(h2, p.dense.kernel, p.dense.bias))  # (B, 10)
    loss, dprobs = keras_categorical_crossentropy(probs, onehot)

    dlogits = ref.softmax_vjp(probs, dprobs)
    g_dense = ref.dense_vjp(h2, p.dense.kernel, p.dense.bias, dlogits)
    g2 = ref.gru_backward(tape2, None, g_dense["x"])  # only h_T of the second GRU is used
    g1 = ref.gru_backward(tape1, g2["x"])

    def w(g):
        return GRUWeights(g["W"], g["U"], g["b_x"], g["b_h"])

    return loss, SeedGRUParams(w(g1), w(g2), DenseWeights(g_dense["kernel"], g_dense["bias"]))


def seed_cnn_loss_and_grads(params: SeedCNNParams, x: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, SeedCNNParams]:
    """Conv(relu) -> pool -> Conv(relu) -> pool -> Flatten -> Dense(relu) -> Dense(softmax) -> loss."""
    p, k = params, SEED_CNN_POOL
    a1 = ref.conv2d(x, p.conv1.kernel, p.conv1.bias)  # (B, 26, 26, 32)
    r1 = ref.relu(a1)
    m1 = ref.max_pool2d(r1, k)  # (B, 13, 13, 32)
    a2 = ref.conv2d(m1, p.conv2.kernel, p.conv2.bias)  # (B, 11, 11, 64)
    r2 = ref.relu(a2)
    m2 = ref.max_pool2d(r2, k)  # (B, 5, 5, 64)
    f = m2.reshape(m2.shape[0], -1)  # (B, 1600), NHWC flatten as Keras
    a3 = ref.dense(f, p.dense1.kernel, p.dense1.bias)  # (B, 128)
    r3 = ref.relu(a3)
    probs = ref.softmax(ref.dense(r3, p.dense2.kernel, p.dense2.bias))  # (B, 10)
    loss, dprobs = keras_categorical_crossentropy(probs, onehot)

    g4 = ref.dense_vjp(r3, p.dense2.kernel, p.dense2.bias, ref.softmax_vjp(probs, dprobs))
    g3 = ref.dense_vjp(f, p.dense1.kernel, p.dense1.bias, ref.relu_vjp(a3, g4["x"])["x"])
    dm2 = g3["x"].reshape(m2.shape)
    g2 = ref.conv2d_vjp(m1, p.conv2.kernel, p.conv2.bias, ref.relu_vjp(a2, ref.max_pool2d_vjp(r2, dm2, k)["x"])["x"])
    g1 = ref.conv2d_vjp(x, p.conv1.kernel, p.conv1.bias, ref.relu_vjp(a1, ref.max_pool2d_vjp(r1, g2["x"], k)["x"])["x"])
    return loss, SeedCNNParams(
        ConvWeights(g1["kernel"], g1["bias"]), ConvWeights(g2["kernel"], g2["bias"]),
        DenseWeights(g3["kernel"], g3["bias"]), DenseWeights(g4["kernel"], g4["bias"]),
    )  # fmt: skip


# --------------------------------------------------------------------------- Adam


@dataclass(frozen=True)
class AdamState:
    step: int  # updates done so far
    m: tuple[np.ndarray, ...]  # first moments, one per parameter array
    v: tuple[np.ndarray, ...]  # second moments


def adam_init(params: list[np.ndarray]) -> AdamState:
    return AdamState(0, tuple(np.zeros_like(p) for p in params), tuple(np.zeros_like(p) for p in params))


def adam_update(
    params: list[np.ndarray],
    grads: list[np.ndarray],
    state: AdamState,
    lr: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float | None = None,
    flavour: str = "keras",
) -> tuple[list[np.ndarray], AdamState]:
    """One Adam step in `flavour`'s convention (see the module docstring); returns new arrays and state."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown Adam flavour {flavour!r}; valid: {', '.join(FLAVOURS)}")
    eps = DEFAULT_EPS[flavour] if eps is None else eps
    t = state.step + 1
    new_p, new_m, new_v = [], [], []
    for p, g, m, v in zip(params, grads, state.m, state.v, strict=True):
        g = g.astype(p.dtype)
        if flavour == "keras":  # keras/src/optimizers/adam.py update_step, scalars in the variable's dtype
            dt = p.dtype.type
            b1, b2 = dt(beta_1), dt(beta_2)  # as keras_builtin hands them over: tensors of the dtype
            alpha = dt(lr) * np.sqrt(1 - b2 ** dt(t)) / (1 - b1 ** dt(t))
            m = m + (g - m) * (1 - b1)
            v = v + (g * g - v) * (1 - b2)
            p = p - (m * alpha) / (np.sqrt(v) + eps)
        else:  # torch/optim/adam.py _single_tensor_adam, scalars in Python floats
            bias_correction1 = 1 - beta_1**t
            bias_correction2_sqrt = (1 - beta_2**t) ** 0.5
            step_size = lr / bias_correction1
            m = m + (1 - beta_1) * (g - m)  # exp_avg.lerp_(grad, 1 - beta1)
            v = v * beta_2 + (1 - beta_2) * g * g  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
            denom = np.sqrt(v) / bias_correction2_sqrt + eps
            p = p + (-step_size) * m / denom  # param.addcdiv_(exp_avg, denom, value=-step_size)
        new_p.append(p)
        new_m.append(m)
        new_v.append(v)
    return new_p, AdamState(t, tuple(new_m), tuple(new_v))


def adam_first_step_sensitivity(g: np.ndarray, flavour: str, eps: float | None = None, lr: float = 1e-3,
                                beta_2: float = 0.999) -> np.ndarray:  # fmt: skip
    """|d(update)/dg| per element for the FIRST Adam step from zero moments, in `flavour`'s convention: how far a
    gradient error moves the weight after the step. At t = 1 both conventions reduce to update = lr g / (|g| + e):
    torch and optax with e = eps (added to the bias-corrected sqrt(v)), Keras with e = eps / sqrt(1 - beta_2) (added to
    the uncorrected sqrt(v) = sqrt(1 - beta_2) |g|). So d(update)/dg = lr e / (|g| + e)^2: lr / e where g is 0, and
    lr / (4 e) at |g| = e, where a rounding of 1e-16 in g moves the weight by about 2.5e-9 lr / 1e-3 (torch's e 1e-8)."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown Adam flavour {flavour!r}; valid: {', '.join(FLAVOURS)}")
    eps = DEFAULT_EPS[flavour] if eps is None else eps
    e = eps / np.sqrt(1.0 - beta_2) if flavour == "keras" else eps
    return lr * e / (np.abs(np.asarray(g, np.float64)) + e) ** 2


# --------------------------------------------------------------------------- training


def leaves(params) -> list[np.ndarray]:
    """The parameter arrays of a canonical params dataclass, in its fields' order."""
    out: list[np.ndarray] = []
    params.map(lambda a: out.append(a) or a)
    return out


def rebuild(params, arrays: list[np.ndarray]):
    """`params` with its arrays replaced, in leaves() order."""
    it = iter(arrays)
    return params.map(lambda _: next(it))


def train_seed_model(
    model: str,
    params: SeedGRUParams | SeedCNNParams,
    batches: list[tuple[np.ndarray, np.ndarray]],
    lr: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float | None = None,
    dtype="float64",
    flavour: str = "keras",
    variant: str = SEED_GRU_VARIANT,
) -> tuple[list[float], SeedGRUParams | SeedCNNParams]:
    """len(batches) Adam steps of a seed model ("gru" or "cnn") from canonical `params`.
    losses[i] is the mean loss of batch i before update i; eps None means `flavour`'s default.
    Returns (losses, final canonical params as NumPy arrays of `dtype`)."""
    if model == "gru":

        def loss_and_grads(p, x, y):
            return seed_gru_loss_and_grads(p, x, y, variant)
    elif model == "cnn":
        loss_and_grads = seed_cnn_loss_and_grads
    else:
        raise ValueError(f"unknown seed model {model!r}; valid: 'gru', 'cnn'")
    dtype = np.dtype(dtype)
    p = params.map(lambda a: np.asarray(a, dtype=dtype).copy())
    state = adam_init(leaves(p))
    losses = []
    for x, y in batches:
        loss, grads = loss_and_grads(p, np.asarray(x, dtype=dtype), np.asarray(y, dtype=dtype))
        losses.append(float(loss))
        arrays, state = adam_update(leaves(p), leaves(grads), state, lr, beta_1, beta_2, eps, flavour)
        p = rebuild(p, arrays)
    return losses, p
