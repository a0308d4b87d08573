"""The Flax port's crop2d, slice and channel_shuffle (issue 24), one line each on the canonical (channels-last) array:
slicing, and the shuffle as a reshape to (..., groups, C / groups), a swap of those axes and a reshape back."""

from __future__ import annotations

from .emit import EMITTERS


@EMITTERS.register("crop2d")
def crop2d(name, opts, in_shape):
    (t, b), (l, r) = opts["cropping"]
    H, W = in_shape[1:3]
    return [f"x = x[:, {t}:{H - b}, {l}:{W - r}, :]  # Cropping2D(({t}, {b}), ({l}, {r}))"]


@EMITTERS.register("slice")
def slice_(name, opts, in_shape):
    axis = opts["axis"] % len(in_shape)
    index = ", ".join([":"] * axis + [f"{opts['start']}:{opts['stop']}"])
    return [f"x = x[{index}]  # axis {axis}"]


@EMITTERS.register("channel_shuffle")
def channel_shuffle(name, opts, in_shape):
    g, c = opts["groups"], in_shape[-1]
    return [f"x = jnp.swapaxes(x.reshape((*x.shape[:-1], {g}, {c // g})), -1, -2).reshape(x.shape)  # channel shuffle, "
            f"{g} groups: output channel k * {g} + i is input i * {c // g} + k"]


__all__ = ["channel_shuffle", "crop2d", "slice_"]
