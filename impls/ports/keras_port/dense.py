"""The Keras port's dense kind: keras.layers.Dense(units, activation, use_bias), its (in, out) kernel Keras' own layout;
on a 3-D input it acts on the last axis, and carries a padding mask."""

from __future__ import annotations

from .emitters import EMITTERS, KERNEL, Site, keras


@EMITTERS.register("dense", weights=KERNEL)
def dense(opts: dict, at: Site) -> list:
    return [keras.layers.Dense(opts["units"], activation=opts["activation"], use_bias=opts["use_bias"], dtype=at.dt,
                               name=at.name)]  # fmt: skip


__all__ = ["dense"]
