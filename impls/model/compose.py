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


def _plan(model: Model) -> list[tuple[Any, dict, dict, tuple[int, ...], bool]]:
    """(kind spec, options, op weights in NumPy, positions of the tensors it reads (-1: the input), whether a padding
    mask reaches it) per layer, checked."""
    sources = model.mask_sources()
    return [(spec_of(la.kind), opts, spec_of(la.kind).op_weights(opts, dict(la.weights)), model.source_indices(i),
             sources[i] is not None)
            for i, la in enumerate(model.layers) for opts in (spec_of(la.kind).options(la.options),)]


def _run(plan, ops, ws, x, state: dict | None = None):
    """Every layer's (output, its mask) in order: what the chain and the reference share. With a `state` dict (the
    NumPy reference in training mode), a kind with state (BatchNorm) runs its forward_train and leaves its new state
    there, keyed by layer position."""
    env: list[tuple[Any, Any]] = []
    for i, ((kind, opts, _, srcs, masked), w) in enumerate(zip(plan, ws, strict=True)):
        ins = [(x, None) if j < 0 else env[j] for j in srcs]
        if state is not None and kind.STATE:
            y, state[i] = kind.forward_train(ins[0][0], opts, w)
            env.append((y, ins[0][1] if kind.makes_mask(opts, ins[0][1] is not None) else None))
        elif kind.ARITY == 1:
            env.append(kind.forward_masked(ops, ins[0][0], ins[0][1], opts, w))
        else:
            env.append(kind.forward_masked(ops, [a for a, _ in ins], ins[0][1] if masked else None, opts, w))
    return env


class Composed:
    """A model over `ops`: `chain(weights, x)` is the whole forward as a function of its weights (what autograd
    differentiates), `weights` the model's op weights in the backend's arrays, `__call__(x)` the forward."""

    def __init__(self, ops: ModuleType, model: Model, dtype: str = "float64", device: str | None = None,
                 like: Composed | None = None):  # fmt: skip
        self.ops, self.model, self.dtype, self.device = ops, model, dtype, device
        plan = _plan(model)
        self.weights = [{k: ops.asarray(v, dtype, device) for k, v in w.items()} for _, _, w, _, _ in plan]
        if like is not None:  # the same structure: its (compiled) functions serve these weights too
            self.chain, self._forward, self._outputs = like.chain, like._forward, like._outputs
            return

        def chain(ws, x):
            return _run(plan, ops, ws, x)[-1][0]

        def outputs(ws, x):
            return [y for y, _ in _run(plan, ops, ws, x)]

        self.chain = chain
        jit = getattr(ops, "jit_model", None)
        self._forward = jit(chain) if jit is not None else chain
        self._outputs = jit(outputs) if jit is not None else outputs  # JAX compiles it on its first call only

    def __call__(self, x):
        return self._forward(self.weights, x)

    def outputs(self, x) -> list:
        """Every layer's output, in order, from one forward (the backend's arrays)."""
        return self._outputs(self.weights, x)

    def rebind(self, model: Model) -> Composed:
        """`model` (the same structure: kinds, options, shapes; other weights, other names) through this one's
        functions: nothing is traced or compiled again."""
        return Composed(self.ops, model, self.dtype, self.device, like=self)

    def vjp(self, x, dy) -> tuple[Any, dict[tuple[str, str], Any]]:
        """(dL/dx, {(layer, weight): dL/dweight}) in the backend's arrays, by its own autograd (`ops.chain_vjp`).
        A layer without a bias computes with a zero one; that zero's gradient is not a parameter's, and is left out,
        as are a BatchNorm's moving statistics (state, not parameters)."""
        dx, gw = self.ops.chain_vjp(self.chain, self.weights, x, dy)
        params = self.model.parameters()
        grads = {(la.name, k): g for la, w in zip(self.model.layers, gw, strict=True) for k, g in w.items()}
        return dx, {k: _back_to_canonical(self.model, k, grads) for k in params}


def _back_to_canonical(model: Model, key: tuple[str, str], grads: dict) -> Any:
    """An op weight's gradient as the canonical weight's: the same array except for a depthwise kernel, which the op
    contract takes grouped (KH, KW, 1, C * M) and the description keeps as (KH, KW, C, M) (a separable one's too)."""
    layer = model.layers[model.layer_index(key[0])]
    g = grads[key]
    if (layer.kind, key[1]) in (("depthwise_conv2d", "kernel"), ("separable_conv2d", "depthwise_kernel")):
        kh, kw, c, m = layer.weights[key[1]].shape
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


def _reference_run(model: Model, x: np.ndarray, train: bool = False) -> tuple[list, list, dict]:
    """(every layer's output, every layer's input mask, {(layer, state weight): after the step} in training mode)
    of the NumPy reference, in the float dtype of x or of the model's weights where x holds integer ids."""
    model.check_input(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else _weight_dtype(model)
    plan = _plan(model)
    ws = [{k: np.asarray(v, dtype) for k, v in w.items()} for _, _, w, _, _ in plan]
    state: dict[int, dict] | None = {} if train else None
    env = _run(plan, ref, ws, x, state)
    masks = [None if not masked else (env[srcs[0]][1] if srcs[0] >= 0 else None) for _, _, _, srcs, masked in plan]
    new_state = {(model.layers[i].name, k): v for i, st in (state or {}).items() for k, v in st.items()}
    return [y for y, _ in env], masks, new_state


def _weight_dtype(model: Model):
    for la in model.layers:
        for a in la.weights.values():
            return np.asarray(a).dtype
    return np.dtype("float64")


def reference_outputs(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """The NumPy reference's output of every layer, in x's dtype (float64 for the reference; for integer ids, the
    weights' dtype)."""
    return _reference_run(model, x)[0]


def reference_inputs(model: Model, x: np.ndarray, outs: list[np.ndarray] | None = None) -> list:
    """What each layer reads in the reference: an array, or a list of them for a merge."""
    outs = reference_outputs(model, x) if outs is None else outs
    picked = []
    for i, la in enumerate(model.layers):
        ins = [x if j < 0 else outs[j] for j in model.source_indices(i)]
        picked.append(ins[0] if spec_of(la.kind).ARITY == 1 else ins)
    return picked


def reference_forward(model: Model, x: np.ndarray) -> np.ndarray:
    return reference_outputs(model, x)[-1]


def _backward(model: Model, x: np.ndarray, dy: np.ndarray, inputs: list, masks: list, step) -> tuple[Any, dict]:
    """Reverse topological order; a tensor read by several layers sums their gradients. `step(i, kind, opts, w,
    x_i, mask_i, g)` is one layer's backward -> (dx_i or a list of them, {weight: gradient})."""
    plan = _plan(model)
    acc: dict[int, Any] = {len(model.layers) - 1: dy}
    grads: dict[tuple[str, str], np.ndarray] = {}
    for i in range(len(model.layers) - 1, -1, -1):
        layer, (kind, opts, _, srcs, _) = model.layers[i], plan[i]
        g = acc.pop(i)
        w = {k: np.asarray(v, dy.dtype) for k, v in layer.weights.items()}
        gx, gw = step(i, kind, opts, w, inputs[i], masks[i], g)
        for name, a in gw.items():
            grads[(layer.name, name)] = a
        for j, gj in zip(srcs, gx if kind.ARITY != 1 else [gx], strict=True):
            if gj is None:
                acc.setdefault(j, None)
                continue
            acc[j] = gj if acc.get(j) is None else acc[j] + gj
    return acc.get(-1), {k: grads[k] for k in model.parameters()}


def reference_vjp(model: Model, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
    """(dL/dx, {(layer name, weight name): dL/dweight}) for L = <dy, model(x)>: each layer's hand-written vjp,
    last layer first, on the inputs (and padding masks) the forward gave it. dL/dx is None for integer ids."""
    outs, masks, _ = _reference_run(model, x)
    inputs = reference_inputs(model, x, outs)
    return _backward(model, x, dy, inputs, masks,
                     lambda i, kind, opts, w, xi, mi, g: kind.vjp_masked(xi, mi, opts, w, g))


def reference_train(model: Model, x: np.ndarray) -> tuple[list[np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """Training mode (BatchNorm on the batch's statistics; dropout stays off, as every training step here runs it):
    (every layer's output, {(layer, state weight): its value after the step})."""
    outs, _, state = _reference_run(model, x, train=True)
    return outs, state


def reference_train_vjp(model: Model, x: np.ndarray, dy: np.ndarray):
    """(dL/dx, {(layer, weight): gradient}, {(layer, state weight): after the step}) in training mode."""
    outs, masks, state = _reference_run(model, x, train=True)
    inputs = reference_inputs(model, x, outs)

    def step(i, kind, opts, w, xi, mi, g):
        return kind.vjp_train(xi, opts, w, g) if kind.STATE else kind.vjp_masked(xi, mi, opts, w, g)

    dx, grads = _backward(model, x, dy, inputs, masks, step)
    return dx, grads, state


__all__ = ["Composed", "compose", "layer_forwards", "reference_forward", "reference_inputs", "reference_outputs",
           "reference_train", "reference_train_vjp", "reference_vjp"]
