"""The Keras importer's shape layers and merges: Flatten anywhere (channels_last where it flattens a map), Reshape
(to a flat vector: a Flatten), Permute (1-based, batch excluded: the description's), ZeroPadding2D, and the merges
Add and Concatenate(axis) (Keras' channels_last axis is the canonical one), which read several tensors."""

from __future__ import annotations

import numpy as np

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.ZeroPadding2D, kinds=("zero_pad2d",))
def _zero_pad(c: Context) -> Converted:
    c.channels_last()
    (t, b), (l, r) = c.config["padding"]
    return "zero_pad2d", {"padding": [[int(t), int(b)], [int(l), int(r)]]}, {}


@REGISTRY.register(L.Flatten, kinds=("flatten",))
def _flatten(c: Context) -> Converted:
    if len(c.in_shape) > 2:
        c.channels_last()  # channels_first moves axis 1 last before flattening: (c, h, w) would become (h, w, c)
    return "flatten", {}, {}


@REGISTRY.register(L.Reshape, kinds=("flatten", "reshape"))
def _reshape(c: Context) -> Converted:
    target = [int(d) for d in c.config["target_shape"]]  # batch excluded, -1 allowed: the description's own
    flat = int(np.prod(c.in_shape[1:]))
    if len(target) == 1 and target[0] in (-1, flat):  # a flat vector: the Flatten every voice has
        c.notes.append(f"{c.label}: Reshape({tuple(target)}) imported as a Flatten")
        return "flatten", {}, {}
    return "reshape", {"target_shape": target}, {}


@REGISTRY.register(L.Permute, kinds=("permute",))
def _permute(c: Context) -> Converted:
    return "permute", {"dims": [int(d) for d in c.config["dims"]]}, {}  # 1-based, batch excluded: the description's


@REGISTRY.register(L.Add, kinds=("add",), merge=True)
def _add(c: Context) -> Converted:
    return "add", {}, {}


@REGISTRY.register(L.Concatenate, kinds=("concatenate",), merge=True)
def _concatenate(c: Context) -> Converted:
    axis = int(c.config.get("axis", -1))  # Keras' channels_last axis is the canonical one
    if axis % len(c.in_shape[0]) == 0:
        raise c.refuse(f"axis={axis} is the batch axis")
    return "concatenate", {"axis": axis}, {}
