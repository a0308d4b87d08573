"""The ONNX port's normalizations: batch_norm is BatchNormalization (inference: the moving statistics; momentum
written though only training mode reads it), layer_norm is LayerNormalization(axis=-1) on a channels-last value (a
channels-first map is transposed first). ONNX Runtime 1.31 runs both in float64 (measured).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...model.layers import spec_of
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


__all__ = ["batch_norm", "layer_norm"]
