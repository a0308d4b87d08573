"""The Flax port's pools: max_pool2d, avg_pool2d, global_avg_pool and global_max_pool.

Pools are nn.max_pool / nn.avg_pool (count_include_pad; its result cast back to the input's dtype, as Flax divides
by a count in JAX's default float dtype). Global pools are jnp.mean over the spatial axes and, for the maximum,
argmax + take_along_axis (its gradient to the first maximum, the contract's; jnp.max would share it between ties).
"""

from __future__ import annotations

from ...model.description import Model
from ...model.layers import adaptive_pool
from ...model.layers import pool2d as pool2d_layer
from .emit import EMITTERS, declared, pad, pair


def max_pool_limits(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    return declared("max_pool2d", dtype, stride=opts["strides"], padding=opts["padding"])


def avg_pool_limits(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    return declared("avg_pool2d", dtype, stride=opts["strides"], padding=opts["padding"],
                    count_include_pad=opts["count_include_pad"])


@EMITTERS.register("max_pool2d", check=max_pool_limits)
def max_pool2d(name, opts, in_shape):
    _, opts = pool2d_layer.lowered(opts, in_shape)  # ceil_mode: its overhang is more trailing pad, -inf never wins
    return [(f"x = nn.max_pool(x, {pair(opts['pool_size'])}, strides={pair(opts['strides'])}, "
             f"padding={pad(opts['padding'])})")]


@EMITTERS.register("avg_pool2d", check=avg_pool_limits)
def avg_pool2d(name, opts, in_shape):
    pre, opts = pool2d_layer.lowered(opts, in_shape)  # ceil_mode: the overhang is an uncounted trailing pad
    first = [] if pre is None else [
        "# ceil_mode, counting the explicit pads: they are zeros first, then only the overhang is padded (uncounted)",
        f"x = jnp.pad(x, ((0, 0), {pre[:2]!r}, {pre[2:]!r}, (0, 0)))"]
    return [*first, "# avg_pool divides by a count in JAX's default float dtype (float64 under x64): keep the input's",
            (f"x = nn.avg_pool(x, {pair(opts['pool_size'])}, strides={pair(opts['strides'])}, "
             f"padding={pad(opts['padding'])}, count_include_pad={opts['count_include_pad']}).astype(x.dtype)")]


@EMITTERS.register("adaptive_avg_pool2d")
def adaptive_avg_pool2d(name, opts, in_shape):
    """torch's adaptive windows, rows then columns (a window is a rectangle: the mean of the rows' means)."""
    (OH, OW), (H, W) = opts["output_size"], in_shape[1:3]
    rows, cols = adaptive_pool.windows(H, OH), adaptive_pool.windows(W, OW)
    return [f"# adaptive average pool to ({OH}, {OW}): window i of n cells spans floor(i * n / out) .. ceil((i + 1) * n / out)",
            f"x = jnp.concatenate([x[:, a:b].mean(axis=1, keepdims=True) for a, b in {rows!r}], axis=1)",
            f"x = jnp.concatenate([x[:, :, a:b].mean(axis=2, keepdims=True) for a, b in {cols!r}], axis=2)"]


def _spatial(in_shape) -> str:
    return repr(tuple(range(1, len(in_shape) - 1)))


@EMITTERS.register("global_avg_pool", masked=True)
def global_avg_pool(name, opts, in_shape, masked=False):
    if masked and opts.get("masked"):  # the mean over each row's valid steps (t < lengths), as Keras' under a mask
        return ["keep = (jnp.arange(x.shape[1])[None, :] < lengths[:, None]).astype(x.dtype)  # (B, T): 1 at the valid steps",
                "x = jnp.sum(x * keep[:, :, None], axis=1) / jnp.sum(keep, axis=1, keepdims=True)  # masked mean -> (B, C)"]
    return [f"x = jnp.mean(x, axis={_spatial(in_shape)})  # global average over the spatial axes -> (B, C)"]


@EMITTERS.register("global_max_pool")
def global_max_pool(name, opts, in_shape):
    return ["# global maximum over the spatial axes -> (B, C), its gradient to the first maximum (row-major), as the",
            "# contract's (jnp.max would share it between tied maxima)",
            "flat = x.reshape((x.shape[0], -1, x.shape[-1]))",
            "x = jnp.take_along_axis(flat, jnp.argmax(flat, axis=1)[:, None, :], axis=1)[:, 0, :]"]


__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "avg_pool_limits", "global_avg_pool", "global_max_pool", "max_pool2d", "max_pool_limits"]
