"""The torch port's recurrent layers: lstm and gru as nn.LSTM / nn.GRU, one per description layer (num_layers 1),
batch_first, bidirectional where the layer is; and take_step, one time step of a sequence.

Gate order and transposes are convert.lstm_to_torch / gru_to_torch's (torch's i, f, g, o and r, z, n), a backward
direction torch's `_reverse` weights. nn.GRU computes only reset_after (r multiplies h U_h + b_hh): every other
variant is refused, naming the layer. A bidirectional layer's final state is h_n's (forward h[0], backward h[1],
the backward after step 0), not out[:, -1]; merge_mode other than concat merges torch's concatenated halves.
A given initial state (initial_state "weights") is a Started module around the RNN: h0 (and c0) trainable
nn.Parameters (D, 1, H) expanded over the batch and passed as h_0 (and c_0).
Padded sequences: a recurrent layer a padding mask reaches (`lengths` from the layer that made it, impls/ports/
torch_port/embedding.py) packs the rows (pack_padded_sequence, enforce_sorted=False) and pads them back with zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ... import GRU_VARIANTS, convert
from ...contract.spec import GRUWeights, LSTMWeights
from ...layouts import PLAIN, Layout
from ...model.description import Layer, Model
from ...model.layers import rnn as rnn_layer
from .code import EMITTERS, VOICE, _Piece
from .source import HELPERS

RECURRENT = ("lstm", "gru")
_GATES = {"lstm": "gates i, f, g, o", "gru": "gates r, z, n; reset_after"}


def _cells(layer: Layer, opts: dict) -> tuple[dict[str, np.ndarray], Callable]:
    """The nn.LSTM / nn.GRU state of one description layer (suffix l0, and l0_reverse bidirectional) and its back."""
    lstm = layer.kind == "lstm"
    to, frm, cls = ((convert.lstm_to_torch, convert.lstm_from_torch, LSTMWeights) if lstm
                    else (convert.gru_to_torch, convert.gru_from_torch, GRUWeights))  # fmt: skip
    dirs = [("", "l0")] + ([("_rev", "l0_reverse")] if opts["direction"] == "bidirectional" else [])
    state = {}
    for s, t in dirs:
        state |= to(cls(**{k: layer.weights[k + s] for k in ("W", "U", "b_x", "b_h")}), suffix=t)

    def back(a):
        out = {}
        for s, t in dirs:
            w = frm(a, suffix=t)
            out |= {"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h}
        return out

    return state, back


def _merge_halves(mode: str, H: int) -> str:
    """The line that merges a bidirectional sequence's halves (B, T, 2H), forward then backward, as merge_mode says."""
    a, b = f"x[..., :{H}]", f"x[..., {H}:]"
    return {"sum": f"x = {a} + {b}  # merge_mode sum: forward + backward",
            "ave": f"x = ({a} + {b}) * 0.5  # merge_mode ave: the mean of forward and backward",
            "mul": f"x = {a} * {b}  # merge_mode mul: forward * backward"}[mode]  # fmt: skip


def _merge_final(mode: str, bidirectional: bool) -> str:
    """The line that makes the layer's output of h_n (directions, B, H): forward h[0], backward h[1]."""
    if not bidirectional:
        return "x = h[0]  # the final state"
    return {"concat": "x = torch.cat((h[0], h[1]), dim=1)  # forward then backward final state",
            "sum": "x = h[0] + h[1]  # merge_mode sum of the final states",
            "ave": "x = (h[0] + h[1]) * 0.5  # merge_mode ave of the final states",
            "mul": "x = h[0] * h[1]  # merge_mode mul of the final states"}[mode]  # fmt: skip


HELPERS["Started"] = '''class Started(nn.Module):
    """An nn.GRU / nn.LSTM started from trainable initial states h0 (and the LSTM's c0), (directions, 1, H) expanded
    over the batch (forward direction first, as torch's h_0 is), passed to the RNN as its h_0 (and c_0)."""

    def __init__(self, rnn, lstm):
        super().__init__()
        self.rnn = rnn
        shape = (2 if rnn.bidirectional else 1, 1, rnn.hidden_size)
        self.h0 = nn.Parameter(torch.empty(shape))
        self.c0 = nn.Parameter(torch.empty(shape)) if lstm else None

    def forward(self, x):
        packed = isinstance(x, nn.utils.rnn.PackedSequence)
        batch = int(x.batch_sizes[0]) if packed else x.shape[0]
        h0 = self.h0.expand(-1, batch, -1).contiguous()
        if self.c0 is None:
            return self.rnn(x, h0)
        return self.rnn(x, (h0, self.c0.expand(-1, batch, -1).contiguous()))'''


def _started(layer: Layer, opts: dict, init: str, state: dict, back: Callable) -> tuple[str, dict, Callable]:
    """Where the layer starts from given states (initial_state "weights"): the RNN inside a Started module, its
    weights under `rnn.`, h0 / c0 (D, 1, H) beside them."""
    if opts["initial_state"] == "zero":
        return init, state, back
    names = rnn_layer.STATE_WEIGHTS[layer.kind]
    sufs = rnn_layer.directions(opts)
    state = {f"rnn.{k}": v for k, v in state.items()} | {
        k: np.stack([np.asarray(layer.weights[k + s]) for s in sufs])[:, None, :] for k in names}
    inner = back

    def started_back(a):
        out = inner({k[4:]: v for k, v in a.items() if k.startswith("rnn.")})
        for k in names:
            if k in a:
                out |= {k + s: np.asarray(a[k])[d, 0] for d, s in enumerate(sufs)}
        return out

    head, _, comment = init.partition("  # ")
    lstm = layer.kind == "lstm"
    return (f"Started({head}, lstm={lstm})  # {comment}; from the trainable initial state{'s h0, c0' if lstm else ' h0'}",
            state, started_back)


def gru_check(layer: Layer) -> str | None:
    """A GRU variant torch.nn.GRU cannot compute."""
    variant = layer.options.get("variant", "reset_after")
    if variant not in GRU_VARIANTS[VOICE]:
        return (f"torch.nn.GRU computes only {', '.join(GRU_VARIANTS[VOICE])} (r multiplies h U_h + b_hh); the "
                f"variant {variant!r} has no torch.nn layer")  # fmt: skip
    return None


@EMITTERS.register("lstm", masked=True)
@EMITTERS.register("gru", masked=True, check=gru_check)
def recurrent(layer: Layer, opts: dict, shape: tuple, layout: Layout, masked: bool = False) -> _Piece:
    """nn.LSTM / nn.GRU, one per description layer (num_layers 1), batch_first, bidirectional where the layer is.
    Under a padding mask (`lengths` from the layer that made it) the rows are packed: each runs its valid steps only,
    the backward cell last valid step first, as the description's padded sequences say."""
    _, T, I = shape
    H, bi, lstm = opts["units"], opts["direction"] == "bidirectional", layer.kind == "lstm"
    mode, seq = opts["merge_mode"], opts["return_sequences"]
    state, back = _cells(layer, opts)
    cls = "LSTM" if lstm else "GRU"
    init = f"nn.{cls}({I}, {H}, batch_first=True{', bidirectional=True' if bi else ''})  # {_GATES[layer.kind]}"
    init, state, back = _started(layer, opts, init, state, back)
    helpers = ("Started",) if opts["initial_state"] != "zero" else ()
    D = 2 if bi else 1
    out_units = 2 * H if bi and mode == "concat" else H
    h_out = "(h, _)" if lstm else "h"
    lines = []
    if masked:
        lines.append("x = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, "
                     "enforce_sorted=False)  # valid steps only; torch refuses length 0: such a row runs one step, "
                     "zeroed below")  # fmt: skip
    if seq:
        lines.append("x, _ = self.{a}(x)")
        if masked:
            lines.append(f"x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length={T})  "
                         f"# (B, {T}, {D * H}); a padded step outputs 0")  # fmt: skip
            if opts["padded_outputs"] == "hold":
                lines.append(f"held = torch.minimum(torch.arange({T}, device=x.device), (lengths - 1).clamp(min=0)"
                             "[:, None].to(x.device))  # (B, T): each step's index, the last valid one after a row's end")
                fwd = f"x[..., :{H}].gather(1, held[:, :, None].expand(-1, -1, {H}))" if bi else \
                    f"x.gather(1, held[:, :, None].expand(-1, -1, {H}))"
                if bi:
                    lines.append(f"x = torch.cat(({fwd}, x[..., {H}:]), dim=-1)  # padded steps hold the forward "
                                 "output of the last valid step; the backward half's stay 0")  # fmt: skip
                else:
                    lines.append(f"x = {fwd}  # padded steps hold the output of the last valid step")
            lines.append("x = x.masked_fill((lengths == 0).to(x.device)[:, None, None], 0.0)  # a row of length 0 "
                         "outputs zeros")  # fmt: skip
        else:
            lines[-1] += f"  # (B, {T}, {D * H}): every step's state" + (", forward then backward" if bi else "")
        if bi and mode != "concat":
            lines.append(_merge_halves(mode, H))
        return _Piece(init, lines, state, back, ("B", T, out_units), PLAIN, helpers=helpers)
    what = ("forward's state after each row's last valid step, backward's after step 0" if bi else
            "the state after each row's last valid step") if masked else \
        ("forward's last state, backward's after step 0 (not out[:, -1])" if bi else "the last state")  # fmt: skip
    lines.append(f"_, {h_out} = self.{{a}}(x)  # h: ({D}, B, {H}), {what}")
    lines.append(_merge_final(mode, bi))
    if masked:
        lines.append("x = x.masked_fill((lengths == 0).to(x.device)[:, None], 0.0)  # a row of length 0: zeros")
    return _Piece(init, lines, state, back, ("B", out_units), PLAIN, helpers=helpers)


@EMITTERS.register("take_step")
def take_step(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """x[:, index]: one time step of a (B, T, F) sequence (a negative index counts from the end)."""
    i = opts["index"]
    return _Piece("nn.Identity()  # one time step", [f"x = self.{{a}}(x[:, {i}])  # (B, {shape[2]}): step {i}"], {},
                  lambda a: {}, ("B", shape[2]), PLAIN)  # fmt: skip


def notes(model: Model) -> list[str]:
    """What the port translates for the recurrent layers, for the certificate."""
    notes, masked = [], model.mask_sources()
    for i, layer in enumerate(model.layers):
        if layer.kind not in RECURRENT:
            continue
        opts = layer.options
        bi = opts.get("direction", "forward") == "bidirectional"
        if masked[i] is not None:
            hold = opts.get("padded_outputs", "zero") == "hold"
            notes.append(f"{layer.label(i)}: padded rows packed (pack_padded_sequence, enforce_sorted=False; "
                         "pad_packed_sequence zero-fills padded steps"
                         + ("; padded steps then hold the last valid output by a gather" if hold else "")
                         + "); torch refuses a row of length 0, so such a row runs one step and is zeroed, the "
                         "description's output for it")  # fmt: skip
        if bi and not opts.get("return_sequences", False):
            notes.append(f"{layer.label(i)}: the final states are h_n's (forward h[0], backward h[1], the backward "
                         "after step 0), not out[:, -1]")  # fmt: skip
        if bi and opts.get("merge_mode", "concat") != "concat":
            notes.append(f"{layer.label(i)}: merge_mode {opts['merge_mode']!r} from torch's concatenated halves")
        if layer.kind == "lstm":
            notes.append(f"{layer.label(i)}: nn.LSTM keeps both biases (bias_ih, bias_hh) as the description does: "
                         "training-exact")  # fmt: skip
    return notes


__all__ = ["RECURRENT", "gru_check", "notes", "recurrent", "take_step"]
