"""Gather: of a constant table by the graph's (batch, time) ids, an embedding (nn.Embedding, Keras' Embedding); of a
computed tensor by a scalar index, one time step (recurrent.last_step: out[:, -1]) or the one layer's state h[-1] of
Y_h (bookkeeping). ONNX has no masking op: padded sequences reach an ONNX graph as a recurrent op's sequence_lens,
which the description does not take (recurrent.py refuses it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from .context import REGISTRY, Context, attrs
from .recurrent import last_step
from .values import Value

REGISTRY.absent("masking", "ONNX has no masking op: exporters write a recurrent op's sequence_lens instead (a second "
                "graph input, refused: the description takes one input)")  # fmt: skip


@REGISTRY.register("Gather", kinds=("embedding", "take_step"))
def gather(ctx: Context, pos: int, node: Any) -> None:
    if node.input[0] in ctx.consts:  # Gather(table, ids): an embedding (nn.Embedding, Keras' Embedding)
        return _embedding(ctx, pos, node)
    idx = np.asarray(ctx.const(pos, node, 1))
    if idx.ndim != 0:
        raise ctx.refuse(pos, node, f"gathers indices of shape {idx.shape}: a scalar index (out[:, -1]) only")
    axis = attrs(node).get("axis", 0) % len(ctx.value.axes)
    if ctx.value.axes[axis] is None and int(idx) in (0, -1):  # h[-1] of Y_h (1, B, H): the one layer's state
        v = ctx.value
        return ctx.set(replace(v, name=node.output[0], axes=tuple(ax for k, ax in enumerate(v.axes) if k != axis)))
    last_step(ctx, pos, node, axis, int(idx), keep=False)


def _embedding(ctx: Context, pos: int, node: Any) -> None:
    table = np.asarray(ctx.consts[node.input[0]])
    v = ctx.value
    if attrs(node).get("axis", 0) != 0 or table.ndim != 2 or ctx.layers or v.axes != (0, 1):
        raise ctx.refuse(pos, node, f"gathers axis {attrs(node).get('axis', 0)} of a {table.ndim}-D constant from "
                         f"axes {v.axes}: an embedding (rows of a 2-D table by the graph's (batch, time) ids, first) only")  # fmt: skip
    ctx.emit("embedding", node, {"input_dim": int(table.shape[0]), "output_dim": int(table.shape[1])},
             {"embeddings": table})  # fmt: skip
    ctx.notes.append(f"node {pos} {node.name!r}: ONNX's Gather wraps a negative id; the description refuses ids "
                     f"outside [0, {table.shape[0]}) (Model.check_input)")
    ctx.set(Value(node.output[0], (0, 1, 2)))


__all__ = ["gather"]
