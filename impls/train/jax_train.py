"""Training the seed models with JAX: the loss and its gradients by jax.value_and_grad over the model description
composed from impls/primitives/jax_impl.py's operations (impls/model/compose.py; one jitted step), the update by the NumPy reference's own Adam (impls/numpy_train.adam_update), so a
JAX run differs from numpy_train's only where JAX's loss and gradients do.

The loss is Keras' categorical cross-entropy on the softmax probabilities, as numpy_train writes it:
renormalise p / sum(p), clip to [1e-7, 1 - 1e-7], -sum(t log p), mean over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import backend, frameworks
from ..contract.models import SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
from ..model import seed as seed_models
from ..model.compose import compose
from ..primitives.jax_core import asarray, to_numpy
from . import numpy_train

jax = frameworks.load("jax")
jnp = jax.numpy


def keras_categorical_crossentropy(p, onehot):
    """numpy_train.keras_categorical_crossentropy's loss in jnp; jax.grad gives its gradient (the clip passes
    it inside [eps, 1 - eps], ends included, as jnp.clip's does)."""
    q = p / jnp.sum(p, axis=-1, keepdims=True)
    qc = jnp.clip(q, numpy_train.KERAS_EPSILON, 1.0 - numpy_train.KERAS_EPSILON)
    return jnp.mean(-jnp.sum(onehot * jnp.log(qc), axis=-1))


def _step(description, dtype: str):
    """One jitted (loss, gradients) of the description's weights, nested as compose's weights: [{name: array}]."""
    composed = compose(backend("jax"), description, dtype)  # the JAX voice (jax_impl), which re-exports this trainer
    keys = [list(w) for w in composed.weights]
    step = jax.jit(jax.value_and_grad(lambda ws, x, t: keras_categorical_crossentropy(composed.chain(ws, x), t)))

    def run(leaves: list, x, t) -> tuple:
        it = iter(leaves)
        loss, grads = step([{k: next(it) for k in ks} for ks in keys], x, t)
        return loss, [g[k] for g, ks in zip(grads, keys) for k in ks]  # parameters() order: numpy_train.leaves'

    return run


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
    x0 = batches[0][0]
    description = (seed_models.from_gru_params(params, variant, int(x0.shape[1])) if model == "gru"
                   else seed_models.from_cnn_params(params, tuple(int(d) for d in x0.shape[1:])))  # fmt: skip
    step = _step(description, dtype)
    p = params.map(lambda a: np.asarray(a, dtype=dtype).copy())
    state = numpy_train.adam_init(numpy_train.leaves(p))
    losses = []
    for x, y in batches:
        loss, grads = step([asarray(a, dtype) for a in numpy_train.leaves(p)], asarray(x, dtype), asarray(y, dtype))
        losses.append(float(loss))
        g = [to_numpy(v) for v in grads]
        arrays, state = numpy_train.adam_update(numpy_train.leaves(p), g, state, lr, beta_1, beta_2, eps, flavour)
        p = numpy_train.rebuild(p, arrays)
    return losses, p
