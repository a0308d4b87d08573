"""Reshape and Permute (Keras' layers; the batch axis is never touched), in canonical row-major order.

reshape: `target_shape` without the batch, one entry may be -1. permute: `dims`, a permutation of 1..rank-1 as Keras
writes it (1-based, batch excluded). Both act on the description's canonical layout (NHWC images): a source that
holds a 4-D map channels first (torch, ONNX) reshapes (c, h, w) memory, which the importer translates (or refuses,
naming the layer) as it does the Dense after a Flatten."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec


class Reshape(LayerSpec):
    KIND = "reshape"
    OPS = ("reshape",)
    REQUIRED = ("target_shape",)

    def validate(self, opts):
        t = opts["target_shape"]
        try:
            t = [int(d) for d in t]
        except (TypeError, ValueError):
            raise ModelError(f"reshape: target_shape must be a list of ints, got {t!r}") from None
        if not t or sum(d == -1 for d in t) > 1 or any(d == 0 or d < -1 for d in t):
            raise ModelError(f"reshape: target_shape {t} needs sizes >= 1 and at most one -1")
        return {"target_shape": t}

    def output_shape(self, opts, in_shape):
        n = int(np.prod(in_shape[1:]))
        t = list(opts["target_shape"])
        known = int(np.prod([d for d in t if d != -1]))
        if -1 in t:
            if n % known:
                raise ShapeError(f"reshape: {in_shape[1:]} ({n} values) does not fill {t}")
            t[t.index(-1)] = n // known
        if int(np.prod(t)) != n:
            raise ShapeError(f"reshape: {in_shape[1:]} ({n} values) cannot become {tuple(t)} ({int(np.prod(t))} values)")
        return (in_shape[0], *t)

    def forward(self, ops, x, opts, w):
        B = int(x.shape[0])
        return ops.reshape(x, self.output_shape(opts, (B, *(int(d) for d in x.shape[1:]))))

    def vjp(self, x, opts, w, dy):
        return dy.reshape(x.shape), {}


class Permute(LayerSpec):
    KIND = "permute"
    OPS = ("transpose",)
    REQUIRED = ("dims",)

    def validate(self, opts):
        try:
            dims = [int(d) for d in opts["dims"]]
        except (TypeError, ValueError):
            raise ModelError(f"permute: dims must be a list of ints, got {opts['dims']!r}") from None
        if sorted(dims) != list(range(1, len(dims) + 1)):
            raise ModelError(f"permute: dims {dims} is not a permutation of 1..{len(dims)} (1-based, batch excluded)")
        return {"dims": dims}

    def output_shape(self, opts, in_shape):
        if len(opts["dims"]) != len(in_shape) - 1:
            raise ShapeError(f"permute: dims {opts['dims']} for an input of rank {len(in_shape)} {in_shape}")
        return (in_shape[0], *(in_shape[d] for d in opts["dims"]))

    def forward(self, ops, x, opts, w):
        return ops.transpose(x, (0, *opts["dims"]))

    def vjp(self, x, opts, w, dy):
        return np.transpose(dy, np.argsort((0, *opts["dims"]))), {}


class Add(LayerSpec):
    """add: the element-wise sum of two or more tensors of one shape (a residual connection)."""

    KIND = "add"
    ARITY = 0
    KEEPS_MASK = True

    def output_shape(self, opts, in_shapes):
        if len({tuple(s) for s in in_shapes}) != 1:
            raise ShapeError(f"add needs inputs of one shape, got {list(in_shapes)}")
        return in_shapes[0]

    def forward(self, ops, xs, opts, w):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y

    def vjp(self, xs, opts, w, dy):
        return [dy] * len(xs), {}


class Concatenate(LayerSpec):
    """concatenate on `axis` of the canonical layout (-1: the channels of an NHWC map, the features of a sequence);
    torch's cat(dim=1) on NCHW maps is axis -1 here, and the importers translate it."""

    KIND = "concatenate"
    OPS = ("concat",)
    ARITY = 0
    KEEPS_MASK = True
    DEFAULTS: ClassVar[dict] = {"axis": -1}

    def validate(self, opts):
        if isinstance(opts["axis"], bool) or not isinstance(opts["axis"], (int, np.integer)) or opts["axis"] == 0:
            raise ModelError(f"concatenate: axis must be a non-batch axis (an int, not 0), got {opts['axis']!r}")
        return {"axis": int(opts["axis"])}

    def _axis(self, opts, rank):
        a = opts["axis"] % rank
        if a == 0:
            raise ShapeError(f"concatenate: axis {opts['axis']} is the batch axis for rank {rank}")
        return a

    def output_shape(self, opts, in_shapes):
        rank = len(in_shapes[0])
        a = self._axis(opts, rank)
        if any(len(s) != rank or tuple(s[:a]) + tuple(s[a + 1:]) != tuple(in_shapes[0][:a]) + tuple(in_shapes[0][a + 1:])
               for s in in_shapes):
            raise ShapeError(f"concatenate on axis {opts['axis']}: the other axes differ in {list(in_shapes)}")
        return (*in_shapes[0][:a], sum(s[a] for s in in_shapes), *in_shapes[0][a + 1:])

    def forward(self, ops, xs, opts, w):
        return ops.concat(list(xs), self._axis(opts, len(xs[0].shape)))

    def vjp(self, xs, opts, w, dy):
        a = self._axis(opts, dy.ndim)
        cuts = np.cumsum([x.shape[a] for x in xs])[:-1]
        return list(np.split(dy, cuts, axis=a)), {}


RESHAPE = Reshape()
PERMUTE = Permute()
ADD = Add()
CONCATENATE = Concatenate()
