"""The Keras importer's activations and Dropout: Activation (one of the description's ACTIVATIONS), ReLU() and
Softmax() over the last axis as those activations (ReLU's max_value, negative_slope or threshold refused), Dropout
(identity at inference; its rate kept)."""

from __future__ import annotations

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.Dropout, kinds=("dropout",))
def _dropout(c: Context) -> Converted:
    return "dropout", {"rate": float(c.config["rate"])}, {}


@REGISTRY.register(L.Activation, kinds=("activation",))
def _activation(c: Context) -> Converted:
    return "activation", {"activation": c.activation()}, {}


@REGISTRY.register(L.ReLU, kinds=("activation",))
def _relu(c: Context) -> Converted:
    cfg = c.config
    if cfg.get("max_value") is not None or float(cfg.get("negative_slope", 0.0)) != 0.0 or float(cfg.get("threshold", 0.0)) != 0.0:
        raise c.refuse(f"ReLU(max_value={cfg.get('max_value')}, negative_slope={cfg.get('negative_slope')}, "
                       f"threshold={cfg.get('threshold')}): only the default ReLU() is the relu activation")  # fmt: skip
    return "activation", {"activation": "relu"}, {}


@REGISTRY.register(L.Softmax, kinds=("activation",))
def _softmax(c: Context) -> Converted:
    axis = c.config.get("axis", -1)
    if axis not in (-1, len(c.in_shape) - 1, [-1], [len(c.in_shape) - 1]):
        raise c.refuse(f"Softmax(axis={axis}): only the softmax over the last axis imports")
    return "activation", {"activation": "softmax"}, {}
