"""The element-wise kinds and constants (issue 24): multiply, rescale, layer_scale, stochastic_depth.

- multiply: the element-wise product of two or more tensors (a merge, like add), with NumPy's broadcasting on the
  canonical layout: every input has the output's rank, and each axis is its size or 1 (a squeeze-excitation gate
  (B, 1, 1, C) times its (B, H, W, C) map). The batch axis is never broadcast. The reference's vjp sums each input's
  gradient over the axes it was broadcast along.
- rescale: y = x * scale + offset, two constants (JSON options, no weights, no gradient): each a number or a list of
  one number per channel (the canonical last axis). Keras' Rescaling(scale, offset); Keras' Normalization(mean,
  variance) as scale = 1 / max(sqrt(variance), epsilon), offset = -mean * scale (its own formula, epsilon
  keras.backend.epsilon()); a tensor and a Python number in torch (x + 3, x * (1 / 6), x / 255, 3 - x); an ONNX Add,
  Sub, Mul or Div by a constant.
- layer_scale: y = x * gamma, gamma a trainable weight of one value per channel (the canonical last axis): ConvNeXt's
  layer scale (torchvision holds it (C, 1, 1) on an NCHW map; Keras' applications LayerScale (C,) on NHWC).
- stochastic_depth: options rate and mode ("row": torchvision's stochastic_depth, each sample dropped on its own;
  "batch": Keras' ConvNeXt StochasticDepth, the whole batch at once). It is the identity at inference, which is all a
  certificate or a port computes: the certificate's training step runs with it off, as it runs Dropout (the
  frameworks' random drops are no convention two voices could share).

Where a padding mask flows (a padded sequence), every one of them passes it on as it came (each is element-wise,
step by step; multiply as add does: only where every input carries the same mask). Each keeps a feature map a map.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec


def broadcast_shape(kind: str, in_shapes: list) -> tuple[int, ...]:
    """The shape the inputs broadcast to on the canonical layout: one rank, one batch, each axis its size or 1."""
    ranks = {len(s) for s in in_shapes}
    if len(ranks) != 1:
        raise ShapeError(f"{kind} needs inputs of one rank (each axis its size or 1), got {list(in_shapes)}")
    if len({s[0] for s in in_shapes}) != 1:
        raise ShapeError(f"{kind} never broadcasts the batch axis, got {list(in_shapes)}")
    try:
        return tuple(int(d) for d in np.broadcast_shapes(*(tuple(s) for s in in_shapes)))
    except ValueError:
        raise ShapeError(f"{kind}: the inputs {list(in_shapes)} do not broadcast (each axis must be one size or 1)") from None


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A gradient of the broadcast output summed back to an input of `shape` (same rank), over the axes it was
    broadcast along."""
    axes = tuple(k for k, (n, m) in enumerate(zip(shape, g.shape, strict=True)) if n == 1 and m != 1)
    return np.sum(g, axis=axes, keepdims=True) if axes else g


class Multiply(LayerSpec):
    """multiply: the element-wise product of two or more tensors, broadcast on the canonical layout."""

    KIND = "multiply"
    ARITY = 0
    KEEPS_MASK = True

    def output_shape(self, opts, in_shapes):
        return broadcast_shape(self.KIND, in_shapes)

    def forward(self, ops, xs, opts, w):
        y = xs[0]
        for x in xs[1:]:
            y = y * x
        return y

    def vjp(self, xs, opts, w, dy):
        grads = []
        for i, x in enumerate(xs):
            g = dy
            for j, other in enumerate(xs):
                if j != i:
                    g = g * other
            grads.append(unbroadcast(np.asarray(g), tuple(x.shape)))
        return grads, {}


def _constant(kind: str, name: str, value: Any) -> float | list[float]:
    """A finite number, or a non-empty list of them (one per channel), as JSON holds it."""
    def number(v: Any) -> float:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)):  # fmt: skip
            raise ModelError(f"{kind}: option {name} must be a finite number or a list of them (one per channel), "
                             f"got {value!r}")  # fmt: skip
        return float(v)

    if isinstance(value, np.ndarray) and value.ndim == 0:
        return number(value.item())
    if isinstance(value, (list, tuple, np.ndarray)):
        vals = [number(v) for v in value]
        if not vals:
            raise ModelError(f"{kind}: option {name} is an empty list; give a number or one per channel")
        return vals
    return number(value)


def _per_channel(kind: str, name: str, value: Any, in_shape: tuple) -> None:
    if isinstance(value, list) and len(value) != in_shape[-1]:
        raise ShapeError(f"{kind}: {name} holds {len(value)} values but the input {tuple(in_shape)} has "
                         f"{in_shape[-1]} channels on its last axis")  # fmt: skip


class Rescale(LayerSpec):
    """rescale: y = x * scale + offset, constants (a number, or one per channel on the last axis); no weights."""

    KIND = "rescale"
    KEEPS_MASK = True
    DEFAULTS: ClassVar[dict] = {"scale": 1.0, "offset": 0.0}

    def validate(self, opts):
        return {"scale": _constant(self.KIND, "scale", opts["scale"]),
                "offset": _constant(self.KIND, "offset", opts["offset"])}  # fmt: skip

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2:
            raise ShapeError(f"rescale takes a batched tensor, got {tuple(in_shape)}")
        _per_channel(self.KIND, "scale", opts["scale"], in_shape)
        _per_channel(self.KIND, "offset", opts["offset"], in_shape)
        return in_shape

    def op_weights(self, opts, w):
        """The constants as arrays, so that each voice holds them in its own dtype (never parameters: Composed.vjp
        reports only the model's parameters)."""
        return {"scale": np.asarray(opts["scale"], np.float64), "offset": np.asarray(opts["offset"], np.float64)}

    def forward(self, ops, x, opts, w):
        return x * w["scale"] + w["offset"]

    def vjp(self, x, opts, w, dy):
        return dy * np.asarray(opts["scale"], dy.dtype), {}


class LayerScale(LayerSpec):
    """layer_scale: y = x * gamma, gamma (C,) a trainable weight per channel (the canonical last axis)."""

    KIND = "layer_scale"
    KEEPS_MASK = True

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2:
            raise ShapeError(f"layer_scale takes a batched tensor, got {tuple(in_shape)}")
        return in_shape

    def weight_shapes(self, opts, in_shape):
        return {"gamma": (int(in_shape[-1]),)}

    def forward(self, ops, x, opts, w):
        return x * w["gamma"]

    def vjp(self, x, opts, w, dy):
        return dy * w["gamma"], {"gamma": np.sum(dy * x, axis=tuple(range(dy.ndim - 1)))}


MODES = ("row", "batch")


class StochasticDepth(LayerSpec):
    """stochastic_depth: the identity at inference (rate, mode "row" | "batch" say what training would drop); every
    training step here runs with it off, as with dropout."""

    KIND = "stochastic_depth"
    KEEPS_MASK = True
    DEFAULTS: ClassVar[dict] = {"rate": 0.0, "mode": "row"}

    def validate(self, opts):
        rate = opts["rate"]
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
            raise ModelError(f"stochastic_depth: rate must be in [0, 1), got {rate!r}")
        if opts["mode"] not in MODES:
            raise ModelError(f"stochastic_depth: mode {opts['mode']!r} is not one of {MODES} (row: torchvision's, "
                             "each sample dropped on its own; batch: Keras' ConvNeXt, the whole batch)")  # fmt: skip
        return {"rate": float(rate), "mode": opts["mode"]}

    def output_shape(self, opts, in_shape):
        return in_shape

    def forward(self, ops, x, opts, w):
        return x

    def vjp(self, x, opts, w, dy):
        return dy, {}


MULTIPLY = Multiply()
RESCALE = Rescale()
LAYER_SCALE = LayerScale()
STOCHASTIC_DEPTH = StochasticDepth()

__all__ = ["LAYER_SCALE", "MODES", "MULTIPLY", "RESCALE", "STOCHASTIC_DEPTH", "broadcast_shape", "unbroadcast"]
