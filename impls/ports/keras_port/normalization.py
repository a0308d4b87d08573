"""The Keras port's normalizations: batch_norm (keras.layers.BatchNormalization(axis=-1, momentum, epsilon, center,
scale) holding gamma, beta and the moving statistics, state: no gradient) and layer_norm (LayerNormalization(axis=-1)).

Keras' momentum is the description's (the old value's share); epsilon as is. BatchNormalization moves its
moving_variance by the biased batch variance, so a description whose variance_update is "unbiased" (a torch source)
ports forward-exact only (batch_norm_notes says so; trainref compares its step in Keras' convention). A channels_first
source holds batch_norm's 3-D input and output as (B, C, L) feature maps.

lrn: Keras has no local response normalization layer; it is written with built-in layers and one keras.ops call, so
the .keras file loads in safe mode without nnparity: Multiply([x, x]); the squares reshaped to (B, positions, C, 1),
zero-padded along C by the window's before / after (ZeroPadding2D) and averaged over `size` channels (AveragePooling2D,
valid: every window full, so the mean is the window's sum / size; TensorFlow's AvgPool3D has no float64 kernel); Rescaling(alpha, offset=
bias) makes the divisor D = bias + alpha / size * sum; keras.ops.power(D, -beta); Multiply([x, D^-beta]).
"""

from __future__ import annotations

import math

from ...model.description import Model
from ...model.layers import spec_of
from ...model.layers.lrn import window
from .elementwise import constant
from .emitters import EMITTERS, Site, Weights, keras


def _names(opts: dict) -> list[str]:
    return [*(["gamma"] if opts["scale"] else []), *(["beta"] if opts["center"] else [])]


@EMITTERS.register("batch_norm", weights=Weights(lambda opts: [*_names(opts), "moving_mean", "moving_var"]),
                   reads_map=True, keeps_map=True)  # fmt: skip
def batch_norm(opts: dict, at: Site) -> list:
    return [keras.layers.BatchNormalization(axis=-1, momentum=opts["momentum"], epsilon=opts["epsilon"],
                                            center=opts["center"], scale=opts["scale"], dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("layer_norm", weights=Weights(_names))
def layer_norm(opts: dict, at: Site) -> list:
    return [keras.layers.LayerNormalization(axis=-1, epsilon=opts["epsilon"], center=opts["center"], scale=opts["scale"],
                                            dtype=at.dt, name=at.name)]  # fmt: skip


def _wire_lrn(pieces: list, opts: dict, x):
    square, *to_mean, divisor, product = pieces
    d = divisor(_chain(to_mean, square([x, x])))
    return product([x, keras.ops.power(d, -opts["beta"])])


def _chain(layers: list, y):
    for la in layers:
        y = la(y)
    return y


@EMITTERS.register("lrn", wire=_wire_lrn, reads_map=True, keeps_map=True)
def lrn(opts: dict, at: Site) -> list:
    L, dt, n = keras.layers, at.dt, at.name
    spatial, c = tuple(at.in_shape[1:-1]), at.in_shape[-1]
    before, after = window(opts["size"], opts["extra"])
    pad = L.ZeroPadding2D(((0, 0), (before, after)), data_format="channels_last", dtype=dt, name=f"{n}_pad")
    mean = L.AveragePooling2D((1, opts["size"]), strides=1, padding="valid", data_format="channels_last", dtype=dt,
                              name=f"{n}_window")  # fmt: skip
    return [L.Multiply(dtype=dt, name=f"{n}_square"), L.Reshape((math.prod(spatial), c, 1), dtype=dt, name=f"{n}_channels"), pad,
            mean, L.Reshape((*spatial, c), dtype=dt, name=f"{n}_sum"),
            L.Rescaling(constant(opts["alpha"], dt, c), offset=constant(opts["bias"], dt, c), dtype=dt, name=f"{n}_divisor"),
            L.Multiply(dtype=dt, name=n)]  # fmt: skip


def batch_norm_notes(model: Model) -> list[str]:
    """keras.layers.BatchNormalization updates moving_variance with the biased batch variance (the one it normalises
    by): a description whose variance_update is torch's "unbiased" (n / (n - 1) times it) ports forward-exact (the
    inference forward reads the moving statistics as they are) but a training step moves moving_variance otherwise."""
    return [f"{la.label(i)}: variance_update 'unbiased' (torch's running_var) has no Keras form: "
            "keras.layers.BatchNormalization moves moving_variance by the biased batch variance; forward-exact, but a "
            "training step's moving_var differs from the source's by the factor n / (n - 1) on the batch variance's share"
            for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and spec_of(la.kind).options(la.options)["variance_update"] == "unbiased"]  # fmt: skip


__all__ = ["batch_norm", "batch_norm_notes", "layer_norm", "lrn"]
