"""The ONNX port's recurrent kinds: gru and lstm (ONNX's own GRU and LSTM operators) and take_step.

LSTM and GRU are ONNX's own operators (convert.lstm_to_onnx / gru_to_onnx), forward or bidirectional, the halves
merged from Y (T, D, B, H) / Y_h (D, B, H); the GRU's nodes are impls/runtime/onnx_graphs.gru_nodes. Where a
padding mask reaches a recurrent layer (Model.mask_sources) the graph computes its sequence_lens from the mask
source's input (impls/ports/onnx_port/embedding.py); ONNX's zeros at padded steps are padded_outputs "zero", "hold"
is gathered exactly. Post-padding cannot be checked inside the graph: the doc_string says so. take_step is a Gather.
ONNX Runtime 1.31's CPU GRU and LSTM kernels are float32 only (limits.py), and the GRU operator computes the
variants GRU_VARIANTS["onnxruntime"] only: both refused with the reason. A given initial state (initial_state
"weights") is initial_h / initial_c: initializers (D, 1, H) expanded over the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import GRU_VARIANTS, convert
from ...model.layers import gru as gru_layer
from ...model.layers import lstm as lstm_layer
from ...model.layers import rnn
from ...runtime import onnx_graphs
from .builder import CANON, EMITTERS, NCHW, TBF, VOICE, _Graph, numpy_helper, onnx, ort_kernel


def _gru_check(opts: dict, dtype: str) -> str | None:
    """The variants ONNX's GRU operator has (linear_before_reset 0 and 1), then the float32-only kernel."""
    if opts["variant"] not in GRU_VARIANTS[VOICE]:
        return (f"the ONNX GRU operator computes {' and '.join(GRU_VARIANTS[VOICE])} only "
                f"(linear_before_reset 0 and 1), not the variant {opts['variant']!r}")  # fmt: skip
    return ort_kernel("gru")(opts, dtype)


@EMITTERS.register("lstm", check=ort_kernel("lstm"))
@EMITTERS.register("gru", check=_gru_check)
def recurrent(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """One ONNX LSTM or GRU node (layout 0, X (T, B, I)), direction "forward" or "bidirectional"; Y (T, D, B, H) and
    Y_h (D, B, H) merged as the description says. Where a padding mask reaches the layer (Model.mask_sources) its
    sequence_lens are the mask source's valid-step counts, computed in the graph: ONNX's LSTM and GRU then give zeros
    at padded steps (padded_outputs "zero"; the backward cell runs each row's valid steps last-first) and the last
    valid state in Y_h (measured in ONNX Runtime 1.31: a row of length 0 gives zeros in Y and Y_h, as the contract).
    padded_outputs "hold" is emulated exactly: the forward half's Y gathered at min(t, length - 1) (GatherElements)."""
    g.to(TBF, 3)
    H, dirs = opts["units"], rnn.directions(opts)
    cells = [rnn.cell_weights(layer.weights, s) for s in dirs]
    if layer.kind == "lstm":
        w = convert.lstm_to_onnx([lstm_layer.weights(c) for c in cells])
        attrs: dict = {}
    else:
        per = [convert.gru_to_onnx(gru_layer.weights(c)) for c in cells]
        w = {k: np.concatenate([d[k] for d in per]) for k in ("W", "R", "B")}
        attrs = {"linear_before_reset": onnx_graphs.LINEAR_BEFORE_RESET[opts["variant"]]}
    src = g.sources[i]
    lens = g.lens[src] if src is not None else ""
    op = "LSTM" if layer.kind == "lstm" else "GRU"
    y, y_h = g.node(op, [g.value, *(g.weight(k, w[k]) for k in ("W", "R", "B")), lens,
                         *_initial(g, layer, cells)], n_out=2, hidden_size=H,
                    direction=opts["direction"], **attrs)[:2]
    D = len(dirs)
    concat = D == 2 and opts["merge_mode"] == "concat"
    if opts["return_sequences"]:  # Y (T, D, B, H)
        if concat and not (src is not None and opts["padded_outputs"] == "hold"):  # torch.onnx.export's own form
            both = g.node("Transpose", [y], perm=[0, 2, 1, 3])[0]  # (T, B, D, H)
            g.value, g.layout = g.node("Reshape", [both, g.const("shape_seq", [0, 0, D * H])])[0], TBF
            return
        parts = ([g.node("Squeeze", [y, g.const("ax1", [1])])[0]] if D == 1
                 else [g.node("Squeeze", [p_, g.const("ax1", [1])])[0]
                       for p_ in g.node("Split", [y], n_out=2, axis=1, num_outputs=2)])
        if src is not None and opts["padded_outputs"] == "hold":
            parts[0] = _hold(g, parts[0], lens, shape[1])
            g.notes.append(f"{layer.name}: padded_outputs 'hold' as the forward half's last valid step, gathered "
                           "(GatherElements at min(t, length - 1)) from ONNX's zero-padded Y")
        g.value, g.layout = _merged(g, parts, opts["merge_mode"]), TBF
    elif concat:  # Y_h (2, B, H) -> (B, 2, H) -> (B, 2H): forward final state, then the backward one (after position 0)
        both = g.node("Transpose", [y_h], perm=[1, 0, 2])[0]
        g.value, g.layout = g.node("Reshape", [both, g.const("shape_state", [0, D * H])])[0], CANON
    else:  # Y_h (D, B, H): the final states, the backward one after position 0
        parts = [g.node("Squeeze", [p_, g.const("ax0", [0])])[0]
                 for p_ in ([y_h] if D == 1 else g.node("Split", [y_h], n_out=2, axis=0, num_outputs=2))]
        g.value, g.layout = _merged(g, parts, opts["merge_mode"]), CANON


def _initial(g: _Graph, layer: Any, cells: list[dict]) -> list[str]:
    """initial_h (and the LSTM's initial_c), (D, B, H): the given states (initial_state "weights", (H,) per direction,
    forward then backward as ONNX's D axis is) as initializers (D, 1, H) expanded over the batch of X (T, B, I)."""
    if "h0" not in cells[0]:
        return []
    batch = g.node("Gather", [g.node("Shape", [g.value])[0], g.const("batch_axis", [1])])[0]  # (1,): B
    shape = g.node("Concat", [g.const("one_1", [1]), batch, g.const("one_1b", [1])], axis=0)[0]  # (1, B, 1)
    names = ("h0", "c0") if layer.kind == "lstm" else ("h0",)
    return [g.node("Expand", [g.weight(f"initial_{k[0]}", np.stack([c[k] for c in cells])[:, None, :]), shape])[0]
            for k in names]


def _merged(g: _Graph, parts: list[str], mode: str) -> str:
    """Forward and backward halves ((T, B, H) or (B, H)) merged on the last axis: concat (forward first), sum, ave, mul."""
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if mode == "concat":
        return g.node("Concat", [a, b], axis=-1)[0]
    if mode == "mul":
        return g.node("Mul", [a, b])[0]
    total = g.node("Add", [a, b])[0]
    return total if mode == "sum" else g.node("Mul", [total, g.weight("half", np.asarray(0.5))])[0]


def _hold(g: _Graph, y: str, lens: str, T: int) -> str:
    """y (T, B, H) zero at padded steps -> y[min(t, length_b - 1), b] (a row of length 0 reads its step 0: zeros)."""
    last = g.node("Sub", [g.node("Cast", [lens], to=onnx.TensorProto.INT64)[0], g.const("one", 1)])[0]  # (B,)
    idx = g.node("Max", [g.node("Min", [g.const("steps", np.arange(T).reshape(T, 1)), last])[0], g.const("zero", 0)])[0]
    idx = g.node("Expand", [g.node("Unsqueeze", [idx, g.const("ax2", [2])])[0], g.node("Shape", [y])[0]])[0]
    return g.node("GatherElements", [y, idx], axis=0)[0]


@EMITTERS.register("take_step")
def take_step(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """x[:, index] as a Gather of one step on the time axis (axis 0 time-major, 1 batch-first)."""
    # a scalar index as a Constant node, as torch.onnx.export writes out[:, -1] (an initializer would be stored 1-D)
    index = g.node("Constant", [], value=numpy_helper.from_array(np.asarray(opts["index"], np.int64)))[0]
    if g.layout == NCHW:
        g.to(CANON, 3)
    g.apply("Gather", index, axis=0 if g.layout == TBF else 1)
    g.layout = CANON


__all__ = ["recurrent", "take_step"]
