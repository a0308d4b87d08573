"""Seeded model descriptions from a list of layers: what tests, examples and the certificate's own models start from.

    model = chain("cnn", (9, 10, 3), [("conv2d", "conv", {"filters": 4, "kernel_size": [3, 3]}), ("flatten", "f", {})])

Every layer's weights come from its kind's own seeded init (impls/model/layers/base.py: non-symmetric, non-zero
biases), layer i with seed + 7 i, and the model is checked at `batch`.
"""

from __future__ import annotations

from typing import Any

from .description import INPUT, Layer, Model
from .layers import spec_of


def chain(name: str, input_shape: tuple[int, ...], specs: list[tuple], seed: int = 0,
          boundary: str = "channels_last", batch: int = 3, dtype: str = "float64", input_dtype: str | None = None) -> Model:  # fmt: skip
    """A model of `specs` [(kind, layer name, options)] or [(kind, layer name, options, inputs)] (a graph: `inputs`
    names earlier layers or INPUT), checked at `batch`. Its input dtype is int64 (token ids) when the first layer is
    an embedding, else float32, unless `input_dtype` says."""
    layers: list[Layer] = []
    shapes = {INPUT: (batch, *input_shape)}
    prev = INPUT
    for i, sp in enumerate(specs):
        kind, lname, opts = sp[:3]
        inputs = tuple(sp[3]) if len(sp) > 3 else ()
        spec = spec_of(kind, f"layer {i} {lname!r}")
        o = spec.options(opts)
        ins = [shapes[s] for s in (inputs or (prev,))]
        shape = ins[0] if spec.ARITY == 1 else tuple(ins)
        layers.append(Layer(kind, lname, opts, spec.init(o, shape, seed + 7 * i, dtype), inputs))
        shapes[lname] = tuple(spec.output_shape(o, shape))
        prev = lname
    if input_dtype is None:
        input_dtype = "int64" if specs and specs[0][0] == "embedding" else "float32"
    return Model(name, input_shape, tuple(layers), input_dtype=input_dtype, boundary=boundary).check(batch)


__all__ = ["chain"]
