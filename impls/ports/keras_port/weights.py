"""The Keras port's weight maps, both ways, for a whole model: each weighted layer's canonical weights as its Keras
layer's arrays (arrays: no Keras needed), those arrays or their gradients back as canonical weights (canonical), and
the same through a built port's layers (canonical_weights, variables). Each kind's own order is its emitter's
`weights` (emitters.Weights, recurrent.Cells)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...model.description import Layer, Model
from ...model.layers import spec_of
from .emitters import EMITTERS, tf

Mains = list  # [(description layer, its options, the Keras layer holding its weights)] for the weighted layers


def weights_of(kind: str) -> Any:
    """How `kind`'s Keras layer holds its weights (its emitter's `weights`), or None: a kind without weights."""
    entry = EMITTERS.get(kind)
    return None if entry is None else entry.meta.get("weights")


def _weighted(model: Model) -> list[tuple[Layer, dict, Any]]:
    return [(layer, spec_of(layer.kind).options(layer.options), weights_of(layer.kind)) for layer in model.layers
            if weights_of(layer.kind) is not None]  # fmt: skip


def arrays(model: Model) -> list[np.ndarray]:
    """`model`'s canonical weights (a BatchNorm's moving statistics too) as the Keras port's arrays, layer by layer
    in the description's order (each layer's in get_weights' order): no Keras needed."""
    return [a for layer, opts, w in _weighted(model) for a in w.to_keras(layer, opts)]


def canonical(model: Model, keras_arrays: list, grads: bool = False) -> dict[tuple[str, str], np.ndarray]:
    """The Keras port's arrays (weights, or their gradients when `grads`: trainable weights only), in arrays()'
    order -> canonical {(layer, weight): array}: the inverse of arrays(), and for gradients the one bias of
    GRU(reset_after=False) is the gradient of b_x and of b_h alike."""
    out, k = {}, 0
    for layer, opts, w in _weighted(model):
        n = w.count(layer, opts, grads)
        for name, a in w.from_keras(layer, opts, [np.asarray(v) for v in keras_arrays[k : k + n]], grads).items():
            out[(layer.name, name)] = a
        k += n
    if k != len(keras_arrays):
        raise ValueError(f"model {model.name!r}: {len(keras_arrays)} Keras arrays where its port holds {k}")
    return out


def assign(mains: Mains, dtype: str) -> None:
    """Set each weighted Keras layer's variables to its description layer's weights, in `dtype`."""
    for layer, opts, main in mains:
        w = weights_of(layer.kind)
        for v, a in zip(w.variables(layer, opts, main, False), w.to_keras(layer, opts), strict=True):
            v.assign(np.asarray(a, dtype=dtype))


def canonical_weights(mains: Mains, grads: list | None = None) -> dict[tuple[str, str], np.ndarray]:
    """The Keras layers' weights, a BatchNorm's moving statistics included (or `grads`, one per trainable variable
    in variables()' order), as canonical {(layer, weight): array}."""
    out, k = {}, 0
    for layer, opts, main in mains:
        w = weights_of(layer.kind)
        vs = w.variables(layer, opts, main, grads is not None)
        got = [np.asarray(v) for v in vs] if grads is None else [np.asarray(g) for g in grads[k : k + len(vs)]]
        k += len(vs)
        for name, a in w.from_keras(layer, opts, got, grads is not None).items():
            out[(layer.name, name)] = a
    return out


def variables(mains: Mains) -> list:
    """The Keras variables holding the weighted layers' trainable weights (what gradients are taken of), in
    arrays()' order less the moving statistics."""
    return [v for layer, opts, main in mains for v in weights_of(layer.kind).variables(layer, opts, main, True)]


def dense_grads(gs: list) -> list:
    """An Embedding's gradient is tf.IndexedSlices (the rows its ids picked): as a dense table, as canonical holds it."""
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gs]


__all__ = ["Mains", "arrays", "assign", "canonical", "canonical_weights", "dense_grads", "variables", "weights_of"]
