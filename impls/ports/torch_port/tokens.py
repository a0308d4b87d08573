"""The torch port's class_token and position_embedding (issue 25): small modules written into model.py (source.HELPERS),
each holding its weight as an nn.Parameter in the canonical shape, as torchvision's VisionTransformer holds them:
`ClassToken` (token (1, 1, D); torch.cat of the token expanded over the batch, then x) and `PositionEmbedding`
(embedding (1, T, D); x + embedding). Both read a (B, T, D) sequence (torch's layout "plain")."""

from __future__ import annotations

import numpy as np

from ...layouts import Layout
from ...model.description import Layer
from .code import EMITTERS, _Piece
from .source import HELPERS, shape_text, torch_shape

HELPERS["ClassToken"] = '''class ClassToken(nn.Module):
    """A trainable (1, 1, D) token put before every row of a (B, T, D) sequence: (B, T + 1, D)."""

    def __init__(self, dim):
        super().__init__()
        self.token = nn.Parameter(torch.empty(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)'''

HELPERS["PositionEmbedding"] = '''class PositionEmbedding(nn.Module):
    """A trainable (1, T, D) embedding added to a (B, T, D) sequence."""

    def __init__(self, steps, dim):
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(1, steps, dim))

    def forward(self, x):
        return x + self.embedding'''


def _back(key: str):
    return lambda a: {key: np.asarray(a[key])} if key in a else {}


@EMITTERS.register("class_token")
def class_token(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    out = torch_shape((shape[0], shape[1] + 1, shape[2]), layout)
    state = {"token": np.asarray(layer.weights["token"]).copy()}
    return _Piece(f"ClassToken({shape[2]})  # a trainable (1, 1, {shape[2]}) token first",
                  [f"x = self.{{a}}(x)  # {shape_text(out)}"], state, _back("token"), out, layout,
                  helpers=("ClassToken",))  # fmt: skip


@EMITTERS.register("position_embedding")
def position_embedding(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    out = torch_shape(shape, layout)
    state = {"embedding": np.asarray(layer.weights["embedding"]).copy()}
    return _Piece(f"PositionEmbedding({shape[1]}, {shape[2]})  # x + a trainable (1, {shape[1]}, {shape[2]}) embedding",
                  [f"x = self.{{a}}(x)  # {shape_text(out)}"], state, _back("embedding"), out, layout,
                  helpers=("PositionEmbedding",))  # fmt: skip


__all__ = ["class_token", "position_embedding"]
