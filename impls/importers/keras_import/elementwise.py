"""The Keras importer's element-wise layers and constants (issue 24):

- Multiply (a merge) -> multiply: Keras 3 broadcasts size-1 axes ((B, 1, 1, C) x (B, H, W, C): MobileNetV3's and
  EfficientNet's squeeze-excitation), as the description's multiply does on the same channels_last layout.
- the raw ops a functional graph records for Python arithmetic (keras.src.ops.numpy Add, Subtract, Multiply,
  TrueDivide / Divide: `x + 3`, `x * y`, `x * (1 / 6)` in MobileNetV3's hard_sigmoid, `inputs + layer(x)` in
  ConvNeXt's blocks): of two tensors an add (one shape) or a multiply; of a tensor and a constant (a number, or one
  value per channel on the last axis) a rescale. A subtraction or division of two tensors, and a constant divided by
  a tensor, are refused; any other raw op is refused by the walker with its name.
- Rescaling(scale, offset) -> rescale, the constants as they are (numbers, or one per channel).
- Normalization(mean, variance, axis, invert) -> rescale with Keras' own formula, (x - mean) / max(sqrt(variance),
  epsilon) with epsilon keras.config.epsilon() (1e-7): scale = 1 / max(sqrt(variance), epsilon), offset = -mean *
  scale (invert: mean + x * max(sqrt(variance), epsilon)). Its statistics may vary along the last axis only.
- keras.applications' own ConvNeXt layers: LayerScale (x * gamma, gamma (C,)) -> layer_scale; StochasticDepth
  (drop_path_rate; Keras drops the whole batch at once) -> stochastic_depth mode "batch": the identity at inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import frameworks
from .. import constants
from .context import REGISTRY, Context, Converted

keras = frameworks.load("keras")
L = keras.layers
OPS = {frameworks.load_attr("keras.src.ops.numpy", name): op for name, op in
       (("Add", "add"), ("Subtract", "sub"), ("Multiply", "mul"), ("TrueDivide", "div"), ("Divide", "div"))}  # fmt: skip
"""The raw ops read: class -> the arithmetic it is (impls/importers/constants.py's names)."""


@REGISTRY.register(L.Multiply, kinds=("multiply",), merge=True)
def _multiply(c: Context) -> Converted:
    return "multiply", {}, {}


def _channels(c: Context, k: Any, what: str) -> np.ndarray:
    """A constant as one number or one per channel (the last axis, Keras' channels_last), or refused."""
    per = constants.per_channel(np.asarray(k, np.float64), tuple(c.in_shape), len(c.in_shape) - 1)
    if per is None:
        raise c.refuse(f"{what} of shape {np.shape(k)} varies along an axis of {tuple(c.in_shape)} other than the last "
                       "(the channels): one value, or one per channel, is a rescale")  # fmt: skip
    return per


@REGISTRY.register(*OPS, kinds=("add", "multiply", "rescale"), merge="auto")
def _op(c: Context) -> Converted:
    """x + y / x * y of two tensors: add / multiply; a tensor and a constant: rescale."""
    op = OPS[type(c.layer)]
    args = list(c.node.arguments.args)
    tensors = [a for a in args if isinstance(a, keras.KerasTensor)]
    if c.node.arguments.kwargs or len(args) != 2:
        raise c.refuse(f"it is called with {len(args)} arguments and {sorted(c.node.arguments.kwargs)}: x op y only")
    if len(tensors) == 2:
        if op == "add":
            if len({tuple(s) for s in c.in_shape}) != 1:
                raise c.refuse(f"it adds {list(c.in_shape)} by broadcasting; the description's add takes one shape")
            return "add", {}, {}
        if op == "mul":
            return "multiply", {}, {}
        raise c.refuse(f"it {'subtracts' if op == 'sub' else 'divides'} two tensors; the description joins tensors by "
                       "add, multiply and concatenate only")  # fmt: skip
    reverse = not isinstance(args[0], keras.KerasTensor)
    k = args[0] if reverse else args[1]
    opts = constants.affine(op, _channels(c, k, f"the constant {k!r}"), reverse)
    if isinstance(opts, str):
        raise c.refuse(opts)
    return "rescale", opts, {}


def rescaling(layer: Any) -> tuple[Any, Any]:
    """Rescaling's (scale, offset): y = x * scale + offset."""
    return layer.scale, layer.offset


@REGISTRY.register(L.Rescaling, kinds=("rescale",))
def _rescaling(c: Context) -> Converted:
    scale, offset = rescaling(c.layer)
    per = [_channels(c, v, f"Rescaling's {name}") for name, v in (("scale", scale), ("offset", offset))]
    if any(p.ndim for p in per) and keras.config.image_data_format() == "channels_first":
        raise c.refuse("per-channel constants under image_data_format 'channels_first' (Keras then puts them on axis 1)")
    return "rescale", {"scale": constants.as_option(per[0]), "offset": constants.as_option(per[1])}, {}


def normalization(mean: np.ndarray, variance: np.ndarray, epsilon: float, invert: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keras' Normalization as (scale, offset): y = (x - mean) / max(sqrt(variance), epsilon), or with invert
    y = mean + x * max(sqrt(variance), epsilon)."""
    d = np.maximum(np.sqrt(variance), epsilon)
    return (d, mean) if invert else (1.0 / d, -mean / d)


@REGISTRY.register(L.Normalization, kinds=("rescale",))
def _normalization(c: Context) -> Converted:
    layer = c.layer
    mean, var = (np.asarray(keras.ops.convert_to_numpy(v), np.float64) for v in (layer.mean, layer.variance))
    mean, var = _channels(c, mean, "its mean"), _channels(c, var, "its variance")
    eps = float(keras.config.epsilon())
    scale, offset = normalization(mean, var, eps, bool(layer.invert))
    c.notes.append(f"{c.label}: Keras' Normalization, (x - mean) / max(sqrt(variance), {eps!r})"
                   f"{' inverted' if layer.invert else ''}, as a rescale: x * scale + offset")  # fmt: skip
    return "rescale", {"scale": constants.as_option(scale), "offset": constants.as_option(offset)}, {}


@REGISTRY.register(frameworks.load_attr("keras.src.applications.convnext", "LayerScale"), kinds=("layer_scale",))
def _layer_scale(c: Context) -> Converted:
    return "layer_scale", {}, {"gamma": c.weight("gamma")}


@REGISTRY.register(frameworks.load_attr("keras.src.applications.convnext", "StochasticDepth"),
                   kinds=("stochastic_depth",))
def _stochastic_depth(c: Context) -> Converted:
    return "stochastic_depth", {"rate": float(c.layer.drop_path_rate), "mode": "batch"}, {}


__all__ = ["OPS", "normalization", "rescaling"]
