"""JAX and Flax pieces of the benchmark: the seed models' loss and gradients as one jitted jax.value_and_grad,
for the fwd+bwd model rows of the `jax` (from primitives) and `flax` (linen Modules) voices. The loss is Keras'
categorical cross-entropy, as numpy_train and bench/native_torch.py compute it. Parameters are arguments of the
jitted function (never constants folded into it); compile(fn, "jit") blocks on the outputs inside the timed call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from impls import backend, frameworks
from impls.model.compose import compose

from . import works

jax = frameworks.load("jax")


def model_grads(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
                ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """Loss and gradients of every parameter of a seed model: (fn, post -> [loss, *canonical grads], what)."""
    from impls.train.jax_train import keras_categorical_crossentropy as xent

    j = backend("jax")
    x, onehot = j.asarray(a["x"], dtype, device), j.asarray(a["onehot"], dtype, device)
    if impl == "jax":
        composed = compose(j, works.description(work, a, variant), dtype, device)
        p = composed.weights
        step = jax.jit(jax.value_and_grad(lambda p, x, t: xent(composed.chain(p, x), t)))

        def post(out):  # the description's parameters() order (jax rebuilds each dict with its keys sorted)
            return [np.asarray(out[0]), *(np.asarray(g[k]) for w, g in zip(p, out[1]) for k in w)]

        return (lambda: step(p, x, onehot)), post, "jax.jit(jax.value_and_grad(loss of the whole model))"
    if impl == "flax":
        from impls.ports import flax_port

        description = works.description(work, a, variant)
        module, variables = flax_port.load_port(description, dtype)  # the port nnparity writes, loaded by its load()
        tree = jax.tree_util.tree_map(lambda v: j.asarray(v, dtype, device), variables["params"])
        step = jax.jit(jax.value_and_grad(lambda t, x, y: xent(module.apply({"params": t}, x), y)))

        def post(out):
            g = flax_port.canonical(description, jax.tree_util.tree_map(np.asarray, out[1]), gradients=True)
            return [np.asarray(out[0]), *(g[k] for k in description.parameters())]

        return (lambda: step(tree, x, onehot)), post, "jax.jit(jax.value_and_grad(the Flax port's apply + loss))"
    raise ValueError(f"no jax gradient adapter for implementation {impl!r}")
