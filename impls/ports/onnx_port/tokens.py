"""The ONNX port's class_token and position_embedding (issue 25), on the (B, T, D) sequence in its canonical layout:
class_token is the (1, 1, D) token initializer Expanded to (B, 1, D) (B read by Shape(start=0, end=1)) and
Concatenated before the sequence on axis 1; position_embedding is an Add of the (1, T, D) embedding initializer."""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import CANON, EMITTERS, _Graph


@EMITTERS.register("class_token")
def class_token(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(CANON, 3)
    x, d = g.value, int(shape[-1])
    batch = g.node("Shape", [x], start=0, end=1)[0]  # (1,): B
    target = g.node("Concat", [batch, g.const("token_rest", np.asarray([1, d], np.int64))], axis=0)[0]
    token = g.node("Expand", [g.weight("token", layer.weights["token"]), target])[0]
    g.value = g.node("Concat", [token, x], axis=1)[0]


@EMITTERS.register("position_embedding")
def position_embedding(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(CANON, 3)
    g.apply("Add", g.weight("embedding", layer.weights["embedding"]))


__all__ = ["class_token", "position_embedding"]
