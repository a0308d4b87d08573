"""The Keras port's element-wise kinds and constants, each one built-in layer (the .keras file loads in safe mode):

- multiply: keras.layers.Multiply, which broadcasts size-1 axes as the description does ((B, 1, 1, C) x (B, H, W, C));
- rescale: keras.layers.Rescaling(scale, offset), a number or a list of one per channel (Keras 3 broadcasts a list
  over the last axis of its channels_last input); in float64 each a float64 array over the channels (`constant`);
- layer_scale: keras.layers.EinsumDense("...c,c->...c") without a bias, whose (C,) kernel is gamma (a product, no
  sum: exactly x * gamma) and trains as gamma does; keras.applications' own LayerScale is no keras.layers class;
- stochastic_depth: keras.layers.Identity, the identity at inference (Keras' applications StochasticDepth is no
  built-in layer either); the training step runs it off, as it runs Dropout with rate 0.
Each keeps a channels_first source's 3-D feature map a map.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...model.description import Layer
from .emitters import EMITTERS, Site, Weights, keras


@EMITTERS.register("multiply", keeps_map=True)
def multiply(opts: dict, at: Site) -> list:
    return [keras.layers.Multiply(dtype=at.dt, name=at.name)]


def constant(value: float | list[float], dtype: str, width: int) -> Any:
    """A rescale constant as Rescaling takes it, for an input whose last axis is `width`: as is in float32; in float64
    a float64 array of `width` values (a number repeated), since Rescaling casts a Python number (and a 0-d array,
    which its saved config turns into one) through float32 (1 / 6 comes out 1e-8 off), while a float64 array keeps
    its dtype in the layer and in the .keras file. Not one value: TensorFlow's constant folding merges a (1,) offset
    after a Conv2D into the conv's BiasAdd, which then refuses it ("Must provide as many biases as the last dimension
    of the input tensor: [1] vs. [3,1,1,16]", keras MobileNetV3Small's hard sigmoid in float64)."""
    if dtype != "float64":
        return value
    a = np.asarray(value, np.float64).reshape(-1)
    return np.full(width, a[0]) if a.size == 1 else a


@EMITTERS.register("rescale", keeps_map=True)
def rescale(opts: dict, at: Site) -> list:
    return [keras.layers.Rescaling(constant(opts["scale"], at.dt, at.in_shape[-1]),
                                   offset=constant(opts["offset"], at.dt, at.in_shape[-1]), dtype=at.dt,
                                   name=at.name)]  # fmt: skip


@dataclass(frozen=True)
class _Kernel(Weights):
    """layer_scale's gamma is the EinsumDense's `kernel` variable (the canonical name is not the attribute's)."""

    def variables(self, layer: Layer, opts: dict, main: Any, trainable: bool) -> list:
        return [main.kernel]


def equation(rank: int) -> str:
    """EinsumDense's equation for x * gamma on the last axis of a rank-`rank` input: "abcd,d->abcd"."""
    axes = string.ascii_lowercase[:rank]
    return f"{axes},{axes[-1]}->{axes}"


@EMITTERS.register("layer_scale", weights=_Kernel(lambda opts: ["gamma"]), keeps_map=True)
def layer_scale(opts: dict, at: Site) -> list:
    return [keras.layers.EinsumDense(equation(len(at.in_shape)), output_shape=tuple(at.in_shape[1:]), bias_axes=None,
                                     dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("stochastic_depth", keeps_map=True)
def stochastic_depth(opts: dict, at: Site) -> list:
    return [keras.layers.Identity(dtype=at.dt, name=at.name)]


__all__ = ["constant", "equation", "layer_scale", "multiply", "rescale", "stochastic_depth"]
