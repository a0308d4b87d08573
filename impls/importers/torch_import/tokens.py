"""A Vision Transformer's learned tokens from torch.fx (issue 25), as torchvision's VisionTransformer writes them:

- `torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)` -> class_token: the parameter (1, 1, D), trainable,
  expanded over the batch, FIRST on dim 1 of a (B, T, D) sequence (a token after the sequence, another dim, or a
  constant that is no trainable parameter is refused, naming the node). shape.py's torch.cat hands it here; the walker
  skips the expand (context.held_expand) as it skips the get_attr it reads.
- `x + self.pos_embedding` (elementwise.py's add of a held tensor hands it here) -> position_embedding: a trainable
  parameter shaped (1, T, D) on a (B, T, D) sequence. A parameter of another shape is elementwise.py's to refuse.
"""

from __future__ import annotations

import numpy as np

from ...layouts import Layout
from ...model.description import Layer
from .context import Node, Step, _arg, _Ctx, fetch, held_expand, torch


def _name(ctx: _Ctx, held: Node) -> str:
    """The layer's name: the parameter's own (`class_token`, `encoder.pos_embedding`)."""
    name = str(held.target)
    while name in ctx.names:
        name += "_"
    ctx.names.add(name)
    return name


def class_token(ctx: _Ctx, node: Node, parts: list) -> Step:
    if len(parts) != 2 or not held_expand(parts[0]) or held_expand(parts[1]):
        raise ctx.refuse(node, f"torch.cat of {[a.name for a in parts]}: a held tensor expanded over the batch is a "
                               "class token only first of two, before the sequence (torch.cat([token, x], dim=1))")  # fmt: skip
    expand, x = parts
    shape, layout = ctx.shapes[x], ctx.tensors[x][1]
    dim = _arg(node, 1, "dim", 0)
    if len(shape) != 3 or layout.kind != "plain" or dim % 3 != 1:
        raise ctx.refuse(node, f"it puts a held token before {tuple(shape)} (held {layout.kind}) on dim {dim}: a class "
                               "token goes before the steps (dim 1) of a (B, T, D) sequence")  # fmt: skip
    held = expand.args[0]
    obj = fetch(ctx.gm, held)
    if not isinstance(obj, torch.nn.Parameter) or not obj.requires_grad or tuple(obj.shape) != (1, 1, shape[2]):
        raise ctx.refuse(node, f"{held.target!r} {tuple(obj.shape)} is not a trainable (1, 1, {shape[2]}) parameter: "
                               "the description's class token is one")  # fmt: skip
    token = obj.detach().cpu().numpy().astype(ctx.dtype)
    return Step(Layer("class_token", _name(ctx, held), {}, {"token": token}), [expand, node], Layout("plain"), joined=[x])


def is_position_embedding(k: np.ndarray, shape: tuple, layout: Layout) -> bool:
    """A (1, T, D) held tensor added to a (B, T, D) sequence torch holds as the description does."""
    return len(shape) == 3 and layout.kind == "plain" and tuple(k.shape) == (1, shape[1], shape[2])


def position_embedding(ctx: _Ctx, node: Node, held: Node, k: np.ndarray) -> Step:
    name = _name(ctx, held)
    return Step(Layer("position_embedding", name, {}, {"embedding": np.asarray(k).astype(ctx.dtype)}), [node],
                Layout("plain"))


__all__ = ["class_token", "is_position_embedding", "position_embedding"]
