"""Keras' core layers the description reads besides embeddings: InputLayer (skipped: the description's input is
the model's own) and Dense (kernel (in, units) and bias: the canonical layout, on the input's last axis)."""

from __future__ import annotations

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.InputLayer, kinds=())
def _input(c: Context) -> Converted:
    return None


@REGISTRY.register(L.Dense, kinds=("dense",))
def _dense(c: Context) -> Converted:
    return "dense", {"units": int(c.config["units"]), "activation": c.activation(), "use_bias": bool(c.config["use_bias"])}, c.kernel_and_bias()
