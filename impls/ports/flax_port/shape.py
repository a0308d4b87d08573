"""The Flax port's shape layers and merges: zero_pad2d, flatten, reshape, permute, add and concatenate.

Zero padding is jnp.pad, Flatten a reshape (NHWC order, the canonical one), Reshape a reshape with the batch kept,
Permute jnp.transpose, add `+` and concatenate jnp.concatenate, one line each. A merge reads named values (its
inputs, kept by the code generator in NAME_out variables), passed as `ins`.
"""

from __future__ import annotations

from .emit import EMITTERS


@EMITTERS.register("zero_pad2d")
def zero_pad2d(name, opts, in_shape):
    (t, b), (l, r) = opts["padding"]
    return [f"x = jnp.pad(x, ((0, 0), ({t}, {b}), ({l}, {r}), (0, 0)))  # zeros: (top, bottom), (left, right)"]


@EMITTERS.register("flatten")
def flatten(name, opts, in_shape):
    order = "(h, w, c)" if len(in_shape) == 4 else "(l, c)" if len(in_shape) == 3 else "row-major"
    return [f"x = x.reshape((x.shape[0], -1))  # flattened in the canonical {order} order"]


@EMITTERS.register("reshape")
def reshape(name, opts, in_shape):
    return [f"x = x.reshape((x.shape[0], {', '.join(map(str, opts['target_shape']))}))  # row-major, batch kept"]


@EMITTERS.register("permute")
def permute(name, opts, in_shape):
    return [f"x = jnp.transpose(x, {(0, *opts['dims'])!r})  # Keras' Permute{tuple(opts['dims'])!r}, batch kept"]


@EMITTERS.register("add")
def add(name, opts, in_shape, ins):
    return [f"x = {' + '.join(ins)}"]


@EMITTERS.register("concatenate")
def concatenate(name, opts, in_shape, ins):
    return [f"x = jnp.concatenate([{', '.join(ins)}], axis={opts['axis']})"]


__all__ = ["add", "concatenate", "flatten", "permute", "reshape", "zero_pad2d"]
