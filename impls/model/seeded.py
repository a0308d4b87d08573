"""Seeded model descriptions from a list of layers: what tests, examples and the certificate's own models start from.

    model = chain("cnn", (9, 10, 3), [("conv2d", "conv", {"filters": 4, "kernel_size": [3, 3]}), ("flatten", "f", {})])

Every layer's weights come from its kind's own seeded init (impls/model/layers/base.py: non-symmetric, non-zero
biases), layer i with seed + 7 i, and the model is checked at `batch`.
"""

from __future__ import annotations

from typing import Any

from .description import Layer, Model
from .layers import spec_of


def chain(name: str, input_shape: tuple[int, ...], specs: list[tuple[str, str, dict[str, Any]]], seed: int = 0,
          boundary: str = "channels_last", batch: int = 3, dtype: str = "float64") -> Model:  # fmt: skip
    """A model of `specs` [(kind, layer name, options)], checked at `batch`."""
    layers, shape = [], (batch, *input_shape)
    for i, (kind, lname, opts) in enumerate(specs):
        spec = spec_of(kind, f"layer {i} {lname!r}")
        o = spec.options(opts)
        layers.append(Layer(kind, lname, opts, spec.init(o, shape, seed + 7 * i, dtype)))
        shape = spec.output_shape(o, shape)
    return Model(name, input_shape, tuple(layers), boundary=boundary).check(batch)


__all__ = ["chain"]
