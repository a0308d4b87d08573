"""The ONNX port's normalizations: batch_norm is BatchNormalization (inference: the moving statistics; momentum
written though only training mode reads it), layer_norm is LayerNormalization(axis=-1) on a channels-last value (a
channels-first map is transposed first). ONNX Runtime 1.31 runs both in float64 (measured). lrn is LRN(size, alpha, beta, bias) on the channel axis 1 where ONNX
Runtime runs it (ONNX divides alpha by size as the description does; an odd window is centred), else its formula in
plain ONNX ops (lrn's docstring).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...model.layers import spec_of
from ...model.layers.lrn import window
from .builder import CANON, EMITTERS, NCHW, _Graph


@EMITTERS.register("batch_norm")
def batch_norm(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """BatchNormalization (training_mode 0: the moving statistics) on the channel axis, axis 1: an NCHW / NCW map, or
    (B, C). ONNX's momentum is the description's (the fraction of the old statistics kept); it matters only in
    training mode, which ONNX Runtime's inference never runs; it is written so that the file states it."""
    if len(shape) >= 3:
        g.to(NCHW, len(shape))
    w = spec_of("batch_norm").op_weights(opts, dict(layer.weights))  # gamma ones, beta zeros where the layer has none
    names = [g.weight(k, w[k]) for k in ("gamma", "beta", "moving_mean", "moving_var")]
    g.apply("BatchNormalization", *names, epsilon=float(opts["epsilon"]), momentum=float(opts["momentum"]))


@EMITTERS.register("layer_norm")
def layer_norm(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """LayerNormalization(axis=-1) on the canonical last axis (the channels): a channels-first map is transposed to
    channels last first (ONNX's axis=1 on NCW would normalise C and L together)."""
    if g.layout == NCHW:
        g.to(CANON, len(shape))
    C = shape[-1]
    scale = layer.weights.get("gamma", np.ones(C))
    inputs = [g.weight("gamma", scale)] + ([g.weight("beta", layer.weights["beta"])] if "beta" in layer.weights else [])
    g.apply("LayerNormalization", *inputs, axis=-1, epsilon=float(opts["epsilon"]))


@EMITTERS.register("lrn")
def lrn(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """LRN on an NCHW float32 map with an odd size (the one form ONNX Runtime 1.31's kernel runs: it refuses an even
    size, float64 and a rank other than 4, measured); otherwise the formula in ONNX's own ops on the channel axis 1:
    Mul(x, x), Pad of the window's before / after zeros, Sum of the `size` shifted Slices, Mul by alpha / size, Add
    bias, Pow beta, Div."""
    rank, size, c = len(shape), opts["size"], shape[-1]
    g.to(NCHW, rank)
    if size % 2 == 1 and rank == 4 and g.dtype == np.float32:
        g.apply("LRN", size=int(size), alpha=float(opts["alpha"]), beta=float(opts["beta"]), bias=float(opts["bias"]))
        return
    before, after = window(size, opts["extra"])
    x = g.value
    sq = g.node("Mul", [x, x])[0]
    pads = [0] * (2 * rank)
    pads[1], pads[rank + 1] = before, after
    padded = g.node("Pad", [sq, g.const("window_pads", pads)], mode="constant")[0]
    parts = [g.node("Slice", [padded, g.const(f"start_{k}", [k]), g.const(f"end_{k}", [k + c]), g.const("axis", [1])])[0]
             for k in range(size)]  # fmt: skip
    total = g.node("Sum", parts)[0] if size > 1 else parts[0]
    d = g.node("Add", [g.node("Mul", [total, g.weight("alpha_over_size", np.asarray(opts["alpha"] / size))])[0],
                       g.weight("bias", np.asarray(opts["bias"]))])[0]  # fmt: skip
    g.value = g.node("Div", [x, g.node("Pow", [d, g.weight("beta", np.asarray(opts["beta"]))])[0]])[0]


__all__ = ["batch_norm", "layer_norm", "lrn"]
