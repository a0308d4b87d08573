"""The torch port's layers that start a sequence: embedding (nn.Embedding) and masking.

Padded sequences: the layer that makes the padding mask (an embedding with mask_zero, a masking layer) computes
`lengths` in forward, refusing a mask that is not post-padded (padded_lengths), and an embedding an id outside its
table (check_ids), by name: torch's own IndexError names neither the id nor the table's size. A recurrent layer the
mask reaches packs its rows by those lengths (impls/ports/torch_port/recurrent.py).
"""

from __future__ import annotations

import numpy as np

from ...layouts import PLAIN, Layout
from ...model.description import Layer, Model
from .code import EMITTERS, _Piece
from .source import shape_text


@EMITTERS.register("embedding")
def embedding(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Embedding(input_dim, output_dim), the table as its weight; ids checked first, `lengths` where mask_zero."""
    V, D = opts["input_dim"], opts["output_dim"]
    where = f"{layer.name!r} (embedding)"
    lines = [f"check_ids(x, {V}, {where!r})  # torch's own IndexError names neither the id nor the table's size"]
    if opts["mask_zero"]:
        lines.append(f"lengths = padded_lengths(x != 0, {where!r})  # id 0 is padding (mask_zero): valid steps per row")
    out = ("B", *shape[1:], D)
    lines.append(f"x = self.{{a}}(x)  # {shape_text(out)}")

    def back(a):
        return {"embeddings": np.asarray(a["weight"])}

    helpers = ("check_ids", "padded_lengths") if opts["mask_zero"] else ("check_ids",)
    return _Piece(f"nn.Embedding({V}, {D})", lines, {"weight": np.asarray(layer.weights["embeddings"]).copy()}, back,
                  out, PLAIN, helpers=helpers)  # fmt: skip


@EMITTERS.register("masking")
def masking(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """A step whose features all equal mask_value is padding: `lengths` from it, and such steps zeroed."""
    v = opts["mask_value"]
    where = f"{layer.name!r} (masking)"
    lines = [f"valid = (x != {v!r}).any(dim=-1)  # (B, T): a step whose features all equal {v!r} is padding",
             f"lengths = padded_lengths(valid, {where!r})  # valid steps per row",
             "x = x.masked_fill(~valid[:, :, None], 0.0)  # padding steps zeroed, as Keras' Masking outputs them"]
    return _Piece("nn.Identity()  # Masking: the mask is computed in forward", lines, {}, lambda a: {}, ("B", *shape[1:]),
                  PLAIN, helpers=("padded_lengths",))  # fmt: skip


def notes(model: Model) -> list[str]:
    """What the port translates for an embedding, for the certificate."""
    notes = []
    if model.layers and model.layers[0].kind == "embedding":
        notes.append(f"{model.layers[0].label(0)}: forward refuses an id outside the table with a ValueError naming the "
                     "id and the table size (torch's IndexError names neither)")  # fmt: skip
    return notes


__all__ = ["embedding", "masking", "notes"]
