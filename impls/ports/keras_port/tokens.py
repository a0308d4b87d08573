"""The Keras port's class_token and position_embedding (issue 25). Keras 3 has no built-in layer that holds a
trainable tensor of its own and puts it before, or adds it to, its input, so each is written with built-in layers
and one keras.ops call (the .keras file loads in safe mode without nnparity, as lrn's keras.ops.power does):

- position_embedding: ones = keras.ops.ones_like(x) (B, T, D); EinsumDense("abc,bc->abc", output_shape (T, D), no
  bias) on the ones, whose kernel (T, D) is the embedding: 1 * e, exactly e; Add([x, that]).
- class_token: Cropping1D((0, T - 1)) of x (its first position, (B, 1, D)); ones_like of it; EinsumDense("abc,c->abc",
  output_shape (1, D), no bias), whose kernel (D,) is the token; Concatenate(axis=1)([token, x]): the token first.

The EinsumDense kernel is the port's one trainable variable of each (no identity kernel beside it): a product by
exactly 1 and no sum, so the forward is the weight itself, and the kernel's gradient is the sum over the batch of
dy * 1, the weight's own gradient. ones_like reads only x's shape, never its values: an inf or NaN in x gives ones
all the same (x * 0 + 1 would give NaN there, and spread it over the whole row). The ones carry no gradient to x.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...model.description import Layer
from .emitters import EMITTERS, Site, Weights, keras


@dataclass(frozen=True)
class _Held(Weights):
    """The kind's one weight (canonical (1, 1, D) token / (1, T, D) embedding) as the EinsumDense kernel, the
    leading 1 (and the token's position axis) dropped: (D,) / (T, D)."""

    name: str = ""

    def to_keras(self, layer: Layer, opts: dict) -> list[np.ndarray]:
        w = np.asarray(layer.weights[self.name])
        return [w.reshape(w.shape[2:] if self.name == "token" else w.shape[1:])]

    def from_keras(self, layer: Layer, opts: dict, arrays: list[np.ndarray], grads: bool) -> dict[str, np.ndarray]:
        if len(arrays) != 1:
            raise ValueError(f"{layer.name!r}: {len(arrays)} Keras arrays for its weight {self.name!r}")
        a = np.asarray(arrays[0])
        return {self.name: a.reshape((1, 1, *a.shape) if self.name == "token" else (1, *a.shape))}

    def variables(self, layer: Layer, opts: dict, main: Any, trainable: bool) -> list:
        return [main.kernel]


def _wire_token(pieces: list, opts: dict, x: Any) -> Any:
    first, held, join = pieces
    return join([held(keras.ops.ones_like(first(x))), x])


def _wire_embedding(pieces: list, opts: dict, x: Any) -> Any:
    held, join = pieces
    return join([x, held(keras.ops.ones_like(x))])


@EMITTERS.register("class_token", weights=_Held(lambda opts: ["token"], "token"), wire=_wire_token, main=1,
                   helper="token")
def class_token(opts: dict, at: Site) -> list:
    L, (_, t, d) = keras.layers, at.in_shape
    return [L.Cropping1D((0, t - 1), dtype=at.dt, name=f"{at.helper}_first"),
            L.EinsumDense("abc,c->abc", output_shape=(1, d), bias_axes=None, dtype=at.dt, name=at.helper),
            L.Concatenate(axis=1, dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("position_embedding", weights=_Held(lambda opts: ["embedding"], "embedding"), wire=_wire_embedding,
                   main=0, helper="embedding")  # fmt: skip
def position_embedding(opts: dict, at: Site) -> list:
    L, (_, t, d) = keras.layers, at.in_shape
    return [L.EinsumDense("abc,bc->abc", output_shape=(t, d), bias_axes=None, dtype=at.dt, name=at.helper),
            L.Add(dtype=at.dt, name=at.name)]  # fmt: skip


__all__ = ["class_token", "position_embedding"]
