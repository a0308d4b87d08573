"""What the recurrent kinds (gru, lstm) share: directions, merge modes, padded sequences, sequence or final state.

Options (docs/DESIGN.md, "Recurrent layers"):
- `units`; `return_sequences` (False: the final state (B, H'), True: every step (B, T, H'));
- `direction`: "forward" or "bidirectional" (a second cell over each row's valid steps, last first, its outputs
  aligned back to the input's positions; its final state is the one after position 0, which is NOT `out[:, -1]`'s
  backward half: that is its first step);
- `merge_mode` (bidirectional): "concat" (forward then backward on the last axis, H' = 2H), "sum", "ave", "mul" (H' = H);
- `padded_outputs`: what a padded step outputs under a mask: "zero" (torch's pad_packed_sequence, ONNX's sequence_lens,
  Keras with zero_output_for_mask or inside Bidirectional) or "hold" (the last valid step's output, Keras' default).

Weights: the forward cell's (W, U, b_x, b_h) and, bidirectional, the backward cell's with a `_rev` suffix.
- `initial_state`: "zero" (default) or "weights": each direction starts from its own given state, weights `h0` (H,)
  (and the LSTM's `c0` (H,)), `_rev` for the backward cell, broadcast over the batch and trained like every other
  weight (their gradient is the batch's sum). A source whose state is one per row (torch's (D, B, H) of a fixed B,
  ONNX's initial_h) is imported only where every row is the same (the importers refuse the rest, naming the layer).
A mask arrives from an embedding with mask_zero or a masking layer: post-padded, so each row's first `lengths[b]`
steps are valid. The cell itself runs every step (a post-padded row's valid steps come first and do not see the
padding); the time maps of impls/primitives/numpy_seq.py pick and zero what the contract says.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .base import LayerSpec, flag, positive_int

DIRECTIONS = ("forward", "bidirectional")
MERGE_MODES = ("concat", "sum", "ave", "mul")
PADDED_OUTPUTS = ("zero", "hold")
INITIAL_STATES = ("zero", "weights")
CELL_WEIGHTS = ("W", "U", "b_x", "b_h")
STATE_WEIGHTS = {"gru": ("h0",), "lstm": ("h0", "c0")}
"""The given initial state's weights per kind (initial_state "weights"), each (H,) per direction."""


def directions(opts) -> tuple[str, ...]:
    """The weight-name suffixes of the layer's cells: ("",) or ("", "_rev")."""
    return ("", "_rev") if opts["direction"] == "bidirectional" else ("",)


def cell_weights(w: dict, suffix: str) -> dict:
    """One direction's (W, U, b_x, b_h) and, where the layer has a given initial state, its h0 (and c0)."""
    return {k: w[k + suffix] for k in (*CELL_WEIGHTS, "h0", "c0") if k + suffix in w}


def batched(ops, x, v):
    """A given state v (H,) broadcast over x's batch: (B, H) (None stays None, the zero state)."""
    return None if v is None else x[:, 0, :1] * 0 + v


def output_units(opts) -> int:
    H = opts["units"]
    return 2 * H if opts["direction"] == "bidirectional" and opts["merge_mode"] == "concat" else H


RNN_OPS = ("time_maps", "lengths_of", "mask_steps", "take_steps", "reverse_steps", "concat")
"""The sequence ops a recurrent layer calls under a mask or in two directions."""


class Recurrent(LayerSpec):
    REQUIRED = ("units",)
    DEFAULTS: ClassVar[dict] = {"return_sequences": False, "direction": "forward", "merge_mode": "concat",
                                "padded_outputs": "zero", "initial_state": "zero"}
    GATES: ClassVar[int]

    def validate(self, opts):
        opts["units"] = positive_int(self.KIND, "units", opts["units"])
        opts["return_sequences"] = flag(self.KIND, "return_sequences", opts["return_sequences"])
        for name, allowed in (("direction", DIRECTIONS), ("merge_mode", MERGE_MODES), ("padded_outputs", PADDED_OUTPUTS),
                              ("initial_state", INITIAL_STATES)):
            if opts[name] not in allowed:
                raise ModelError(f"{self.KIND}: {name} {opts[name]!r} is not one of {allowed}")
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 3:
            raise ShapeError(f"{self.KIND} takes (B, T, I), got {in_shape}")
        B, T, _ = in_shape
        return (B, T, output_units(opts)) if opts["return_sequences"] else (B, output_units(opts))

    def weight_shapes(self, opts, in_shape):
        H, I, G = opts["units"], in_shape[2], self.GATES
        one = {"W": (I, G * H), "U": (H, G * H), "b_x": (G * H,), "b_h": (G * H,)}
        if opts["initial_state"] == "weights":
            one |= {k: (H,) for k in STATE_WEIGHTS[self.KIND]}
        return {k + s: v for s in directions(opts) for k, v in one.items()}

    def init(self, opts, in_shape, seed, dtype="float64"):
        out = {}
        for n, s in enumerate(directions(opts)):
            out.update({k + s: v for k, v in self.init_cell(in_shape[2], opts["units"], seed + 7919 * n, dtype).items()})
            if opts["initial_state"] == "weights":  # a seeded non-zero state in (-0.5, 0.5)
                rng = np.random.default_rng(seed + 7919 * n + 17)
                out.update({k + s: rng.uniform(-0.5, 0.5, opts["units"]).astype(dtype) for k in STATE_WEIGHTS[self.KIND]})
        return out

    def flops(self, opts, in_shape):
        return len(directions(opts)) * self.cell_flops(opts, in_shape)

    # ------------------------------------------------------------------ what a kind states about its cell

    def init_cell(self, I, H, seed, dtype) -> dict:
        raise NotImplementedError

    def cell_flops(self, opts, in_shape) -> int:
        raise NotImplementedError

    def cell(self, ops, x, opts, w) -> Any:
        """The whole-sequence cell over every step from the direction's initial state (w's h0 / c0 (H,) where given,
        else zeros): (B, T, H)."""
        raise NotImplementedError

    def cell_vjp(self, x, opts, w, dy) -> tuple[np.ndarray, dict]:
        """NumPy: (dx, {W, U, b_x, b_h (and h0, c0 where given): gradient}) of <dy, cell(x)>."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the layer

    def makes_mask(self, opts, masked_input):
        return masked_input and opts["return_sequences"]

    def forward(self, ops, x, opts, w):
        return self.forward_masked(ops, x, None, opts, w)[0]

    def forward_masked(self, ops, x, mask, opts, w):
        maps = None if mask is None else ops.time_maps(ops.lengths_of(mask), int(x.shape[1]))
        seq = self.cell(ops, x, opts, cell_weights(w, ""))
        if maps is None:
            outs = [(seq, seq[:, -1])]
        else:
            valid, hold, _, nonempty = maps
            held = ops.mask_steps(ops.take_steps(seq, hold), nonempty)
            outs = [(ops.mask_steps(seq, valid) if opts["padded_outputs"] == "zero" else held, held[:, -1])]
        if opts["direction"] == "bidirectional":
            flip = ops.reverse_steps if maps is None else (lambda a: ops.take_steps(a, maps[2]))
            run = self.cell(ops, flip(x), opts, cell_weights(w, "_rev"))
            if maps is None:
                outs.append((flip(run), run[:, -1]))
            else:
                aligned = ops.mask_steps(flip(run), maps[0])
                outs.append((aligned, aligned[:, 0]))
        k = 0 if opts["return_sequences"] else 1
        y = _merge(ops, opts["merge_mode"], [o[k] for o in outs])
        return y, (mask if opts["return_sequences"] else None)

    def vjp(self, x, opts, w, dy):
        return self.vjp_masked(x, None, opts, w, dy)

    def vjp_masked(self, x, mask, opts, w, dy):
        B, T, _ = x.shape
        H = opts["units"]
        maps = None if mask is None else ref.time_maps(ref.lengths_of(mask), T)
        # d(each direction's output), from the merge
        if opts["direction"] == "forward":
            douts = [dy]
        elif opts["merge_mode"] == "concat":
            douts = [dy[..., :H], dy[..., H:]]
        elif opts["merge_mode"] == "mul":
            both = self.forward_masked(ref, x, mask, {**opts, "merge_mode": "concat"}, w)[0]
            douts = [dy * both[..., H:], dy * both[..., :H]]
        else:
            douts = [dy, dy] if opts["merge_mode"] == "sum" else [dy * 0.5, dy * 0.5]
        grads: dict = {}
        dx = np.zeros_like(x)
        for n, (suffix, d) in enumerate(zip(directions(opts), douts, strict=True)):
            seq_shape = (B, T, H)
            if opts["return_sequences"]:
                dseq = d
            else:  # the final state: the last step forward; backward, position 0 under a mask, else its run's last step
                dseq = np.zeros(seq_shape, dy.dtype)
                dseq[:, 0 if (n == 1 and maps is not None) else -1] = d
            if n == 0:
                if maps is None:
                    drun = dseq
                else:
                    valid, hold, _, nonempty = maps
                    if opts["padded_outputs"] == "zero" and opts["return_sequences"]:
                        drun = ref.mask_steps(dseq, valid)
                    else:
                        drun = ref.take_steps_vjp(seq_shape, hold, ref.mask_steps(dseq, nonempty))
                xin = x
            else:
                if maps is None:
                    drun = ref.reverse_steps(dseq) if opts["return_sequences"] else dseq
                else:
                    drun = ref.take_steps_vjp(seq_shape, maps[2], ref.mask_steps(dseq, maps[0]))
                xin = ref.reverse_steps(x) if maps is None else ref.take_steps(x, maps[2])
            gx, gw = self.cell_vjp(xin, opts, cell_weights(w, suffix), drun)
            grads.update({k + suffix: v for k, v in gw.items()})
            if n == 0:
                dx = dx + gx
            else:
                dx = dx + (ref.reverse_steps(gx) if maps is None else ref.take_steps_vjp(x.shape, maps[2], gx))
        return dx, grads


def _merge(ops, mode: str, parts: list):
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if mode == "concat":
        return ops.concat([a, b], -1)
    if mode == "sum":
        return a + b
    if mode == "ave":
        return (a + b) * 0.5
    return a * b


__all__ = ["CELL_WEIGHTS", "DIRECTIONS", "INITIAL_STATES", "MERGE_MODES", "PADDED_OUTPUTS", "STATE_WEIGHTS", "Recurrent",
           "batched", "cell_weights", "directions", "output_units"]
