"""take_step: one time step of a sequence, x (B, T, F) -> x[:, index] (B, F); torch's `out[:, -1]`.

After a one-direction recurrent layer `out[:, -1]` is its final state, and the torch importer folds it into the
layer (return_sequences=False). After a bidirectional one it is not: its backward half is the backward cell's
FIRST step, not its final state; that is what this kind keeps. Under a padding mask the step is read as it is (a
padded step's output, zero or held), which is what `out[:, -1]` on a padded batch gives."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec


class TakeStep(LayerSpec):
    KIND = "take_step"
    DEFAULTS: ClassVar[dict] = {"index": -1}

    def validate(self, opts):
        i = opts["index"]
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise ModelError(f"take_step: index must be an int, got {i!r}")
        return {"index": int(i)}

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"take_step takes (B, T, F), got {in_shape}")
        T = in_shape[1]
        if not -T <= opts["index"] < T:
            raise ShapeError(f"take_step: index {opts['index']} is outside the {T} steps")
        return (in_shape[0], in_shape[2])

    def forward(self, ops, x, opts, w):
        return x[:, opts["index"]]

    def vjp(self, x, opts, w, dy):
        dx = np.zeros_like(x, dtype=dy.dtype)
        dx[:, opts["index"]] = dy
        return dx, {}


SPEC = TakeStep()
