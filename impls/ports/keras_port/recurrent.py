"""The Keras port's recurrent kinds: gru and lstm (keras.layers.GRU / LSTM, or Bidirectional of one), take_step.

GRU(reset_after=True) computes reset_after, GRU(reset_after=False) reset_before with its one bias b_x + b_h
(convert.gru_to_keras); the other variants have no Keras layer and are refused. LSTM is keras.layers.LSTM with one
bias b_x + b_h per direction (convert.lstm_to_keras: forward-exact; a training step moves one bias where the canonical
model moves two, lstm_notes says so). A bidirectional layer is Bidirectional(GRU | LSTM, merge_mode) with Keras' own
mirrored backward layer. Padding masks are Keras' own (an Embedding(mask_zero=True) or Masking makes one, Dense,
Activation, Dropout and sequence-returning RNNs carry it): padded_outputs 'zero' is zero_output_for_mask=True, 'hold'
False (Bidirectional forces True when it returns sequences, so 'hold' there under a mask is refused). Given initial
states (initial_state "weights") are each an EinsumDense whose (H,) kernel is the state, on a (B, 1, 1) of ones made
from the layer's input (state_layers: "<layer>_state_h0", ...), handed over as initial_state= with the input's mask.
take_step is Cropping1D then Reshape ("<layer>_crop", "<layer>").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ... import GRU_VARIANTS, convert
from ...builtin.keras_gru import KERAS_GRU, REC_INIT
from ...model.description import Layer, Model
from ...model.layers import spec_of
from ...model.layers.gru import weights as gru_weights
from ...model.layers.lstm import weights as lstm_weights
from ...model.layers.rnn import STATE_WEIGHTS, cell_weights, directions
from .emitters import EMITTERS, VOICE, Site, keras


@dataclass(frozen=True)
class Cells:
    """How a recurrent layer's Keras cells hold its weights: per direction (forward, then a Bidirectional's
    backward) the cell's kernel, recurrent_kernel and bias. `to(w, opts)`: one direction's canonical weights -> its
    three arrays; `back(arrays, opts, grads)`: the three arrays (or their gradients) -> one direction's canonical
    weights (gradients: the one bias of GRU(reset_after=False) and of an LSTM is the gradient of b_x and b_h alike)."""

    to: Callable[[dict, dict], list]
    back: Callable[[list, dict, bool], Any]

    def to_keras(self, layer: Layer, opts: dict) -> list[np.ndarray]:
        cells = [a for s in directions(opts) for a in self.to(cell_weights(layer.weights, s), opts)]
        return cells + [np.asarray(layer.weights[k]) for k in _state_names(layer.kind, opts)]

    def count(self, layer: Layer, opts: dict, grads: bool) -> int:
        return len(self.to_keras(layer, opts))

    def from_keras(self, layer: Layer, opts: dict, arrays: list[np.ndarray], grads: bool) -> dict[str, np.ndarray]:
        out, D = {}, len(directions(opts))
        for n, s in enumerate(directions(opts)):
            w = self.back(arrays[3 * n : 3 * n + 3], opts, grads)
            out.update({"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h})
        names = _state_names(layer.kind, opts)
        if len(arrays) != 3 * D + len(names):
            raise ValueError(f"{layer.name!r}: {len(arrays)} Keras arrays for {D} cells and the states {names}")
        return out | {k: np.asarray(a) for k, a in zip(names, arrays[3 * D :], strict=True)}

    def variables(self, layer: Layer, opts: dict, main: Any, trainable: bool) -> list:
        """main: the layer's Keras pieces (Mains' holder, `_holder`): the RNN last, the states' EinsumDense before
        it in _state_names' order."""
        *pieces, rnn = main
        held = [p.kernel for p in pieces if isinstance(p, keras.layers.EinsumDense)]
        return [v for cell in _cells(rnn) for v in (cell.kernel, cell.recurrent_kernel, cell.bias)] + held


def _state_names(kind: str, opts: dict) -> list[str]:
    """The given initial states' weights in Keras' initial_state= order (a Bidirectional's: the forward layer's
    states, then the backward's; an LSTM's: h, then c); none where the layer starts from zeros."""
    if opts["initial_state"] == "zero":
        return []
    return [k + s for s in directions(opts) for k in STATE_WEIGHTS[kind]]


def _holder(pieces: list) -> list:
    return list(pieces)


def _gru_to(w: dict, opts: dict) -> list[np.ndarray]:
    return convert.gru_to_keras(gru_weights(w), reset_after=KERAS_GRU[opts["variant"]])


def _gru_back(part: list, opts: dict, grads: bool):
    ra = KERAS_GRU[opts["variant"]]
    return convert.gru_grads_from_keras(part, ra) if grads else convert.gru_from_keras(part, ra)


def _lstm_to(w: dict, opts: dict) -> list[np.ndarray]:  # one bias b_x + b_h per direction
    return convert.lstm_to_keras(lstm_weights(w))


def _lstm_back(part: list, opts: dict, grads: bool):
    return convert.lstm_grads_from_keras(part) if grads else convert.lstm_from_keras(part)


def _cells(main: Any) -> list:
    """The Keras cells of a recurrent layer: [forward] or, Bidirectional, [forward, backward]."""
    if isinstance(main, keras.layers.Bidirectional):
        return [main.forward_layer.cell, main.backward_layer.cell]
    return [main.cell]


# --------------------------------------------------------------------------- what Keras cannot express


def _hold_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    if masked and opts["direction"] == "bidirectional" and opts["return_sequences"] and opts["padded_outputs"] == "hold":
        return ("keras.layers.Bidirectional sets zero_output_for_mask=True on both of its layers when they return "
                "sequences: a padded step outputs zeros, never the held last valid output (padded_outputs 'hold')")
    return None


def _gru_check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    why = _hold_check(opts, in_shape, masked)
    if why is None and opts["variant"] not in GRU_VARIANTS[VOICE]:
        return (f"keras.layers.GRU computes {' and '.join(GRU_VARIANTS[VOICE])} only "
                f"({', '.join(f'{v}: reset_after={f}' for v, f in KERAS_GRU.items())}); variant {opts['variant']!r} "
                "has no Keras layer")  # fmt: skip
    return why


# --------------------------------------------------------------------------- the layers


def recurrent_layer(kind: str, name: str, opts: dict, dt: str) -> Any:
    """keras.layers.GRU / LSTM, or Bidirectional of one (its backward layer Keras' own mirror, go_backwards=True).
    padded_outputs 'zero' is zero_output_for_mask=True (Keras reads it only with return_sequences under a mask;
    Bidirectional forces it so itself), 'hold' is Keras' default False."""
    L = keras.layers
    common = {"return_sequences": opts["return_sequences"], "recurrent_initializer": REC_INIT, "dtype": dt,
              "zero_output_for_mask": opts["padded_outputs"] == "zero" and opts["return_sequences"]}  # fmt: skip
    bidir = opts["direction"] == "bidirectional"
    inner = name if not bidir else f"{name}_cell"
    if kind == "gru":
        rnn = L.GRU(opts["units"], reset_after=KERAS_GRU[opts["variant"]], name=inner, **common)
    else:
        rnn = L.LSTM(opts["units"], name=inner, **common)
    return L.Bidirectional(rnn, merge_mode=opts["merge_mode"], dtype=dt, name=name) if bidir else rnn


def state_layers(kind: str, opts: dict, at: Site) -> list:
    """Where the layer starts from given states (initial_state "weights"): keras.ops.ones_like of the layer's input x
    (it reads x's shape only, never its values, and carries no padding mask), Reshape((T I, 1)) and Cropping1D of
    it to one element (B, 1, 1), then per state (_state_names' order) an EinsumDense("abc,d->ad", output_shape (H,),
    no bias) of that one: its kernel (H,) is the state, 1 * h0 summed over two axes of size 1, exactly h0 in every
    row (B, H); its gradient is the sum over the batch of the state's, the weight's own (tokens.py's pattern). No
    pieces where the layer starts from zeros."""
    names = _state_names(kind, opts)
    if not names:
        return []
    L, (_, t, i) = keras.layers, at.in_shape
    return [L.Reshape((t * i, 1), dtype=at.dt, name=f"{at.helper}_flat"),
            L.Cropping1D((0, t * i - 1), dtype=at.dt, name=f"{at.helper}_one"),
            *(L.EinsumDense("abc,d->ad", output_shape=(opts["units"],), bias_axes=None, dtype=at.dt,
                            name=f"{at.helper}_{k}") for k in names)]  # fmt: skip


def _wire(pieces: list, opts: dict, x: Any) -> Any:
    """The RNN on x, from the states the pieces before it make (state_layers), as its initial_state=. x's padding
    mask is handed over as mask= itself: Keras passes a layer its input's mask on its own only where the call reads
    one tensor (Layer.__call__), and a call with initial_state= reads several (its padded steps would be computed)."""
    *states, rnn = pieces
    if not states:
        return rnn(x)
    flat, one, *held = states
    ones = one(flat(keras.ops.ones_like(x)))
    mask = getattr(x, "_keras_mask", None)
    return rnn(x, initial_state=[h(ones) for h in held], **({} if mask is None else {"mask": mask}))


def _started(opts: dict) -> bool:
    return opts["initial_state"] != "zero"


@EMITTERS.register("gru", check=_gru_check, weights=Cells(_gru_to, _gru_back), wire=_wire, wired=_started,
                   main=_holder, helper="state")  # fmt: skip
def gru(opts: dict, at: Site) -> list:
    return [*state_layers("gru", opts, at), recurrent_layer("gru", at.name, opts, at.dt)]


@EMITTERS.register("lstm", check=_hold_check, weights=Cells(_lstm_to, _lstm_back), wire=_wire, wired=_started,
                   main=_holder, helper="state")  # fmt: skip
def lstm(opts: dict, at: Site) -> list:
    return [*state_layers("lstm", opts, at), recurrent_layer("lstm", at.name, opts, at.dt)]


@EMITTERS.register("take_step", helper="crop")
def take_step(opts: dict, at: Site) -> list:
    """x[:, index] from built-in layers: crop the other steps, drop the time axis."""
    T, F = at.in_shape[1], at.in_shape[2]
    i = opts["index"] % T
    return [keras.layers.Cropping1D((i, T - 1 - i), dtype=at.dt, name=at.helper),
            keras.layers.Reshape((F,), dtype=at.dt, name=at.name)]  # fmt: skip


# --------------------------------------------------------------------------- what the voice says


def gru_notes(model: Model) -> list[str]:
    """keras.layers.GRU(reset_after=False) holds one bias, b_x + b_h."""
    return [f"{la.label(i)}: keras.layers.GRU(reset_after=False) holds one bias b_x + b_h" for i, la in enumerate(model.layers)
            if la.kind == "gru" and la.options.get("variant") == "reset_before"]  # fmt: skip


def lstm_notes(model: Model) -> list[str]:
    """keras.layers.LSTM holds one bias per direction, b_x + b_h: the forward is exact; where the model's b_h is not all
    zero (a torch or ONNX source) the written port cannot give its two biases back, and a training step never
    matches the canonical one (Adam moves one bias where the canonical model moves two)."""
    out = []
    for i, la in enumerate(model.layers):
        if la.kind != "lstm":
            continue
        opts = spec_of(la.kind).options(la.options)
        two = [s for s in directions(opts) if np.any(np.asarray(la.weights["b_h" + s]) != 0)]
        out.append(f"{la.label(i)}: keras.layers.LSTM holds one bias b_x + b_h per direction: forward-exact"
                   + (f"; this model's b_h{'/'.join(two)} is not all zero, so the port is NOT training-exact (Adam "
                      "steps one bias where the model has two) and reads back as b_x = b_x + b_h, b_h = 0" if two else
                      "; its training step moves that one bias where the canonical model moves b_x and b_h"))
    return out


__all__ = ["Cells", "gru", "gru_notes", "lstm", "lstm_notes", "recurrent_layer", "state_layers", "take_step"]
