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

from .. import frameworks
from ..primitives import numpy_impl as ref
from .description import Model
from .layers import spec_of


def _plan(model: Model) -> list[tuple[Any, dict, dict]]:
    """(kind spec, options, op weights in NumPy) per layer, checked."""
    return [(spec_of(la.kind), opts, spec_of(la.kind).op_weights(opts, dict(la.weights)))
            for la in model.layers for opts in (spec_of(la.kind).options(la.options),)]


class Composed:
    """A model over `ops`: `chain(weights, x)` is the whole forward as a function of its weights (what autograd
    differentiates), `weights` the model's op weights in the backend's arrays, `__call__(x)` the forward."""

    def __init__(self, ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None):
        self.ops, self.model, self.dtype = ops, model, dtype
        plan = _plan(model)
        self.weights = [{k: ops.asarray(v, dtype, device) for k, v in w.items()} for _, _, w in plan]

        def chain(ws, x):
            mask = None  # a (B, T) padding mask, from an embedding with mask_zero or a masking layer
            for (kind, opts, _), w in zip(plan, ws, strict=True):
                x, mask = kind.forward_masked(ops, x, mask, opts, w)
            return x

        self.chain = chain
        jit = getattr(ops, "jit_model", None)
        self._forward = jit(chain) if jit is not None else chain

    def __call__(self, x):
        return self._forward(self.weights, x)

    def vjp(self, x, dy) -> tuple[Any, dict[tuple[str, str], Any]]:
        """(dL/dx, {(layer, weight): dL/dweight}) in the backend's arrays, by its own autograd (`ops.chain_vjp`).
        A layer without a bias computes with a zero one; that zero's gradient is not a parameter's, and is left out."""
        dx, gw = self.ops.chain_vjp(self.chain, self.weights, x, dy)
        params = self.model.parameters()
        grads = {(la.name, k): g for la, w in zip(self.model.layers, gw, strict=True) for k, g in w.items()}
        return dx, {k: _back_to_canonical(self.model, k, grads) for k in params}


def _back_to_canonical(model: Model, key: tuple[str, str], grads: dict) -> Any:
    """An op weight's gradient as the canonical weight's: the same array except for a depthwise kernel, which the op
    contract takes grouped (KH, KW, 1, C * M) and the description keeps as (KH, KW, C, M)."""
    layer = model.layers[model.layer_index(key[0])]
    g = grads[key]
    if layer.kind == "depthwise_conv2d" and key[1] == "kernel":
        kh, kw, c, m = layer.weights["kernel"].shape
        if not hasattr(g, "reshape"):  # a TensorFlow tensor has no .reshape method
            return frameworks.load("tensorflow").reshape(g, (kh, kw, c, m))
        return g.reshape(kh, kw, c, m)
    return g


def compose(ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None) -> Composed:
    """model's forward with `ops`' operations only; weights in `dtype` on `device`."""
    return Composed(ops, model, dtype, device)


def layer_forwards(ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None) -> list[Callable]:
    """One forward per layer (each fed its own input): for per-layer checks in a voice."""
    return [compose(ops, model.sub(i), dtype, device) for i in range(len(model.layers))]


def _reference_run(model: Model, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """(every layer's output, every layer's input mask) of the NumPy reference, in the float dtype of x or of
    the model's weights where x holds integer ids."""
    model.check_input(x)
    outs, masks, mask = [], [], None
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else _weight_dtype(model)
    for kind, opts, w in _plan(model):
        masks.append(mask)
        x, mask = kind.forward_masked(ref, x, mask, opts, {k: np.asarray(v, dtype) for k, v in w.items()})
        outs.append(x)
    return outs, masks


def _weight_dtype(model: Model):
    for la in model.layers:
        for a in la.weights.values():
            return np.asarray(a).dtype
    return np.dtype("float64")


def reference_outputs(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """The NumPy reference's output of every layer, in x's dtype (float64 for the reference; for integer ids, the
    weights' dtype)."""
    return _reference_run(model, x)[0]


def reference_forward(model: Model, x: np.ndarray) -> np.ndarray:
    return reference_outputs(model, x)[-1]


def reference_vjp(model: Model, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """(dL/dx, {(layer name, weight name): dL/dweight}) for L = <dy, model(x)>: each layer's hand-written vjp,
    last layer first, on the inputs (and padding masks) the forward gave it. dL/dx is None for integer ids."""
    plan = _plan(model)
    outs, masks = _reference_run(model, x)
    inputs = [x, *outs[:-1]]
    grads: dict[tuple[str, str], np.ndarray] = {}
    g = dy
    for layer, (kind, opts, _), xi, mi in reversed(list(zip(model.layers, plan, inputs, masks, strict=True))):
        w = {k: np.asarray(v, dy.dtype) for k, v in layer.weights.items()}
        g, gw = kind.vjp_masked(xi, mi, opts, w, g)
        for name, a in gw.items():
            grads[(layer.name, name)] = a
    return g, {k: grads[k] for k in model.parameters()}


__all__ = ["Composed", "compose", "layer_forwards", "reference_forward", "reference_outputs", "reference_vjp"]
