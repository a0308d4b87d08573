"""The Keras importer's activations and Dropout: Activation (one of the description's ACTIVATIONS, Keras' swish and
hard_silu by their other names, leaky_relu with keras.activations' slope 0.2), ReLU (relu, relu6, a clip from 0 or a
leaky_relu by its max_value and negative_slope; a threshold refused), LeakyReLU (Keras 3's default slope 0.3) and
Softmax() over the last axis as those activations, Dropout
(identity at inference; its rate kept)."""

from __future__ import annotations

import numpy as np

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.Dropout, kinds=("dropout",))
def _dropout(c: Context) -> Converted:
    return "dropout", {"rate": float(c.config["rate"])}, {}


@REGISTRY.register(L.Activation, kinds=("activation",))
def _activation(c: Context) -> Converted:
    if c.config.get("activation") == "leaky_relu":  # keras.activations.leaky_relu's own default slope
        return "activation", _leaky(c, 0.2), {}
    return "activation", {"activation": c.activation()}, {}


def _leaky(c: Context, slope: float) -> dict:
    """leaky_relu of Keras' slope. TF's LeakyRelu op holds its alpha as a float32 attribute, so a float64 layer
    computes with the slope rounded to float32 (measured: 0.1 gives 1.5e-9 off in float64): the description says so."""
    slope = float(slope)
    if c.layer.compute_dtype == "float64" and float(np.float32(slope)) != slope:
        c.notes.append(f"{c.label}: LeakyRelu in float64 computes with its slope {slope} rounded to float32 "
                       f"({float(np.float32(slope))!r}), as TF's op holds it")  # fmt: skip
        slope = float(np.float32(slope))
    return {"activation": "leaky_relu", "negative_slope": slope}


@REGISTRY.register(L.LeakyReLU, kinds=("activation",))
def _leaky_relu(c: Context) -> Converted:
    return "activation", _leaky(c, c.config.get("negative_slope", 0.3)), {}  # Keras 3's LeakyReLU default 0.3


@REGISTRY.register(L.ReLU, kinds=("activation",))
def _relu(c: Context) -> Converted:
    """ReLU(max_value, negative_slope, threshold): relu; relu6 (max_value 6); a clip from 0 (another max_value); a
    leaky_relu (a negative_slope, no max_value); a threshold, or a slope with a cap, refused."""
    cfg = c.config
    top, slope, threshold = cfg.get("max_value"), float(cfg.get("negative_slope", 0.0)), float(cfg.get("threshold", 0.0))
    if threshold != 0.0 or (slope != 0.0 and top is not None):
        raise c.refuse(f"ReLU(max_value={top}, negative_slope={slope}, threshold={threshold}): a threshold, or a "
                       "slope together with a max_value, has no activation of the description")  # fmt: skip
    if slope != 0.0:
        return "activation", _leaky(c, slope), {}
    if top is None:
        return "activation", {"activation": "relu"}, {}
    if float(top) == 6.0:
        return "activation", {"activation": "relu6"}, {}
    return "activation", {"activation": "clip", "min": 0.0, "max": float(top)}, {}


@REGISTRY.register(L.Softmax, kinds=("activation",))
def _softmax(c: Context) -> Converted:
    axis = c.config.get("axis", -1)
    if axis not in (-1, len(c.in_shape) - 1, [-1], [len(c.in_shape) - 1]):
        raise c.refuse(f"Softmax(axis={axis}): only the softmax over the last axis imports")
    return "activation", {"activation": "softmax"}, {}
