"""The Keras port's shape kinds: zero_pad2d (keras.layers.ZeroPadding2D), flatten (Flatten), reshape (Reshape),
permute (Permute), and the merges add (Add) and concatenate (Concatenate(axis)), which make a graph a functional
keras.Model wired as the description's inputs say. A channels_first source's 3-D feature maps merged stay one."""

from __future__ import annotations

from .emitters import EMITTERS, Site, keras, pads2d


@EMITTERS.register("zero_pad2d")
def zero_pad2d(opts: dict, at: Site) -> list:
    return [keras.layers.ZeroPadding2D(pads2d(opts["padding"]), dtype=at.dt, name=at.name)]


@EMITTERS.register("flatten")
def flatten(opts: dict, at: Site) -> list:
    return [keras.layers.Flatten(dtype=at.dt, name=at.name)]


@EMITTERS.register("reshape")
def reshape(opts: dict, at: Site) -> list:
    return [keras.layers.Reshape(tuple(opts["target_shape"]), dtype=at.dt, name=at.name)]


@EMITTERS.register("permute")
def permute(opts: dict, at: Site) -> list:
    return [keras.layers.Permute(tuple(opts["dims"]), dtype=at.dt, name=at.name)]


@EMITTERS.register("add", keeps_map=True)
def add(opts: dict, at: Site) -> list:
    return [keras.layers.Add(dtype=at.dt, name=at.name)]


@EMITTERS.register("concatenate", keeps_map=True)
def concatenate(opts: dict, at: Site) -> list:
    return [keras.layers.Concatenate(axis=opts["axis"], dtype=at.dt, name=at.name)]


__all__ = ["add", "concatenate", "flatten", "permute", "reshape", "zero_pad2d"]
