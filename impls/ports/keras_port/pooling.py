"""The Keras port's pools: max_pool2d (keras.layers.MaxPooling2D), avg_pool2d (AveragePooling2D, behind a ZeroPadding2D
"<layer>_pad" where it counts its pads) and the global pools (GlobalAverage/MaxPooling1D/2D by the input's rank).

Keras' 2-D pools pad only 'valid' or 'same': explicit pads that are TensorFlow's 'same' pads on the layer's input
port as 'same'; other explicit pads are refused for a max pool (ZeroPadding2D's zeros could win a max) and for an
average pool that does not count them (impls/contract/limits.py declares both). A channels_first source holds a
global pool's 3-D input as a (B, C, L) feature map.
"""

from __future__ import annotations

from ...contract import limits, spec
from ...model.layers.base import spec_padding
from .emitters import EMITTERS, VOICE, Site, keras


def same_pools(opts: dict, in_shape: tuple) -> dict:
    """A pool's explicit pads that are TensorFlow's 'same' pads on this input, as 'same' (which the Keras pools have):
    an ONNX exporter writes a Keras AveragePooling2D(padding='same') as pads [1, 0, 1, 1], which read as explicit
    pads had no Keras layer. An average pool that counts its pads keeps them (ZeroPadding2D then 'valid')."""
    if isinstance(opts["padding"], str) or opts.get("count_include_pad"):
        return opts
    same = [list(spec.same_pads(n, k, st)) for n, k, st in zip(in_shape[1:3], opts["pool_size"], opts["strides"])]
    return {**opts, "padding": "same"} if [list(p) for p in opts["padding"]] == same else opts


def _max_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    return limits.refusal(VOICE, "max_pool2d", padding=same_pools(opts, in_shape)["padding"])


def _avg_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    opts = same_pools(opts, in_shape)
    return limits.refusal(VOICE, "avg_pool2d", padding=opts["padding"], count_include_pad=opts["count_include_pad"])


@EMITTERS.register("max_pool2d", check=_max_check)
def max_pool2d(opts: dict, at: Site) -> list:
    opts = same_pools(opts, at.in_shape)
    return [keras.layers.MaxPooling2D(tuple(opts["pool_size"]), tuple(opts["strides"]), padding=opts["padding"],
                                      dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("avg_pool2d", check=_avg_check)
def avg_pool2d(opts: dict, at: Site) -> list:
    """AveragePooling2D divides by the input cells only ('same' as TensorFlow): count_include_pad=False with
    'same' is its own padding; counting pads is ZeroPadding2D (the 'same' or explicit pads) then 'valid'."""
    opts = same_pools(opts, at.in_shape)
    padding, cip = opts["padding"], opts["count_include_pad"]
    own = padding if padding == "valid" or (padding == "same" and not cip) else "valid"
    pool = keras.layers.AveragePooling2D(tuple(opts["pool_size"]), tuple(opts["strides"]), padding=own, dtype=at.dt,
                                         name=at.name)  # fmt: skip
    if own == padding:
        return [pool]
    g = spec.check_pool2d(at.in_shape, tuple(opts["pool_size"]), tuple(opts["strides"]), spec_padding(padding),
                          op="avg_pool2d")  # fmt: skip
    t, b, l, r = g.pads
    return [keras.layers.ZeroPadding2D(((t, b), (l, r)), dtype=at.dt, name=at.helper), pool]


@EMITTERS.register("global_avg_pool", reads_map=True)
def global_avg_pool(opts: dict, at: Site) -> list:
    L = keras.layers
    return [{3: L.GlobalAveragePooling1D, 4: L.GlobalAveragePooling2D}[len(at.in_shape)](dtype=at.dt, name=at.name)]


@EMITTERS.register("global_max_pool", reads_map=True)
def global_max_pool(opts: dict, at: Site) -> list:
    L = keras.layers
    return [{3: L.GlobalMaxPooling1D, 4: L.GlobalMaxPooling2D}[len(at.in_shape)](dtype=at.dt, name=at.name)]


__all__ = ["avg_pool2d", "global_avg_pool", "global_max_pool", "max_pool2d", "same_pools"]
