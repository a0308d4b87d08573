"""The ONNX port's embedding and masking: a Gather on the table, and the zeroing of masked steps; each counts its
rows' valid steps, the sequence_lens of the recurrent layers its mask reaches (impls/ports/onnx_port/recurrent.py).

An embedding is a Gather on int64/int32 ids (ONNX wraps a negative id: the voice refuses ids outside the table at its
boundary, Model.check_input, the written file cannot); masking is a few nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import CANON, EMITTERS, NCHW, TBF, _Graph, helper, onnx


@EMITTERS.register("embedding")
def embedding(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Gather on the table. ONNX's Gather wraps a negative id (-1 reads the last row) where the contract refuses it:
    the nnparity voice refuses such ids at the boundary (Model.check_input); the written file alone does not."""
    ids = g.value
    g.value = g.node("Gather", [g.weight("embeddings", layer.weights["embeddings"]), ids], axis=0)[0]
    g.layout = CANON
    if opts["mask_zero"]:  # sequence_lens: the ids != 0 on each row (post-padded: its first `length` steps)
        valid = g.node("Not", [g.node("Equal", [ids, g.const("pad_id", 0, np.dtype(g.model.input_dtype))])[0]])[0]
        g.lens[i] = g.node("ReduceSum", [g.node("Cast", [valid], to=onnx.TensorProto.INT32)[0], g.const("ax1", [1])],
                           keepdims=0)[0]
    g.notes.append(f"{layer.name}: ONNX's Gather wraps a negative id; nnparity refuses ids outside [0, "
                   f"{opts['input_dim']}) at the boundary (Model.check_input), the written file alone does not")


@EMITTERS.register("masking")
def masking(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Steps whose features all equal mask_value are zeroed; their count per row is the sequence_lens of the
    recurrent layers the mask reaches (any(x != value) summed over time; post-padding is the caller's to keep)."""
    if g.layout == NCHW:
        g.to(CANON, 3)
    x = g.value
    differs = g.node("Not", [g.node("Equal", [x, g.weight("mask_value", np.asarray(opts["mask_value"]))])[0]])[0]
    keep = g.node("ReduceMax", [g.node("Cast", [differs], to=helper.np_dtype_to_tensor_dtype(g.dtype))[0],
                                g.const("ax_f", [-1])], keepdims=1)[0]  # (., ., 1): 1 on a valid step
    g.value = g.node("Mul", [x, keep])[0]
    time_axis = 0 if g.layout == TBF else 1
    g.lens[i] = g.node("Cast", [g.node("ReduceSum", [keep, g.const("ax_t", [time_axis, 2])], keepdims=0)[0]],
                       to=onnx.TensorProto.INT32)[0]


__all__ = ["embedding", "masking"]
