"""Activation: relu, softmax (last axis), tanh, sigmoid or linear, as a layer and as a layer's `activation=`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...primitives import numpy_impl as ref
from ..errors import ModelError
from .base import ACTIVATION_OPS, ACTIVATIONS, LayerSpec


def apply(ops: Any, name: str, x: Any) -> Any:
    """`name` over an op-contract backend; linear is the identity."""
    if name == "linear":
        return x
    if name not in ACTIVATIONS:
        raise ModelError(f"activation {name!r} is not one of {ACTIVATIONS}")
    return getattr(ops, name)(x)


def vjp(name: str, pre: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/d(pre-activation) for y = name(pre), NumPy reference."""
    if name == "linear":
        return dy
    if name == "relu":
        return ref.relu_vjp(pre, dy)["x"]
    if name == "softmax":
        return ref.softmax_vjp(ref.softmax(pre), dy)
    if name == "tanh":
        return dy * (1.0 - np.tanh(pre) ** 2)
    if name == "sigmoid":
        s = ref.sigmoid(pre)
        return dy * s * (1.0 - s)
    raise ModelError(f"activation {name!r} is not one of {ACTIVATIONS}")


class Activation(LayerSpec):
    KIND = "activation"
    OPS = ACTIVATION_OPS
    KEEPS_MASK = True
    REQUIRED = ("activation",)

    def output_shape(self, opts, in_shape):
        return in_shape

    def forward(self, ops, x, opts, w):
        return apply(ops, opts["activation"], x)

    def vjp(self, x, opts, w, dy):
        return vjp(opts["activation"], x, dy), {}


SPEC = Activation()
