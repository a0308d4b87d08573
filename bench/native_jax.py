"""JAX and Flax pieces of the benchmark: the seed models' loss and gradients as one jitted jax.value_and_grad,
for the fwd+bwd model rows of the `jax` (from primitives) and `flax` (linen Modules) voices. The loss is Keras'
categorical cross-entropy, as numpy_train and bench/native_torch.py compute it. Parameters are arguments of the
jitted function (never constants folded into it); compile(fn, "jit") blocks on the outputs inside the timed call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from impls import backend, convert, frameworks
from impls.contract.models import SeedGRUParams
from impls.model.compose import compose
from impls.train import numpy_train

from . import works

jax = frameworks.load("jax")


def _flax_grads_to_canonical(work: str, g: dict) -> Any:
    if work == "seed_gru_model":  # folded z and r biases: their gradient goes to b_x and b_h alike
        return SeedGRUParams(convert.gru_grads_from_flax(g["gru1"]), convert.gru_grads_from_flax(g["gru2"]),
                             convert.seed_gru_from_flax(g).dense)  # fmt: skip
    return convert.seed_cnn_from_flax(g)


def model_grads(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
                ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """Loss and gradients of every parameter of a seed model: (fn, post -> [loss, *canonical grads], what)."""
    from impls.train.jax_train import keras_categorical_crossentropy as xent

    j = backend("jax")
    x, onehot = j.asarray(a["x"], dtype, device), j.asarray(a["onehot"], dtype, device)
    gru = work == "seed_gru_model"
    if impl == "jax":
        composed = compose(j, works.description(work, a, variant), dtype, device)
        p = composed.weights
        step = jax.jit(jax.value_and_grad(lambda p, x, t: xent(composed.chain(p, x), t)))

        def post(out):  # the description's parameters() order (jax rebuilds each dict with its keys sorted)
            return [np.asarray(out[0]), *(np.asarray(g[k]) for w, g in zip(p, out[1]) for k in w)]

        return (lambda: step(p, x, onehot)), post, "jax.jit(jax.value_and_grad(loss of the whole model))"
    if impl == "flax":
        fb = backend("flax")
        if gru:
            fb.check_variant(variant)
        module = fb.seed_module(a["params"])
        to_flax = convert.seed_gru_to_flax if gru else convert.seed_cnn_to_flax
        tree = jax.tree_util.tree_map(lambda v: j.asarray(v, dtype, device), to_flax(a["params"]))
        step = jax.jit(jax.value_and_grad(lambda t, x, y: xent(module.apply({"params": t}, x), y)))

        def post(out):
            g = _flax_grads_to_canonical(work, jax.tree_util.tree_map(np.asarray, out[1]))
            return [np.asarray(out[0]), *numpy_train.leaves(g)]

        return (lambda: step(tree, x, onehot)), post, "jax.jit(jax.value_and_grad(linen Module.apply + loss))"
    raise ValueError(f"no jax gradient adapter for implementation {impl!r}")
