"""One training step of any model description in the NumPy reference, in each framework's stated Adam convention.

The loss is decided by the model, once, here (every framework's step uses the same kind):
- a model whose output is a softmax (its last layer's `activation`, or an Activation layer) trains on categorical
  cross-entropy against one-hot targets, the mean over the batch. Keras computes it from the softmax's logits
  (declared in DESIGN.md, "The training loss's branches"); with no probability under 1e-7 that equals the
  clipped form, and `check_unsaturated` refuses inputs where it would not;
- any other model trains on the mean squared error over every output element.

Dropout is off (a step is taken in inference mode), so every voice computes the same function.
Adam's conventions are impls/train/numpy_train.py's (`FLAVOURS`, `DEFAULT_EPS`): Keras adds eps to the
uncorrected sqrt(v) (eps 1e-7), torch and optax to the corrected one (eps 1e-8).
"""

from __future__ import annotations

import numpy as np

from ..train import numpy_train
from .compose import reference_forward, reference_train, reference_train_vjp, reference_vjp
from .description import Model

LOSSES = ("categorical_crossentropy", "mse")
FRAMEWORK_ADAM = {"keras": ("keras", 1e-7), "torch_nn": ("torch", 1e-8), "flax": ("torch", 1e-8)}
"""voice -> (numpy_train flavour, its default eps): optax.adam's update is torch's (eps added after the
bias-corrected sqrt(v), eps_root 0)."""
LR = 1e-3


def loss_kind(model: Model) -> str:
    last = model.layers[-1]
    act = last.options.get("activation", "linear")
    return "categorical_crossentropy" if act == "softmax" else "mse"


def targets(model: Model, y: np.ndarray, seed: int) -> np.ndarray:
    """Seeded targets of y's shape: one-hot classes for cross-entropy, uniform values for the squared error."""
    g = np.random.default_rng(seed)
    if loss_kind(model) == "categorical_crossentropy":
        flat = y.reshape(-1, y.shape[-1])
        onehot = np.zeros_like(flat)
        onehot[np.arange(flat.shape[0]), g.integers(0, flat.shape[1], flat.shape[0])] = 1.0
        return onehot.reshape(y.shape)
    return g.uniform(-1.0, 1.0, y.shape).astype(y.dtype)


def loss_and_dy(kind: str, y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """(loss, dL/dy) in NumPy. Cross-entropy is -sum(t log y) over the last axis, meaned over the other axes."""
    if kind == "categorical_crossentropy":
        n = int(np.prod(y.shape[:-1]))
        return float(-np.sum(t * np.log(y)) / n), -t / y / n
    if kind == "mse":
        return float(np.mean((y - t) ** 2)), 2.0 * (y - t) / y.size
    raise ValueError(f"unknown loss {kind!r}; losses: {LOSSES}")


def check_unsaturated(y: np.ndarray) -> None:
    if np.min(y) < numpy_train.KERAS_EPSILON:
        raise ValueError(f"a probability {np.min(y):.3g} is under Keras' clip 1e-7: the frameworks' losses would differ")


def reference_gradients(model: Model, x: np.ndarray, t: np.ndarray,
                        dtype: str = "float64") -> tuple[float, dict[tuple[str, str], np.ndarray], dict]:  # fmt: skip
    """(loss, {(layer, weight): its gradient}, {(layer, state weight): a BatchNorm's moving statistics after the
    step}) of the reference's training forward and backward: a model with state runs in training mode (batch
    statistics; dropout stays off)."""
    m = model.astype(dtype)
    x = np.asarray(x) if np.issubdtype(np.asarray(x).dtype, np.integer) else np.asarray(x, dtype)  # ids stay ids
    kind = loss_kind(m)
    state: dict = {}
    if m.state():  # BatchNorm: the step normalises by the batch and moves the moving statistics
        y = reference_train(m, x)[0][-1]
        loss, dy = loss_and_dy(kind, y, np.asarray(t, dtype))
        _, grads, state = reference_train_vjp(m, x, dy)
    else:
        y = reference_forward(m, x)
        loss, dy = loss_and_dy(kind, y, np.asarray(t, dtype))
        _, grads = reference_vjp(m, x, dy)
    return loss, grads, state


def adam_step(model: Model, grads: dict[tuple[str, str], np.ndarray], flavour: str, eps: float | None = None,
              lr: float = LR, dtype: str = "float64") -> dict[tuple[str, str], np.ndarray]:  # fmt: skip
    """{(layer, weight): the weight after one Adam step from zero moments} in `flavour`'s convention."""
    params = model.astype(dtype).parameters()
    keys = list(params)
    new, _ = numpy_train.adam_update([params[k] for k in keys], [grads[k] for k in keys],
                                     numpy_train.adam_init([params[k] for k in keys]), lr=lr, eps=eps, flavour=flavour)  # fmt: skip
    return dict(zip(keys, new, strict=True))


def reference_step(model: Model, x: np.ndarray, t: np.ndarray, flavour: str, eps: float | None = None, lr: float = LR,
                   dtype: str = "float64") -> tuple[float, dict[tuple[str, str], np.ndarray]]:  # fmt: skip
    """(loss before the step, {(layer, weight): the weight after one Adam step, and (layer, state weight): a
    BatchNorm's moving statistics after the step}) in `flavour`'s convention. A model with state takes its step in
    training mode (batch statistics; dropout stays off)."""
    loss, grads, state = reference_gradients(model, x, t, dtype)
    return loss, {**adam_step(model, grads, flavour, eps, lr, dtype), **state}


__all__ = ["FRAMEWORK_ADAM", "LOSSES", "LR", "adam_step", "check_unsaturated", "loss_and_dy", "loss_kind", "reference_gradients",
           "reference_step", "targets"]
