"""The certificate's seeded inputs and the NumPy float64 reference run on them.

    data = inputs(model, batch)            # {"x": ..., "dy": ...}
    ref = Reference.of(model, data["x"])   # every layer's input and output in float64

Inputs are uniform in [-1, 1] (or token ids inside the first embedding's table), seeded by SEEDS; a model that reads
a padding mask gets a post-padded batch of different lengths. The reference keeps every layer's output for the whole
certificate: every voice's comparisons read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from impls.contract.spec import random_array
from impls.model.compose import reference_inputs, reference_outputs, reference_vjp
from impls.model.description import Model
from impls.model.layers import spec_of

SEEDS = {"x": 1, "dy": 2, "h0": 3, "targets": 4, "blocks": 5, "ulp": 6}
"""Every random draw's seed: the input, the output cotangent of the gradient check, the GRU initial states, the
training targets, the speed ranking's block orders, and the signs of the training gradient's one-ulp perturbation."""
INPUT_RANGE = (-1.0, 1.0)
TOKEN_RANGE = (0, 10)  # integer inputs (token ids): uniform integers, in the source's dtype


def lengths(batch: int, T: int) -> np.ndarray:
    """A padded batch's lengths: the first row full, the others shorter and different (never 0: torch's
    pack_padded_sequence refuses an empty row, so a certificate that every port can take has none)."""
    return np.array([T] + [max(1, T - 1 - (b * max(T - 1, 1)) // max(batch - 1, 1)) for b in range(1, batch)][: batch - 1])


def padded(model: Model) -> bool:
    """The model reads a padding mask (an embedding with mask_zero, a masking layer)."""
    return any(s is not None for s in model.mask_sources())


def inputs(model: Model, batch: int) -> dict[str, np.ndarray]:
    """Seeded, non-symmetric inputs: x (uniform in INPUT_RANGE, or token ids inside the first embedding's table),
    dy for the gradients. A model that reads a padding mask (an embedding with mask_zero, a masking layer) gets a
    post-padded batch of different lengths (`lengths`), padded with id 0 or the mask value."""
    shape = (batch, *model.input_shape)
    first = model.layers[0]
    opts = spec_of(first.kind).options(first.options)
    g = np.random.default_rng(SEEDS["x"])
    if np.issubdtype(np.dtype(model.input_dtype), np.integer):
        hi = min(TOKEN_RANGE[1], opts["input_dim"]) if first.kind == "embedding" else TOKEN_RANGE[1]
        lo = 1 if first.kind == "embedding" and opts["mask_zero"] else TOKEN_RANGE[0]
        x = g.integers(lo, max(hi, lo + 1), shape).astype(model.input_dtype)
    else:
        x = random_array(shape, SEEDS["x"], "float64", *INPUT_RANGE)
    if first.kind in ("masking", "embedding") and (first.kind == "masking" or opts["mask_zero"]):
        pad = 0 if first.kind == "embedding" else opts["mask_value"]
        valid = np.arange(shape[1])[None, :] < lengths(batch, shape[1])[:, None]
        x = np.where(valid.reshape(valid.shape + (1,) * (x.ndim - 2)), x, pad).astype(x.dtype)
    out_shape = model.shapes(batch)[-1]
    return {"x": x, "dy": random_array(out_shape, SEEDS["dy"], "float64", *INPUT_RANGE)}


def described(model: Model, x: np.ndarray, batch: int) -> dict[str, Any]:
    """The certificate's "inputs" section: how every array was drawn."""
    return {"batch": batch, "shape": list(x.shape), "dtype": str(x.dtype), "seeds": dict(SEEDS),
            "x": (f"impls.contract.spec.random_array(shape, seed={SEEDS['x']}) uniform in {list(INPUT_RANGE)}"
                  if x.dtype.kind == "f" else f"uniform integers in {list(TOKEN_RANGE)} (and inside the first "
                  f"embedding's table), seed {SEEDS['x']}")
            + (f"; post-padded to lengths {lengths(batch, model.input_shape[0]).tolist()}" if padded(model) else ""),
            "dy": f"uniform in {list(INPUT_RANGE)} of the output's shape, seed {SEEDS['dy']}"}  # fmt: skip


def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)


@dataclass
class Reference:
    model: Model  # float64
    x: np.ndarray
    ins: list[Any]  # what layer i reads: an array, or a list of them for a merge
    outs: list[np.ndarray]  # what layer i returns
    _vjp: dict = field(default_factory=dict, repr=False)

    def vjp(self, dy: np.ndarray) -> tuple[np.ndarray | None, dict[tuple[str, str], np.ndarray]]:
        """The reference's hand-written backward for L = <dy, model(x)>, computed once for every voice."""
        key = dy.tobytes()
        if key not in self._vjp:
            self._vjp = {key: reference_vjp(self.model, cast(self.x, "float64"), dy)}
        return self._vjp[key]

    @classmethod
    def of(cls, model: Model, x: np.ndarray) -> Reference:
        m = model.astype("float64")
        outs = reference_outputs(m, cast(x, "float64"))
        return cls(m, x, reference_inputs(m, cast(x, "float64"), outs), outs)


__all__ = ["INPUT_RANGE", "SEEDS", "TOKEN_RANGE", "Reference", "cast", "described", "inputs", "lengths", "padded"]
