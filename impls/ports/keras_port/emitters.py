"""The Keras port's registry and what its emitters share: EMITTERS (layer kind -> the function making that kind's
Keras layers, registered with its `check`, the options Keras cannot express, and its `weights`, the order its Keras
variables hold the canonical weights in), `refusal`, which asks it layer by layer, and the Keras and TensorFlow
modules every family builds from (looked up at call time, keras.layers.X, so a test can plant a bug in one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import frameworks
from ...contract.limits import Refused
from ...model.description import Layer, Model
from ...model.layers import spec_of
from ...registry import Entry, Registry

keras = frameworks.load("keras")
tf = frameworks.load("tensorflow")

VOICE = "keras"
DTYPES = ("float32", "float64")
KERAS_NAMES = {"moving_var": "moving_variance"}  # canonical weight name -> the Keras layer's attribute, where not the same

EMITTERS = Registry("the Keras port", "layer kind")
"""Layer kind -> emitter(opts, at: Site) -> the Keras layers computing one description layer (the last one holds its
weights). Registered with: check=fn(opts, in_shape, masked) -> the reason Keras cannot express these options, or
None; weights= how a weighted kind's Keras layer holds its weights (a Weights, or recurrent.Cells); helper="crop"
where the layer a kind puts in front of its own is a crop ("<layer>_crop"), not a pad ("<layer>_pad"); wire=fn(pieces,
opts, y) -> the output, where a kind's layers are no chain (lrn reads its input twice: the port is then a functional
keras.Model, the last piece's output the layer's), with wired=fn(opts) where only some options need it (a recurrent
layer's given initial states); main=i, the piece holding the weights where it is not the last (a class token's
EinsumDense before its Concatenate), or main=fn(pieces) -> what its `weights` reads them from; and the 3-D
feature-map flags the boundary reads (assembly._maps3): reads_map (a channels_first source holds the 3-D input it
reads as (B, C, L)), makes_map (its 3-D output is such a map), keeps_map (its output is one where its inputs are)."""
GELU_FLOAT64 = ("keras.activations.gelu in float64 is tf.nn.gelu's 0.5 x erfc(-x * math_ops.cast(0.7071067811865476, "
                "float64)), and that cast of a Python float goes through a float32 tensor: 1 / sqrt 2 rounded to float32 "
                "(measured: 8.3e-9 off at x = 1, over the float64 bar; tf.math.erfc itself is exact to 4e-16); Keras has "
                "no other erf layer")
GELU_TANH_FLOAT64 = ("keras.ops.gelu(approximate=True) in float64 is tf.nn.gelu, whose 0.044715 is "
                     "math_ops.cast(0.044715, float64): rounded through float32 (measured 9e-10 off at |x| near 4, over "
                     "the float64 bar)")


@dataclass(frozen=True)
class Site:
    """Where one description layer's Keras layers go: `name` its Keras name, `helper` the name of the layer a kind
    puts in front of its own ("<layer>_pad", take_step's "<layer>_crop"), `in_shape` its input's shape (batch 1),
    `dt` the dtype, `dropout` False in the training step's copy (every Dropout rate 0)."""

    name: str
    helper: str
    in_shape: tuple
    dt: str
    dropout: bool = True


@dataclass(frozen=True)
class Weights:
    """How a weighted kind's Keras layer holds its canonical weights: `names(opts)` in the order of the layer's
    variables (get_weights'), each the layer's attribute of that name (KERAS_NAMES where not the same). conv2d HWIO,
    conv1d (K, C / groups, F), depthwise (KH, KW, C, M) and dense (in, out) kernels are Keras' own layouts; a
    BatchNormalization holds gamma, beta, moving_mean, moving_variance (the description's moving_var)."""

    names: Callable[[dict], list[str]]

    def _kept(self, layer: Layer, opts: dict, grads: bool) -> list[str]:
        """The names, less the state (a BatchNorm's moving statistics: no gradient) where `grads`."""
        return [n for n in self.names(opts) if not (grads and n in spec_of(layer.kind).STATE)]

    def to_keras(self, layer: Layer, opts: dict) -> list[np.ndarray]:
        return [layer.weights[n] for n in self.names(opts)]

    def count(self, layer: Layer, opts: dict, grads: bool) -> int:
        return len(self._kept(layer, opts, grads))

    def from_keras(self, layer: Layer, opts: dict, arrays: list[np.ndarray], grads: bool) -> dict[str, np.ndarray]:
        names = self._kept(layer, opts, grads)
        if len(names) != len(arrays):
            raise ValueError(f"{layer.name!r}: {len(arrays)} Keras arrays for its weights {names}")
        return dict(zip(names, arrays, strict=True))

    def variables(self, layer: Layer, opts: dict, main: Any, trainable: bool) -> list:
        """The layer's Keras variables in to_keras' order; trainable=True leaves the moving statistics out."""
        return [getattr(main, KERAS_NAMES.get(n, n)) for n in self._kept(layer, opts, trainable)]


KERNEL = Weights(lambda opts: ["kernel", *(["bias"] if opts["use_bias"] else [])])
"""A kernel and, with use_bias, a bias: the convolutions' and dense's."""


def pads2d(padding: list) -> tuple:
    """A description's [[top, bottom], [left, right]] as ZeroPadding2D's ((top, bottom), (left, right))."""
    (t, b), (l, r) = padding
    return ((t, b), (l, r))


# --------------------------------------------------------------------------- what Keras cannot express


def emitter(kind: str, where: str) -> Entry:
    """`kind`'s registered emitter; Refused (its declared reason, or what is registered) where it has none."""
    entry = EMITTERS.get(kind)
    if entry is None:
        raise Refused(f"{VOICE}: {where}: {EMITTERS.refusal(kind) or EMITTERS.missing(kind)}")
    return entry


def layer_refusal(layer: Layer, opts: dict, in_shape: tuple, masked: bool = False) -> str | None:
    """Why Keras cannot express this one layer (its kind's check, or its kind's declared refusal); None if it can."""
    entry = EMITTERS.get(layer.kind)
    if entry is None:
        return EMITTERS.refusal(layer.kind) or EMITTERS.missing(layer.kind)
    check = entry.meta.get("check")
    return None if check is None else check(opts, in_shape, masked)


def refusal(model: Model, dtype: str) -> str | None:
    """Why Keras' built-in layers cannot compute `model` in `dtype`, naming the layer; None when they can."""
    if str(dtype) not in DTYPES:
        return f"the Keras port builds {' and '.join(DTYPES)} models; {dtype!r} is not one of them"
    shapes = model.input_shapes(1)
    masks = model.mask_sources()
    bad = model.unreadable_padding()  # Keras masks a padded query row too (uniform weights over every key there)
    if bad is not None:
        return (f"{model.layers[bad].label(bad)} reads the padded steps after a padded attention: Keras' "
                "MultiHeadAttention masks the padded query rows too (uniform weights over every key), whose outputs "
                "are not the description's there")  # fmt: skip
    for i, layer in enumerate(model.layers):
        if dtype == "float64" and layer.options.get("activation") in ("gelu", "gelu_tanh"):
            return f"{layer.label(i)}: {GELU_FLOAT64 if layer.options['activation'] == 'gelu' else GELU_TANH_FLOAT64}"
        why = layer_refusal(layer, spec_of(layer.kind, layer.label(i)).options(layer.options), shapes[i], masks[i] is not None)
        entry = EMITTERS.get(layer.kind)
        if why is None and str(dtype) == "float64" and entry is not None:
            why = entry.meta.get("float64")  # a kind whose Keras layer computes part of float64 in float32
        if why is not None:
            return f"{layer.label(i)}: {why}"
    return None


def check(model: Model, dtype: str) -> None:
    why = refusal(model, dtype)
    if why is not None:
        raise Refused(f"{VOICE}: {why}")


__all__ = ["DTYPES", "EMITTERS", "KERAS_NAMES", "KERNEL", "VOICE", "Site", "Weights", "check", "emitter", "keras",
           "layer_refusal", "pads2d", "refusal", "tf"]  # fmt: skip
