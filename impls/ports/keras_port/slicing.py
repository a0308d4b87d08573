"""The Keras port's crop2d, slice and channel_shuffle (issue 24), built-in layers only (the .keras file loads in safe
mode): crop2d is Cropping2D; a slice of H or W of an image Cropping2D, of the steps of a sequence Cropping1D, of any
other axis (the channels) a Permute bringing it next to the batch, a Reshape to (n, rest), Cropping1D and back;
channel_shuffle is Reshape to (..., groups, C / groups), Permute of those two axes, Reshape back."""

from __future__ import annotations

import numpy as np

from .emitters import EMITTERS, Site, keras


@EMITTERS.register("crop2d")
def crop2d(opts: dict, at: Site) -> list:
    (t, b), (l, r) = opts["cropping"]
    return [keras.layers.Cropping2D(((t, b), (l, r)), dtype=at.dt, name=at.name)]


@EMITTERS.register("slice", keeps_map=True)
def slice_(opts: dict, at: Site) -> list:
    L, shape = keras.layers, tuple(at.in_shape)
    rank, axis = len(shape), opts["axis"] % len(shape)
    n, (a, b) = shape[axis], (opts["start"], opts["stop"])
    if rank == 4 and axis in (1, 2):
        crop = ((a, n - b), (0, 0)) if axis == 1 else ((0, 0), (a, n - b))
        return [L.Cropping2D(crop, dtype=at.dt, name=at.name)]
    if rank == 3 and axis == 1:
        return [L.Cropping1D((a, n - b), dtype=at.dt, name=at.name)]
    others = [d for d in range(1, rank) if d != axis]
    rest = [shape[d] for d in others]
    back = [int(k) + 1 for k in np.argsort([axis, *others])]  # Permute's 1-based dims
    return [L.Permute((axis, *others), dtype=at.dt, name=f"{at.helper}_front"),
            L.Reshape((n, int(np.prod(rest))), dtype=at.dt, name=f"{at.helper}_rows"),
            L.Cropping1D((a, n - b), dtype=at.dt, name=f"{at.helper}_crop"),
            L.Reshape((b - a, *rest), dtype=at.dt, name=f"{at.helper}_back"),
            L.Permute(tuple(back), dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("channel_shuffle", keeps_map=True)
def channel_shuffle(opts: dict, at: Site) -> list:
    L, shape = keras.layers, tuple(at.in_shape)
    g, c, rank = opts["groups"], shape[-1], len(shape)
    dims = (*range(1, rank - 1), rank, rank - 1)
    return [L.Reshape((*shape[1:-1], g, c // g), dtype=at.dt, name=f"{at.helper}_groups"),
            L.Permute(dims, dtype=at.dt, name=f"{at.helper}_swap"),
            L.Reshape(shape[1:], dtype=at.dt, name=at.name)]  # fmt: skip


__all__ = ["channel_shuffle", "crop2d", "slice_"]
