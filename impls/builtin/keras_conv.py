"""The built-in Keras voice's layer cache and its convolution and pools (re-exported by impls/builtin/keras_builtin.py).

Each op is Keras' own layer: Conv2D(groups, dilation_rate), DepthwiseConv2D for groups = C_in (its kernel
through convert.grouped_to_depthwise), MaxPooling2D, AveragePooling2D, and ZeroPadding2D in front where
the pads are explicit. What no Keras layer computes is refused as declared in impls/contract/limits.py. Layers are
built once per configuration and dtype and cached; every call assigns the weights it is given. Layout
changes of tensors go through convert.py applied to index arrays, then one tf.gather (`convert_native`), so
they also run inside tf.function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract import limits, spec

keras = frameworks.load("keras")
tf = frameworks.load("tensorflow")

NAME = "keras"

# --------------------------------------------------------------------------- layer cache and helpers

_LAYERS: dict[tuple, object] = {}


def layer(key: tuple, make: Callable, input_shape: tuple):
    """The layer for `key`, built once (outside any tf.function trace) for `input_shape`."""
    built = _LAYERS.get(key)
    if built is None:
        with tf.init_scope():
            built = make()
            built.build(input_shape)
        _LAYERS[key] = built
    return built


def assign(variables: Sequence, arrays: Sequence) -> None:
    """Give the layer exactly these weights (NumPy or tensors), cast to the layer's dtype."""
    for v, a in zip(variables, arrays, strict=True):
        v.assign(tf.cast(tf.convert_to_tensor(a), v.dtype))


def dt(x) -> str:
    return x.dtype.name


def native(a, x):
    return tf.cast(tf.convert_to_tensor(a), x.dtype)


def pull(tape, out: list, sources: list, dys: list) -> list:
    return tape.gradient(out, sources, output_gradients=dys, unconnected_gradients=tf.UnconnectedGradients.ZERO)


def layer_vjp(fn: Callable, x, variables: list, names: list, dy, out_shape, what: str) -> dict:
    """Cotangents of <dy, fn(x)> for x and the layer variables, named ["x", *names]."""
    spec.check_dy(what, dy.shape, out_shape)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    grads = pull(tape, [y], [x, *variables], [native(dy, x)])
    return dict(zip(["x", *names], grads))


def convert_native(fn: Callable, a: Any, **kw: Any):
    """convert.<fn>(a, **kw) on a tensor: fn maps an array of flat indices, which says where each output
    element comes from; one gather applies it (eagerly or inside tf.function)."""
    shape = tuple(int(d) for d in a.shape)
    where = np.asarray(fn(np.arange(int(np.prod(shape))).reshape(shape), **kw))
    return tf.reshape(tf.gather(tf.reshape(tf.convert_to_tensor(a), [-1]), where.reshape(-1)), where.shape)


def _pre_pad(pads: tuple[int, int, int, int], x) -> Callable:
    """keras.layers.ZeroPadding2D(((top, bottom), (left, right))) for explicit pads, else the identity."""
    if not any(pads):
        return lambda v: v
    t, b, l, r = pads
    return layer(("zero_pad", pads, dt(x)), lambda: keras.layers.ZeroPadding2D(((t, b), (l, r)), dtype=dt(x)),
                 (None, None, None, int(x.shape[3])))  # fmt: skip


# --------------------------------------------------------------------------- conv2d


def _conv(x, kernel, bias, stride, padding, dilation, groups):
    """(forward callable, the layer's variables, canonical kernel from the kernel variable's gradient)."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    limits.check(NAME, "conv2d", stride=stride, padding=padding, dilation=dilation, groups=groups)
    explicit = spec.is_explicit(padding)
    kpad = "valid" if explicit else padding
    common = {"strides": g.stride, "padding": kpad, "dilation_rate": g.dilation, "dtype": dt(x)}
    if g.groups > 1 and g.groups == g.C:  # depthwise: what Keras users write for groups = C_in
        M = g.O // g.C

        def make():
            return keras.layers.DepthwiseConv2D((g.KH, g.KW), depth_multiplier=M, **common)

        key = ("depthwise", g.KH, g.KW, g.C, M, g.stride, kpad, g.dilation, dt(x))
        to_layer = convert_native(convert.grouped_to_depthwise, kernel, groups=g.groups)
        back = lambda gk: convert_native(convert.depthwise_to_grouped, gk)
    else:

        def make():
            return keras.layers.Conv2D(g.O, (g.KH, g.KW), groups=g.groups, **common)

        key = ("conv2d", g.KH, g.KW, g.C, g.O, g.stride, kpad, g.dilation, g.groups, dt(x))
        to_layer, back = kernel, lambda gk: gk  # HWIO (I = C_in / groups) is Keras' own layout
    conv = layer(key, make, (None, None, None, g.C))
    assign([conv.kernel, conv.bias], [to_layer, bias])
    pre = _pre_pad(g.pads if explicit else (0, 0, 0, 0), x)
    return (lambda v: conv(pre(v))), [conv.kernel, conv.bias], back, g


def conv2d(x, kernel, bias, stride=1, padding="valid", dilation=1, groups=1):
    """keras.layers.Conv2D(C_out, (KH, KW), strides, padding, dilation_rate, groups), or DepthwiseConv2D
    where groups = C_in; explicit pads are a ZeroPadding2D in front of a 'valid' layer."""
    fn, *_ = _conv(x, kernel, bias, stride, padding, dilation, groups)
    return fn(x)


def conv2d_vjp(x, kernel, bias, dy, stride=1, padding="valid", dilation=1, groups=1) -> dict:
    fn, variables, back, g = _conv(x, kernel, bias, stride, padding, dilation, groups)
    out = layer_vjp(fn, x, variables, ["kernel", "bias"], dy, (g.B, g.OH, g.OW, g.O), "conv2d_vjp")
    return out | {"kernel": back(out["kernel"])}


# --------------------------------------------------------------------------- pools


def max_pool2d(x, pool=2, stride=None, padding="valid"):
    """keras.layers.MaxPooling2D(pool_size, strides, padding); stride None = pool."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    limits.check(NAME, "max_pool2d", pool=pool, stride=stride, padding=padding)
    make = lambda: keras.layers.MaxPooling2D(pool_size=g.pool, strides=g.stride, padding=padding, dtype=dt(x))
    return layer(("max_pool2d", g.pool, g.stride, padding, dt(x)), make, (None, None, None, g.C))(x)


def avg_pool2d(x, pool=2, stride=None, padding="valid", count_include_pad=False):
    """keras.layers.AveragePooling2D, which counts only input cells ('same' as TensorFlow). Counting the
    padding (count_include_pad=True) is ZeroPadding2D in front of a 'valid' AveragePooling2D; explicit pads
    without counting them have no Keras layer (limits.REFUSALS)."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    limits.check(NAME, "avg_pool2d", pool=pool, stride=stride, padding=padding, count_include_pad=count_include_pad)
    own = padding if padding == "valid" or (padding == "same" and not count_include_pad) else "valid"
    make = lambda: keras.layers.AveragePooling2D(pool_size=g.pool, strides=g.stride, padding=own, dtype=dt(x))
    avg = layer(("avg_pool2d", g.pool, g.stride, own, dt(x)), make, (None, None, None, g.C))
    return avg(_pre_pad(g.pads if own == "valid" else (0, 0, 0, 0), x)(x))


def max_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid") -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    fn = lambda v: max_pool2d(v, pool, stride, padding)
    return layer_vjp(fn, x, [], [], dy, (g.B, g.OH, g.OW, g.C), "max_pool2d_vjp")


def avg_pool2d_vjp(x, dy, pool=2, stride=None, padding="valid", count_include_pad=False) -> dict:
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    fn = lambda v: avg_pool2d(v, pool, stride, padding, count_include_pad)
    return layer_vjp(fn, x, [], [], dy, (g.B, g.OH, g.OW, g.C), "avg_pool2d_vjp")
