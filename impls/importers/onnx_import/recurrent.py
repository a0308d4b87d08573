"""Recurrent layers: ONNX's GRU and LSTM (forward or bidirectional, layout 0 or 1) as gru / lstm, with the patterns
torch.onnx.export and nnparity's ONNX port write around them (Y or Y_h, the two directions joined on the features),
and one time step of a sequence (Slice, or Gather through embedding.py: torch's out[:, -1]) as take_step, or as the
layer's return_sequences=False where it is a forward layer's last step. Loop and Scan (tf2onnx's GRU) and the plain
RNN are refused with their own reason.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ... import convert
from . import slicing
from .context import REGISTRY, Context, as_str, attrs
from .values import Value

_LOOP_REASON = ("is a loop: this is how Keras' ONNX export (tf2onnx) writes a GRU; import the Keras model itself "
                "(its .keras file) instead")  # fmt: skip
REFUSED: dict[str, str] = {
    "Loop": _LOOP_REASON, "Scan": _LOOP_REASON,
    "RNN": "is a plain RNN: the description's recurrent layers are the GRU and the LSTM",
}  # fmt: skip
"""Ops users meet that are refused with their own reason (a lookup miss gives the supported list alone)."""
for _op, _why in REFUSED.items():
    REGISTRY.refuse(_op, _why)

_DEFAULT_ACTS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


@REGISTRY.register("LSTM", kinds=("lstm",))
@REGISTRY.register("GRU", kinds=("gru",))
def rnn(ctx: Context, pos: int, node: Any) -> None:
    """ONNX's GRU or LSTM (forward or bidirectional, layout 0 or 1) as the description's gru / lstm. Refused with the
    reason: direction 'reverse', clip, other activations, LSTM's input_forget and peepholes P, an initial state that
    differs between batch rows (one the same in every row is initial_state 'weights'), sequence_lens, and the LSTM's
    cell output Y_c."""
    a, op = attrs(node), node.op_type
    direction = as_str(a.get("direction", b"forward"))
    acts = [as_str(x) for x in a.get("activations", [])]
    D = 2 if direction == "bidirectional" else 1
    if direction not in ("forward", "bidirectional"):
        raise ctx.refuse(pos, node, f"runs direction={direction!r}: forward or bidirectional {op}s only")
    if "clip" in a:
        raise ctx.refuse(pos, node, f"has clip={a['clip']}: the description's cells do not clip")
    if acts not in ([], _DEFAULT_ACTS[op] * D):
        raise ctx.refuse(pos, node, f"has activations {acts}: the {op}'s defaults ({', '.join(_DEFAULT_ACTS[op])}) only")
    if a.get("input_forget", 0):
        raise ctx.refuse(pos, node, "has input_forget=1 (coupled input and forget gates): not in the contract")
    if len(node.input) > 4 and node.input[4]:
        raise ctx.refuse(pos, node, "has sequence_lens: the description takes one input, and every sequence runs its "
                         "full length in an imported graph (padded sequences come from an embedding's mask_zero or a "
                         "masking layer, which ONNX has not)")  # fmt: skip
    if op == "LSTM":
        P = ctx.const(pos, node, 7)
        if P is not None and np.any(P != 0):
            raise ctx.refuse(pos, node, "has peepholes (a non-zero P): the contract's LSTM has none")
        if P is not None:
            ctx.notes.append(f"node {pos} {node.name!r}: an all-zero peephole input P, the same as none")
    layout = int(a.get("layout", 0))
    states = _initial_states(ctx, pos, node, op, layout, D)
    want = (1, 0, 2) if layout == 0 else (0, 1, 2)
    if ctx.value.axes != want:
        raise ctx.refuse(pos, node, f"(layout {layout}) takes its input in axes {ctx.value.axes} of (B, T, F), not {want}")
    if layout == 1:
        ctx.notes.append(f"node {pos} {node.name!r}: layout=1 (batch-first) imports, but ONNX Runtime 1.31's CPU {op} "
                         "refuses it ('Batchwise recurrent operations (layout == 1) are not supported'): the file itself "
                         "does not run there")  # fmt: skip
    W, R = ctx.const(pos, node, 1), ctx.const(pos, node, 2)
    G = 4 if op == "LSTM" else 3
    H = int(a.get("hidden_size", R.shape[-1]))
    Bias = ctx.const(pos, node, 3, np.zeros((D, 2 * G * H), W.dtype))
    if op == "LSTM":
        cells = convert.lstm_from_onnx(W, R, Bias)
    else:
        cells = [convert.gru_from_onnx(W[d : d + 1], R[d : d + 1], Bias[d : d + 1]) for d in range(D)]
    weights = {k + s: v for s, c in zip(("", "_rev"), cells) for k, v in zip(("W", "U", "b_x", "b_h"), (c.W, c.U, c.b_x, c.b_h))}
    outs = [*node.output, "", ""]
    y, y_h, y_c = outs[0], outs[1], outs[2] if op == "LSTM" else ""
    if y_c and ctx.used(y_c):
        raise ctx.refuse(pos, node, "uses its cell state Y_c: a chain returns the hidden states only")
    seq, last = bool(y) and ctx.used(y), bool(y_h) and ctx.used(y_h)
    if seq == last:
        raise ctx.refuse(pos, node, "uses both Y and Y_h (a branch), or neither: a chain takes one of them")
    if states:
        H0 = next(iter(states.values())).shape[-1]
        weights |= {k + s: states.get(k, np.zeros((D, H0), W.dtype))[d] for k in (("h0", "c0") if op == "LSTM" else ("h0",))
                    for d, s in enumerate(("", "_rev")[:D])}  # fmt: skip
    opts: dict[str, Any] = {"units": H}
    if states:
        opts["initial_state"] = "weights"
    if op == "GRU":
        opts["variant"] = "reset_after" if a.get("linear_before_reset", 0) else "reset_before"
    opts["return_sequences"] = seq
    if D == 2:
        opts["direction"] = direction
    ctx.emit(op.lower(), node, opts, weights)
    if D == 1:
        if seq:  # Y (T, 1, B, H) in layout 0, (B, T, 1, H) in layout 1
            ctx.set(Value(y, (1, None, 0, 2) if layout == 0 else (0, 1, None, 2)))
        else:  # Y_h (1, B, H) / (B, 1, H)
            ctx.set(Value(y_h, (None, 0, 1) if layout == 0 else (0, None, 1)))
        return
    ctx.set(_merge_directions(ctx, pos, node, y if seq else y_h, seq, layout, H))


def _initial_states(ctx: Context, pos: int, node: Any, op: str, layout: int, D: int) -> dict[str, np.ndarray]:
    """initial_h (and the LSTM's initial_c) as the description's given states {"h0", "c0": (D, H)}: constants (the
    folding evaluates an Expand over the batch, as nnparity's port and torch.onnx write a state held per model), one
    per direction and the same in every batch row; all zero (or absent) is the zero state, {}. A state that differs
    between the rows of the batch is refused: the description's is one per direction, broadcast over the batch."""
    out = {}
    for k, what, name in ((5, "initial_h", "h0"), (6, "initial_c", "c0")):
        if k == 6 and op != "LSTM":
            continue
        s = ctx.const(pos, node, k)
        if s is None or not np.any(s != 0):
            continue
        s = np.asarray(s)
        s = s if layout == 0 else np.swapaxes(s, 0, 1)  # layout 1 holds (B, D, H)
        if s.ndim != 3 or s.shape[0] != D:
            raise ctx.refuse(pos, node, f"has {what} of shape {s.shape}: (directions {D}, batch, hidden) expected")
        if np.any(s != s[:, :1]):
            raise ctx.refuse(pos, node, f"starts from an {what} that differs between the rows of the batch: the "
                             "description's given initial state is one (H,) per direction, broadcast over the batch")  # fmt: skip
        out[name] = s[:, 0]
    if out:
        ctx.notes.append(f"node {pos} {node.name!r}: starts from the given {' and '.join(sorted(out))} (initial_state "
                         "'weights'), the same in every batch row")  # fmt: skip
    return out


def _merge_directions(ctx: Context, pos: int, node: Any, out: str, seq: bool, layout: int, H: int) -> Value:
    """A bidirectional layer's two halves joined on the features (merge_mode concat), as the exporters write it:
    Y (T, 2, B, H) -> Transpose(0, 2, 1, 3) -> Reshape (T, B, 2H) (torch.onnx.export, nnparity's port); layout 1's
    Y (B, T, 2, H) -> Reshape (B, T, 2H); Y_h (2, B, H) -> Transpose(1, 0, 2) -> Reshape (B, 2H) (nnparity's port), or
    Gather 0 and 1 (h_n[-2], h_n[-1]) -> Concat on the features (torch.cat([h_n[-2], h_n[-1]], 1))."""
    why = ("is bidirectional and uses its two directions other than joined forward-then-backward on the features (a Transpose and a Reshape, "
           "or torch.cat([h_n[-2], h_n[-1]], 1)): merge_mode concat only")  # fmt: skip
    tr = ctx.next_only(out, "Transpose")
    perm = list(attrs(tr).get("perm", [])) if tr is not None else None
    if seq and layout == 0 and perm == [0, 2, 1, 3] or not seq and layout == 0 and perm == [1, 0, 2]:
        rs = ctx.next_only(tr.output[0], "Reshape")
        if rs is not None and len(ctx.shape(rs.output[0])) == (3 if seq else 2) and ctx.shape(rs.output[0])[-1] == 2 * H:
            ctx.take(tr)
            ctx.take(rs)
            return Value(rs.output[0], (1, 0, 2) if seq else (0, 1))
    if seq and layout == 1:
        rs = ctx.next_only(out, "Reshape")
        if rs is not None and len(ctx.shape(rs.output[0])) == 3 and ctx.shape(rs.output[0])[-1] == 2 * H:
            ctx.take(rs)
            return Value(rs.output[0], (0, 1, 2))
    if not seq:  # torch.cat([h_n[-2], h_n[-1]], 1): the two Gathers of Y_h (2, B, H), joined on the features
        users = ctx.consumers(out)
        idx = [int(np.asarray(ctx.consts.get(n.input[1], 99))) % 2 if n.op_type == "Gather" and n.input[1] in ctx.consts
               and np.ndim(ctx.consts[n.input[1]]) == 0 and attrs(n).get("axis", 0) == 0 else None for _, n in users]
        if len(users) == 2 and sorted(i for i in idx if i is not None) == [0, 1]:
            g = {i: n for i, (_, n) in zip(idx, users)}
            cat = ctx.next_only(g[0].output[0], "Concat")
            if (cat is not None and list(cat.input) == [g[0].output[0], g[1].output[0]]
                    and attrs(cat).get("axis") in (1, -1)):  # fmt: skip
                for n in (g[0], g[1], cat):
                    ctx.take(n)
                return Value(cat.output[0], (0, 1))
    raise ctx.refuse(pos, node, why)


def last_step(ctx: Context, pos: int, node: Any, axis: int, index: int, keep: bool) -> None:
    """One time step of a recurrent layer's sequence (torch's out[:, k]). The last step of a forward layer is its
    final state: the layer returns that instead (return_sequences=False). Any other step, or any step of a
    bidirectional layer (whose backward half at the last step is the backward cell's FIRST step, not its final
    state), is a take_step layer."""
    v = ctx.value
    T = ctx.shape(v.name)[axis]
    rnn = ctx.layers[-1] if ctx.layers else None
    if v.axes[axis] != 1 or v.rank != 3 or not -T <= index < T:
        raise ctx.refuse(pos, node, f"selects index {index} of axis {axis} (axes {v.axes}): one time step of a sequence only")
    if (rnn is not None and rnn.kind in ("gru", "lstm") and rnn.options.get("return_sequences")
            and rnn.options.get("direction", "forward") == "forward" and index in (-1, T - 1) and ctx.ends[-1] is v):  # fmt: skip
        ctx.amend(return_sequences=False)
    else:
        ctx.emit("take_step", node, {"index": index})
    axes = [None if k == axis else ax for k, ax in enumerate(v.axes)] if keep else [ax for k, ax in enumerate(v.axes) if k != axis]
    ctx.set(Value(node.output[0], tuple(ax if ax is None or ax < 1 else ax - 1 for ax in axes)))


@REGISTRY.register("Slice", kinds=("take_step", "slice", "crop2d"))
def slice_step(ctx: Context, pos: int, node: Any) -> None:
    """A Slice that cuts nothing is bookkeeping; one that keeps the last step of a sequence (out[:, -1:]) is last_step;
    any other a slice or a crop2d (slicing.slice_)."""
    src = ctx.shape(ctx.value.name)
    starts, ends = (np.asarray(ctx.const(pos, node, k)).ravel() for k in (1, 2))
    axes = np.asarray(ctx.const(pos, node, 3, np.arange(len(starts)))).ravel()
    steps = np.asarray(ctx.const(pos, node, 4, np.ones(len(starts)))).ravel()
    cut = [(int(ax) % len(src), int(s), int(e)) for ax, s, e, st in zip(axes, starts, ends, steps)
           if not (s == 0 and e >= src[int(ax)] and st == 1)]  # fmt: skip
    if not cut:
        return ctx.set(replace(ctx.value, name=node.output[0]))
    one_step = len(cut) == 1 and len(src) == 3 and cut[0][2] >= src[cut[0][0]] and cut[0][1] in (-1, src[cut[0][0]] - 1)
    if not one_step or np.any(steps != 1):  # any other Slice: a slice / crop2d (issue 24, slicing.py)
        return slicing.slice_(ctx, pos, node)
    last_step(ctx, pos, node, cut[0][0], cut[0][1], keep=True)


__all__ = ["REFUSED", "last_step", "rnn", "slice_step"]
