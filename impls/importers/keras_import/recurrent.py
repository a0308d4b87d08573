"""The Keras importer's recurrent layers: GRU and LSTM (tanh / sigmoid only; go_backwards, stateful and return_state
refused; unroll is the same recurrence; dropouts are off at inference; zero_output_for_mask -> padded_outputs 'zero',
else 'hold' where the layer returns sequences under a mask) and Bidirectional(GRU | LSTM) with merge_mode concat,
sum, ave or mul (None refused; an explicit backward_layer imports where it is the forward layer's mirror, else it is
refused). Weights are read in Keras' own layouts, which are the canonical ones except for the recurrent layers
(convert.gru_from_keras: its one bias without reset_after becomes b_x, with b_h = 0; convert.lstm_from_keras: the
LSTM's one bias is b_x, b_h = 0). Keras has no layer that takes one time step: take_step is absent.
"""

from __future__ import annotations

from typing import Any

from ... import convert, frameworks
from .context import REGISTRY, Context, Converted

keras = frameworks.load("keras")
L = keras.layers

REGISTRY.absent("take_step", "Keras has no layer that takes one time step of a sequence (torch's out[:, -1] is a "
                "Tensor index): a Keras GRU or LSTM returns its last step itself, with return_sequences=False")


_RNN_DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "go_backwards": False,
                 "stateful": False, "return_state": False}  # fmt: skip
_RNN_WHY = {
    "activation": "the candidate's (cell's) activation must be tanh, as the description's GRU and LSTM define it",
    "recurrent_activation": "the gates' activation must be sigmoid, as the description's GRU and LSTM define it",
    "use_bias": "use_bias=False: the description's GRU always holds b_x and b_h",
    "go_backwards": ("go_backwards=True reads the sequence reversed (and returns its steps reversed): not a layer the "
                     "description has outside a Bidirectional"),
    "stateful": "stateful=True carries the state between calls: a certificate's calls must be independent",
    "return_state": "return_state=True returns several tensors: a chain passes one",
}  # fmt: skip


def _rnn(c: Context, layer: Any, backward: bool = False) -> tuple[str, dict, dict]:
    """One keras.layers.GRU or LSTM (or a Bidirectional's forward or backward layer) -> (kind, options, one cell's
    canonical weights). unroll computes the same recurrence; dropout and recurrent_dropout are identity at
    inference; unit_forget_bias, initializers, regularizers and constraints only act at init or in training."""
    cfg = layer.get_config()
    kind = "gru" if isinstance(layer, L.GRU) else "lstm"
    for key, default in _RNN_DEFAULTS.items():
        want = (not default) if key == "go_backwards" and backward else default
        if key == "use_bias" and kind == "lstm":
            continue  # an LSTM without a bias imports with b_x = b_h = 0 (noted)
        if cfg.get(key, default) != want:
            why = _RNN_WHY[key] if not backward else f"the backward layer {layer.name!r} is not the forward's mirror"
            raise c.refuse(f"{key}={cfg[key]!r}: {why}")
    cell = layer.cell
    arrays = [keras.ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel, *([cell.bias] if cell.use_bias else []))]
    if cfg.get("dropout", 0.0) or cfg.get("recurrent_dropout", 0.0):
        c.notes.append(f"{c.label}: dropout and recurrent_dropout are off at inference, as everything here runs")
    opts = {"units": int(cfg["units"]), "return_sequences": bool(cfg["return_sequences"]),
            "padded_outputs": "zero" if cfg.get("zero_output_for_mask") or not cfg["return_sequences"] else "hold"}  # fmt: skip
    if kind == "gru":
        ra = bool(cfg["reset_after"])
        w = convert.gru_from_keras(arrays, ra)
        if not ra and not backward:
            c.notes.append(f"{c.label}: reset_after=False holds one bias; imported as b_x, with b_h = 0")
        opts["variant"] = "reset_after" if ra else "reset_before"
    else:
        w = convert.lstm_from_keras(arrays)
        if not backward:
            c.notes.append(f"{c.label}: keras.layers.LSTM holds one bias; imported as b_x, with b_h = 0"
                           if cell.use_bias else f"{c.label}: use_bias=False: imported with b_x = b_h = 0")
    return kind, opts, {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}


@REGISTRY.register(L.LSTM, kinds=("lstm",))  # decorators apply bottom up: GRU is registered first
@REGISTRY.register(L.GRU, kinds=("gru",))
def _recurrent(c: Context) -> Converted:
    return _rnn(c, c.layer)


_MIRRORED = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences", "reset_after", "stateful",
             "return_state", "dtype")  # fmt: skip


@REGISTRY.register(L.Bidirectional, kinds=("gru", "lstm"))
def _bidirectional(c: Context) -> Converted:
    """Bidirectional(GRU | LSTM, merge_mode): the backward cell runs each row's valid steps last first; its
    sequence comes back aligned with the input (Keras flips it), padded steps zero (Keras forces
    zero_output_for_mask=True on both layers when they return sequences)."""
    fwd, bwd, merge = c.layer.forward_layer, c.layer.backward_layer, c.config.get("merge_mode")
    if type(fwd) not in (L.GRU, L.LSTM):
        raise c.refuse(f"it wraps a keras.layers.{type(fwd).__name__}: only a Bidirectional GRU or LSTM imports")
    if merge is None:
        raise c.refuse("merge_mode=None returns the two directions as two tensors: a chain passes one")
    if type(bwd) is not type(fwd):
        raise c.refuse(f"backward_layer is a keras.layers.{type(bwd).__name__}, the forward layer a "
                       f"keras.layers.{type(fwd).__name__}: not the forward's mirror")  # fmt: skip
    if fwd.go_backwards:
        raise c.refuse("its forward layer has go_backwards=True (and the backward layer False): the description's "
                       "forward cell reads the sequence first step first")  # fmt: skip
    fc, bc = fwd.get_config(), bwd.get_config()
    differ = [k for k in _MIRRORED if fc.get(k) != bc.get(k)]
    if differ:
        raise c.refuse(f"backward_layer differs from the forward layer in {', '.join(f'{k} ({fc.get(k)!r} vs {bc.get(k)!r})' for k in differ)}: "
                       "only a mirror of the forward layer imports")  # fmt: skip
    kind, opts, w = _rnn(c, fwd)
    _, _, w_rev = _rnn(c, bwd, backward=True)
    opts = {**opts, "direction": "bidirectional", "merge_mode": str(merge), "padded_outputs": "zero"}
    return kind, opts, {**w, **{k + "_rev": v for k, v in w_rev.items()}}
