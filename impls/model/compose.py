"""Any model description over an op-contract backend, and the NumPy float64 reference with its backward chain.

    forward = compose(impls.backend("torch"), model, "float32")     # native array in, native array out
    outs = reference_outputs(model, x)                              # float64, one array per layer
    dx, grads = reference_vjp(model, x, dy)                         # hand-written backward, layer by layer

The chain is written once, here: each layer's kind (impls/model/layers/) says which of the backend's operations it
is. Weights are converted to the backend's arrays once, when the forward is built, so a timed call converts nothing.
A backend with `jit_model` (JAX) compiles the whole chain as one program of (weights, x).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..primitives import numpy_impl as ref
from .description import Model
from .layers import spec_of


def _plan(model: Model) -> list[tuple[Any, dict, dict]]:
    """(kind spec, options, op weights in NumPy) per layer, checked."""
    return [(spec_of(la.kind), opts, spec_of(la.kind).op_weights(opts, dict(la.weights)))
            for la in model.layers for opts in (spec_of(la.kind).options(la.options),)]


def compose(ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None) -> Callable:
    """model's forward with `ops`' operations only; weights in `dtype` on `device`."""
    plan = _plan(model)
    weights = [{k: ops.asarray(v, dtype, device) for k, v in w.items()} for _, _, w in plan]

    def chain(ws, x):
        for (kind, opts, _), w in zip(plan, ws, strict=True):
            x = kind.forward(ops, x, opts, w)
        return x

    jit = getattr(ops, "jit_model", None)
    if jit is not None:
        fn = jit(chain)
        return lambda x: fn(weights, x)
    return lambda x: chain(weights, x)


def layer_forwards(ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None) -> list[Callable]:
    """One forward per layer (each fed its own input): for per-layer checks in a voice."""
    return [compose(ops, model.sub(i), dtype, device) for i in range(len(model.layers))]


def reference_outputs(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """The NumPy reference's output of every layer, in x's dtype (float64 for the reference)."""
    outs = []
    for kind, opts, w in _plan(model):
        x = kind.forward(ref, x, opts, {k: np.asarray(v, x.dtype) for k, v in w.items()})
        outs.append(x)
    return outs


def reference_forward(model: Model, x: np.ndarray) -> np.ndarray:
    return reference_outputs(model, x)[-1]


def reference_vjp(model: Model, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """(dL/dx, {(layer name, weight name): dL/dweight}) for L = <dy, model(x)>: each layer's hand-written vjp,
    last layer first, on the inputs the forward gave it."""
    plan = _plan(model)
    inputs = [x, *reference_outputs(model, x)[:-1]]
    grads: dict[tuple[str, str], np.ndarray] = {}
    g = dy
    for layer, (kind, opts, _), xi in reversed(list(zip(model.layers, plan, inputs, strict=True))):
        w = {k: np.asarray(v, xi.dtype) for k, v in layer.weights.items()}
        g, gw = kind.vjp(xi, opts, w, g)
        for name, a in gw.items():
            grads[(layer.name, name)] = a
    return g, {k: grads[k] for k in model.parameters()}


__all__ = ["compose", "layer_forwards", "reference_forward", "reference_outputs", "reference_vjp"]
