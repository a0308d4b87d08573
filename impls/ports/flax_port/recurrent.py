"""The Flax port's recurrent layers: gru, lstm and take_step.

GRU is nn.RNN(nn.GRUCell) (reset_after only, the z and r biases folded: convert.gru_to_flax), LSTM nn.RNN(nn.LSTMCell)
(one bias per gate, b_x + b_h folded: convert.lstm_to_flax), a bidirectional GRU or LSTM nn.Bidirectional of two
nn.RNNs (the backward one reverse=True, keep_order=True, so its outputs come back aligned to the input's positions;
concat is forward then backward, sum/ave/mul a merge_fn; final states are the carries, the backward one after
position 0), take_step x[:, index].

Padded sequences (an embedding with mask_zero or a masking layer first): the generated code computes each row's
`lengths` from the mask source (post-padded, which Model.check_input checks at every voice's boundary; the file
itself does not) and passes them to nn.RNN / nn.Bidirectional as seq_lengths. Flax then reverses only each row's
valid steps for the backward cell and picks each row's carry at step lengths - 1, but it does NOT zero the outputs
at padded steps (the cell runs on over the padding), and a row of length 0 gets the carry after the whole padding.
The file reproduces the contract (impls/model/layers/rnn.py) exactly on top: padded steps zeroed ("zero") or the
last valid step repeated ("hold", the backward half zero), and a length-0 row's final state zero.
A given initial state (initial_state "weights") is each cell's initial_carry, from top-level params "<cell>_h0" (and
"<cell>_c0") (H,) broadcast over the batch (the LSTM's carry is (c, h)).
"""

from __future__ import annotations

from ... import GRU_VARIANTS
from ...model.description import Model
from .emit import EMITTERS, VOICE, backward_name, declared

_CELL = {"gru": "nn.GRUCell", "lstm": "nn.LSTMCell"}


def merge(mode: str, a: str, b: str) -> str:
    return {"concat": f"jnp.concatenate([{a}, {b}], axis=-1)", "sum": f"{a} + {b}", "ave": f"({a} + {b}) * 0.5",
            "mul": f"{a} * {b}"}[mode]


def _recurrent(kind: str, name: str, opts: dict, in_shape, masked: bool = False) -> list[str]:
    """nn.RNN (forward) or nn.Bidirectional; under a mask, seq_lengths and the contract's padded steps on top."""
    cell = lambda n: f'{_CELL[kind]}({opts["units"]}, param_dtype=x.dtype, name="{n}")'
    seq, lengths = opts["return_sequences"], (", seq_lengths=lengths" if masked else "")
    pre, lengths = _carries(kind, name, opts, lengths)
    if pre:
        return [*pre, *_recurrent_body(kind, name, opts, masked, seq, lengths, cell)]
    return _recurrent_body(kind, name, opts, masked, seq, lengths, cell)


def state_param(name: str, which: str) -> str:
    """The top-level Flax param holding a given initial state of cell `name` (weights.py reads and writes it)."""
    return f"{name}_{which}"


def _carries(kind: str, name: str, opts: dict, lengths: str) -> tuple[list[str], str]:
    """Where the layer starts from given states (initial_state "weights"): lines making each cell's initial carry
    from trainable params (H,) broadcast over the batch, and the call's keyword arguments with initial_carry."""
    if opts["initial_state"] == "zero":
        return [], lengths
    H = opts["units"]
    cells = [name] + ([backward_name(name)] if opts["direction"] == "bidirectional" else [])
    lines, carries = [f"# {name}: starts from the given (trainable) initial states, broadcast over the batch"], []
    for n, c in enumerate(cells):
        for k in ("h0", "c0") if kind == "lstm" else ("h0",):
            lines.append(f'{k}_{n} = jnp.broadcast_to(self.param("{state_param(c, k)}", nn.initializers.zeros, ({H},), '
                         f"x.dtype), (x.shape[0], {H}))")
        carries.append(f"(c0_{n}, h0_{n})" if kind == "lstm" else f"h0_{n}")  # the LSTM's carry is (c, h)
    carry = carries[0] if len(carries) == 1 else f"({carries[0]}, {carries[1]})"
    return lines, f", initial_carry={carry}{lengths}"


def _recurrent_body(kind: str, name: str, opts: dict, masked: bool, seq: bool, lengths: str, cell) -> list[str]:
    h = "(_, {})" if kind == "lstm" else "{}"  # the LSTM's carry is (c, h)
    what = "h, the last valid step's" if masked else "h_T"
    if opts["direction"] == "forward":
        rnn = f"nn.RNN({cell(name)}"
        if seq and not masked:
            return [f"x = {rnn})(x{lengths})  # the sequence of states"]
        if seq:
            fix = "padded_zero" if opts["padded_outputs"] == "zero" else "padded_hold"
            return [f"x = {fix}({rnn})(x{lengths}), lengths)  # padded steps: {opts['padded_outputs']}"]
        lines = [f"{h.format('x')}, _ = {rnn}, return_carry=True)(x{lengths})  # the final state {what} (the carry)"]
        return [*lines, "x = nonempty(x, lengths)  # a row of length 0: zeros"] if masked else lines
    mode = opts["merge_mode"]
    fn = "" if mode == "concat" else f", merge_fn=lambda f, b: {merge(mode, 'f', 'b')}"
    pair = ", merge_fn=lambda f, b: (f, b)"
    bi = "nn.Bidirectional(forward, backward"
    head = [f"# bidirectional, merge {mode}: the backward RNN runs each row's valid steps last first (reverse=True,",
            "# keep_order=True: its outputs aligned back to the input positions)",
            f"forward = nn.RNN({cell(name)})", f"backward = nn.RNN({cell(backward_name(name))})"]
    if seq and not masked:
        return [*head, f"x = {bi}{fn})(x{lengths})"]
    if seq and opts["padded_outputs"] == "zero":
        return [*head, f"x = padded_zero({bi}{fn})(x{lengths}), lengths)  # padded steps zero in both halves"]
    if seq:
        return [*head, f"fwd, bwd = {bi}{pair})(x{lengths})",
                "# padded steps: the forward half holds the row's last valid step, the backward half is zero",
                f"x = {merge(mode, 'padded_hold(fwd, lengths)', 'padded_zero(bwd, lengths)')}"]
    carry = f"({h.format('fwd')}, {h.format('bwd')})"
    lines = [*head, f"{carry}, _ = {bi}, return_carry=True)(x{lengths})",
             "# final states: forward after the last (valid) step, backward after position 0"]
    if masked:
        return [*lines, f"x = {merge(mode, 'nonempty(fwd, lengths)', 'nonempty(bwd, lengths)')}  # length 0: zeros"]
    return [*lines, f"x = {merge(mode, 'fwd', 'bwd')}"]


def gru_variant(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    """flax.linen.GRUCell computes one GRU variant (GRU_VARIANTS["flax"]): any other is refused."""
    if opts["variant"] not in GRU_VARIANTS[VOICE]:
        return (f"GRU variant {opts['variant']!r}: flax.linen.GRUCell computes "
                f"{', '.join(GRU_VARIANTS[VOICE])} only (n = tanh(x W_in + b_in + r * (h W_hn + b_hn))); the "
                "'jax' voice from primitives computes every variant")
    return declared("gru", dtype)


@EMITTERS.register("gru", check=gru_variant)
def gru(name, opts, in_shape, masked=False):
    return _recurrent("gru", name, opts, in_shape, masked)


@EMITTERS.register("lstm")
def lstm(name, opts, in_shape, masked=False):
    return _recurrent("lstm", name, opts, in_shape, masked)


@EMITTERS.register("take_step")
def take_step(name, opts, in_shape):
    return [f"x = x[:, {opts['index']}]  # one time step"]


__all__ = ["gru", "gru_variant", "state_param", "lstm", "merge", "take_step"]
