"""Training the seed models with JAX: the loss and its gradients by jax.value_and_grad over impls/primitives/jax_impl.py's
models (one jitted step), the update by the NumPy reference's own Adam (impls/numpy_train.adam_update), so a
JAX run differs from numpy_train's only where JAX's loss and gradients do.

The loss is Keras' categorical cross-entropy on the softmax probabilities, as numpy_train writes it:
renormalise p / sum(p), clip to [1e-7, 1 - 1e-7], -sum(t log p), mean over the batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .. import frameworks
from ..contract.models import SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
from ..primitives.jax_impl import _model, asarray, to_numpy
from . import numpy_train

jax = frameworks.load("jax")
jnp = jax.numpy


def keras_categorical_crossentropy(p, onehot):
    """numpy_train.keras_categorical_crossentropy's loss in jnp; jax.grad gives its gradient (the clip passes
    it inside [eps, 1 - eps], ends included, as jnp.clip's does)."""
    q = p / jnp.sum(p, axis=-1, keepdims=True)
    qc = jnp.clip(q, numpy_train.KERAS_EPSILON, 1.0 - numpy_train.KERAS_EPSILON)
    return jnp.mean(-jnp.sum(onehot * jnp.log(qc), axis=-1))


@functools.cache
def _step(model: str, variant: str | None):
    forward = _model(model, variant)
    return jax.jit(jax.value_and_grad(lambda p, x, t: keras_categorical_crossentropy(forward(p, x), t)))


def train_seed_model(
    model: str,
    params: SeedGRUParams | SeedCNNParams,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    lr: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float | None = None,
    dtype: str = "float64",
    flavour: str = "keras",
    variant: str = SEED_GRU_VARIANT,
) -> tuple[list[float], SeedGRUParams | SeedCNNParams]:
    """len(batches) steps of a seed model ("gru" or "cnn"): JAX's loss and gradients, numpy_train's Adam in
    `flavour`'s convention (eps None: its default). losses[i] is batch i's mean loss before update i.
    Returns (losses, final canonical NumPy params of `dtype`)."""
    if model not in ("gru", "cnn"):
        raise ValueError(f"unknown seed model {model!r}; valid: 'gru', 'cnn'")
    step = _step(model, variant if model == "gru" else None)
    p = params.map(lambda a: np.asarray(a, dtype=dtype).copy())
    state = numpy_train.adam_init(numpy_train.leaves(p))
    losses = []
    for x, y in batches:
        loss, grads = step(p.map(lambda a: asarray(a, dtype)), asarray(x, dtype), asarray(y, dtype))
        losses.append(float(loss))
        g = [to_numpy(v) for v in numpy_train.leaves(grads)]
        arrays, state = numpy_train.adam_update(numpy_train.leaves(p), g, state, lr, beta_1, beta_2, eps, flavour)
        p = numpy_train.rebuild(p, arrays)
    return losses, p
