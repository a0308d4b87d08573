"""Embedding: integer ids (B, T) -> table rows (B, T, D); table `embeddings` (input_dim, output_dim).

`mask_zero=True` (Keras' option) makes id 0 padding: the layer passes a (B, T) mask on, which must be post-padded
(every row's valid ids first), the contract's padded sequences. An id outside [0, input_dim) is an error naming the id,
its position and the table size, checked at the model's boundary for every voice (Model.check_input): frameworks
differ here (torch raises without the id, TensorFlow's gather raises on the CPU, Keras' take and ONNX's Gather wrap a
negative id, JAX clamps or fills), and the contract never clamps or wraps."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .base import LayerSpec, flag, positive_int


def check_ids(ids: np.ndarray, vocab: int, where: str) -> None:
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ModelError(f"{where}: takes integer token ids, got dtype {ids.dtype}")
    bad = (ids < 0) | (ids >= vocab)
    if bad.any():
        pos = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ModelError(f"{where}: token id {int(ids[pos])} at position {pos} is outside the table of {vocab} rows "
                         f"(ids must be in [0, {vocab - 1}])")


def check_post_padded(mask: np.ndarray, where: str) -> None:
    """A (B, T) mask must be True on each row's first steps and False after: post-padded."""
    mask = np.asarray(mask, bool)
    lengths = mask.sum(axis=1)
    prefix = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((mask != prefix).any(axis=1))
    if bad.size:
        b = int(bad[0])
        raise ModelError(f"{where}: row {b} is not post-padded (its padding must come after its last valid step; "
                         f"mask {mask[b].astype(int).tolist()}): pre-padded or gapped sequences are outside the contract, "
                         f"where frameworks disagree")


class Embedding(LayerSpec):
    KIND = "embedding"
    OPS = ("embedding", "ids_mask")
    REQUIRED = ("input_dim", "output_dim")
    DEFAULTS: ClassVar[dict] = {"mask_zero": False}

    def validate(self, opts):
        opts["input_dim"] = positive_int(self.KIND, "input_dim", opts["input_dim"])
        opts["output_dim"] = positive_int(self.KIND, "output_dim", opts["output_dim"])
        opts["mask_zero"] = flag(self.KIND, "mask_zero", opts["mask_zero"])
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2:
            raise ShapeError(f"embedding takes ids (B, T), got {in_shape}")
        if opts["mask_zero"] and len(in_shape) != 2:
            raise ShapeError(f"embedding with mask_zero takes ids (B, T), got {in_shape}")
        return (*in_shape, opts["output_dim"])

    def weight_shapes(self, opts, in_shape):
        return {"embeddings": (opts["input_dim"], opts["output_dim"])}

    def init(self, opts, in_shape, seed, dtype="float64"):
        g = np.random.default_rng(seed)
        return {"embeddings": g.uniform(-0.5, 0.5, (opts["input_dim"], opts["output_dim"])).astype(dtype)}

    def forward_masked(self, ops, x, mask, opts, w):
        y = ops.embedding(x, w["embeddings"])
        return y, (ops.ids_mask(x) if opts["mask_zero"] else None)

    def makes_mask(self, opts, masked_input):
        return opts["mask_zero"]

    def forward(self, ops, x, opts, w):
        return ops.embedding(x, w["embeddings"])

    def vjp(self, x, opts, w, dy):
        return None, {"embeddings": ref.embedding_vjp(x, w["embeddings"], dy)["table"]}

    def check_input(self, opts, x, where):
        check_ids(x, opts["input_dim"], where)
        if opts["mask_zero"]:
            check_post_padded(np.asarray(x) != 0, where)


SPEC = Embedding()
