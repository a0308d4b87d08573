"""A Vision Transformer's learned tokens (issue 25): class_token and position_embedding, on a (B, T, D) sequence.

- class_token: a trainable (1, 1, D) weight `token`, the same for every row, put BEFORE the sequence:
  (B, T, D) -> (B, T + 1, D), y[:, 0] = token, y[:, 1:] = x (torchvision's VisionTransformer:
  `torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`). Op `prepend_token` in every primitive backend.
  The vjp: dx = dy[:, 1:], d token = the sum of dy[:, :1] over the batch.
- position_embedding: a trainable (1, T, D) weight `embedding` added to the sequence, y = x + embedding
  (torchvision's Encoder.pos_embedding, `input + self.pos_embedding`). The vjp: dx = dy, d embedding = the sum of dy
  over the batch. No op: `+` of the backend's own arrays.

Neither takes a padding mask (a padded position would get a token or an embedding, and the class token shifts every
step by one): both refuse a masked input.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from .base import LayerSpec


def _sequence(kind: str, in_shape: tuple) -> None:
    if len(in_shape) != 3:
        raise ShapeError(f"{kind} takes a (B, T, D) sequence, got {tuple(in_shape)}")


class ClassToken(LayerSpec):
    """class_token: y = concat([token (broadcast over the batch), x], axis 1); token (1, 1, D) trainable."""

    KIND = "class_token"
    OPS = ("prepend_token",)

    def output_shape(self, opts, in_shape):
        _sequence(self.KIND, in_shape)
        return (in_shape[0], in_shape[1] + 1, in_shape[2])

    def weight_shapes(self, opts, in_shape):
        return {"token": (1, 1, int(in_shape[-1]))}

    def forward(self, ops, x, opts, w):
        return ops.prepend_token(x, w["token"])

    def vjp(self, x, opts, w, dy):
        return dy[:, 1:], {"token": np.sum(dy[:, :1], axis=0, keepdims=True)}


class PositionEmbedding(LayerSpec):
    """position_embedding: y = x + embedding, embedding (1, T, D) trainable."""

    KIND = "position_embedding"

    def output_shape(self, opts, in_shape):
        _sequence(self.KIND, in_shape)
        return in_shape

    def weight_shapes(self, opts, in_shape):
        return {"embedding": (1, int(in_shape[1]), int(in_shape[2]))}

    def forward(self, ops, x, opts, w):
        return x + w["embedding"]

    def vjp(self, x, opts, w, dy):
        return dy, {"embedding": np.sum(dy, axis=0, keepdims=True)}


CLASS_TOKEN = ClassToken()
POSITION_EMBEDDING = PositionEmbedding()

__all__ = ["CLASS_TOKEN", "POSITION_EMBEDDING"]
