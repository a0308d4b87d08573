"""The Keras port's pools: max_pool2d (keras.layers.MaxPooling2D), avg_pool2d (AveragePooling2D, behind a ZeroPadding2D
"<layer>_pad" where it counts its pads) and the global pools (GlobalAverage/MaxPooling1D/2D by the input's rank).

Keras' 2-D pools pad only 'valid' or 'same' and have no ceil_mode: explicit pads that are TensorFlow's 'same' pads on
the layer's input port as 'same'; other pads and ceil_mode are written exactly with built-in layers (`_pool`): a max
pool's pads hold the dtype's lowest finite value (a ZeroPadding2D's zeros could win a max over negative inputs), an
average's divisor is corrected per window by a constant Rescaling. A channels_first source holds a global pool's 3-D
input as a (B, C, L) feature map.
"""

from __future__ import annotations

import numpy as np

from ...contract import spec
from ...model.layers import adaptive_pool
from ...model.layers import pool2d as pool2d_layer
from .emitters import EMITTERS, VOICE, Site, keras


def same_pools(opts: dict, in_shape: tuple) -> dict:
    """A pool's explicit pads that are TensorFlow's 'same' pads on this input, as 'same' (which the Keras pools have):
    an ONNX exporter writes a Keras AveragePooling2D(padding='same') as pads [1, 0, 1, 1], which read as explicit
    pads had no Keras layer. An average pool that counts its pads keeps them (ZeroPadding2D then 'valid')."""
    if isinstance(opts["padding"], str) or opts.get("count_include_pad"):
        return opts
    same = [list(spec.same_pads(n, k, st)) for n, k, st in zip(in_shape[1:3], opts["pool_size"], opts["strides"])]
    return {**opts, "padding": "same"} if [list(p) for p in opts["padding"]] == same else opts


def _native(opts: dict, in_shape: tuple) -> str | None:
    """The padding a Keras pool of its own computes these options with ('valid', or 'same' not counted), or None."""
    if opts["ceil_mode"]:
        return None
    padding = same_pools(opts, in_shape)["padding"]
    if padding == "valid" or (padding == "same" and not opts.get("count_include_pad")):
        return padding
    return None


def counted(opts: dict, in_shape: tuple, avg: bool) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """(the zero pads (top, bottom, left, right) before a 'valid' pool, a (H', W') mask of the padded map: 1 on the
    cells a window counts). A max or an average not counting pads counts the input's cells; an average counting
    them also its explicit pads, never a ceil_mode pool's overhang (torch's divisor)."""
    padding = opts["padding"]
    if padding == "same":
        t, b, l, r = spec.check_pool2d(in_shape, tuple(opts["pool_size"]), tuple(opts["strides"]), "same").pads
    else:
        (t, b), (l, r) = [[0, 0], [0, 0]] if padding == "valid" else padding
    eh, ew = pool2d_layer.overhang(opts, in_shape)
    H, W = in_shape[1:3]
    mask = np.zeros((H + t + b + eh, W + l + r + ew))
    if avg and opts["count_include_pad"]:
        mask[: H + t + b, : W + l + r] = 1
    else:
        mask[t : t + H, l : l + W] = 1
    return (t, b + eh, l, r + ew), mask


def window_sums(mask: np.ndarray, opts: dict) -> np.ndarray:
    """Each 'valid' window's sum of `mask`: (OH, OW)."""
    (kh, kw), (sh, sw) = opts["pool_size"], opts["strides"]
    oh, ow = (mask.shape[0] - kh) // sh + 1, (mask.shape[1] - kw) // sw + 1
    return np.array([[mask[i * sh : i * sh + kh, j * sw : j * sw + kw].sum() for j in range(ow)] for i in range(oh)])


def _pool(opts: dict, at: Site, avg: bool) -> list:
    """A pool Keras has (its 'valid' or 'same'); otherwise ZeroPadding2D, then for a max a Rescaling whose offset is
    the dtype's lowest finite value on every padded cell (x * 1 + 0 inside, exact; no finite input is beaten by a
    pad, whatever the input's sign), a 'valid' pool, and for an average a Rescaling by window area / cells counted
    where the two differ (each window's mean over its counted cells: sum / area * area / count)."""
    cls = keras.layers.AveragePooling2D if avg else keras.layers.MaxPooling2D
    k, st = tuple(opts["pool_size"]), tuple(opts["strides"])
    own = _native(opts, at.in_shape)
    if own is not None:
        return [cls(k, st, padding=own, dtype=at.dt, name=at.name)]
    (t, b, l, r), mask = counted(opts, at.in_shape, avg)
    layers = [keras.layers.ZeroPadding2D(((t, b), (l, r)), dtype=at.dt, name=at.helper)] if t or b or l or r else []
    if not avg and not mask.all():
        floor = np.where(mask > 0, 0.0, np.finfo(at.dt).min).astype(at.dt)[..., None]
        layers.append(keras.layers.Rescaling(1.0, offset=floor, dtype=at.dt, name=f"{at.helper}_floor"))
    pool = cls(k, st, padding="valid", dtype=at.dt, name=at.name)
    if not avg:
        return [*layers, pool]
    share = window_sums(mask, opts)
    if (share == k[0] * k[1]).all():
        return [*layers, pool]
    pool = cls(k, st, padding="valid", dtype=at.dt, name=f"{at.helper}_sum")
    scale = (k[0] * k[1] / share)[..., None]  # float64: Keras casts it to the compute dtype, and a float32 model
    # run in float64 then divides by the exact count (onnx inception_v1's port: 49 / 36 as float32 was 3.9e-8 off)
    return [*layers, pool, keras.layers.Rescaling(scale, dtype=at.dt, name=at.name)]


@EMITTERS.register("max_pool2d")
def max_pool2d(opts: dict, at: Site) -> list:
    return _pool(opts, at, False)


@EMITTERS.register("avg_pool2d")
def avg_pool2d(opts: dict, at: Site) -> list:
    """AveragePooling2D divides by the input cells only ('same' as TensorFlow); any other divisor (explicit pads,
    counted or not, ceil_mode) is ZeroPadding2D, a 'valid' pool and a Rescaling by the window's area / its count."""
    return _pool(opts, at, True)


@EMITTERS.register("adaptive_avg_pool2d")
def adaptive_avg_pool2d(opts: dict, at: Site) -> list:
    """keras.layers.AdaptiveAveragePooling2D (Keras 3.12+) where no axis grows: its windows are torch's (measured:
    within 2.3e-16 of nn.AdaptiveAvgPool2d in float64 for 5x7 -> 3x4, 13x13 -> 6x6, 7x5 -> 3x3). It raises on an axis
    that grows (1 -> 7, vgg's 1x1 map to (7, 7)), and on an axis pooled to 1 (its TensorFlow backend also pools a
    window one cell larger than the axis: "Negative dimension size caused by subtracting 7 from 6"): there, two frozen
    EinsumDense layers whose constant kernels average each window ((H, OH) on the rows, (W, OW) on the columns: 1 / its
    size on each of its cells). Both axes to 1 is GlobalAveragePooling2D(keepdims=True)."""
    (OH, OW), (H, W, C) = opts["output_size"], at.in_shape[1:]
    if (OH, OW) == (1, 1):  # the mean of the map: what MobileNet's keepdims global pools import as
        return [keras.layers.GlobalAveragePooling2D(keepdims=True, dtype=at.dt, name=at.name)]
    if H >= OH > 1 and W >= OW > 1:  # an axis pooled to 1 raises in Keras 3.15's TensorFlow backend (below)
        return [keras.layers.AdaptiveAveragePooling2D((OH, OW), dtype=at.dt, name=at.name)]

    def frozen(equation: str, kernel: np.ndarray, out: tuple, name: str):
        return keras.layers.EinsumDense(equation, output_shape=out, bias_axes=None, trainable=False, dtype=at.dt,
                                        kernel_initializer=keras.initializers.Constant(kernel.astype(at.dt)), name=name)

    return [frozen("bhwc,hi->biwc", adaptive_matrix(H, OH).T, (OH, W, C), f"{at.helper}_rows"),
            frozen("biwc,wj->bijc", adaptive_matrix(W, OW).T, (OH, OW, C), at.name)]


def adaptive_matrix(n: int, out: int) -> np.ndarray:
    """(out, n): row i averages torch's adaptive window i of an axis of n cells."""
    m = np.zeros((out, n))
    for i, (a, b) in enumerate(adaptive_pool.windows(n, out)):
        m[i, a:b] = 1.0 / (b - a)
    return m


def _mean_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    if masked and not opts["masked"]:
        return ("a padding mask reaches it and the description averages every step, padded ones included; Keras' "
                "GlobalAveragePooling1D honours the mask (the mean over the valid steps)")  # fmt: skip
    return None


@EMITTERS.register("global_avg_pool", reads_map=True, check=_mean_check)
def global_avg_pool(opts: dict, at: Site) -> list:
    L = keras.layers
    return [{3: L.GlobalAveragePooling1D, 4: L.GlobalAveragePooling2D}[len(at.in_shape)](dtype=at.dt, name=at.name)]


@EMITTERS.register("global_max_pool", reads_map=True)
def global_max_pool(opts: dict, at: Site) -> list:
    L = keras.layers
    return [{3: L.GlobalMaxPooling1D, 4: L.GlobalMaxPooling2D}[len(at.in_shape)](dtype=at.dt, name=at.name)]


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "global_avg_pool", "global_max_pool", "max_pool2d", "same_pools"]
