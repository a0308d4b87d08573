"""The reference Adam step in each framework's own parametrization of a recurrent layer's biases.

A framework that holds fewer recurrent biases than the canonical b_x and b_h steps a different set of parameters,
so its step is compared with the reference step of the model projected onto what it holds, the projected-away bias
entries held where the projection puts them (zero), in every direction of the layer (`_rev` for the backward cell):
- Keras GRU(reset_after=False) holds one bias b_x + b_h (convert.keras_single_bias): all of b_h is held at 0;
- keras.layers.LSTM always holds one bias b_x + b_h (convert.lstm_to_keras): all of b_h is held at 0;
- flax.linen.GRUCell holds the z and r gates' b_x + b_h as one (convert.flax_folded_bias): b_h[:2H] is held at 0;
- flax.linen.LSTMCell / OptimizedLSTMCell hold one bias per gate, on the hidden Dense (b_x + b_h): b_h held at 0.
The projection changes no output, so the loss is the same; the certificate also states how far that step is from
the canonical one (the two steps differ even where the model's b_h is zero: the canonical model steps b_h too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from impls import convert
from impls.contract.spec import GRUWeights, LSTMWeights
from impls.model import training
from impls.model.description import Layer, Model
from impls.model.layers import spec_of
from impls.model.layers.rnn import CELL_WEIGHTS, directions


def lstm_single_bias(w: LSTMWeights) -> LSTMWeights:
    """An LSTM's two biases as one: b_x + b_h, b_h = 0 (what keras.layers.LSTM and Flax's LSTM cells hold)."""
    return convert.lstm_from_keras(convert.lstm_to_keras(w))


# (kind, applies to these options, the projection of one cell's weights, entries of b_h held (of H), what it says)
Fold = tuple[str, Callable[[dict], bool], Callable, Callable[[int], slice], str]
FOLDS: dict[str, list[Fold]] = {
    "keras": [
        ("gru", lambda opts: opts.get("variant") == "reset_before", convert.keras_single_bias, lambda H: slice(0, 3 * H),
         ("Keras' GRU(reset_after=False) holds one bias b_x + b_h: compared with the reference step on "
          "convert.keras_single_bias's projection, b_h held at 0")),
        ("lstm", lambda opts: True, lstm_single_bias, lambda H: slice(0, 4 * H),
         ("keras.layers.LSTM holds one bias b_x + b_h (an LSTM single bias, where the canonical model steps b_x and "
          "b_h apart): compared with the reference step on the projection b_x + b_h, b_h held at 0")),
    ],
    "flax": [
        ("gru", lambda opts: True, convert.flax_folded_bias, lambda H: slice(0, 2 * H),
         ("flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each: compared with the reference "
          "step on convert.flax_folded_bias's projection, b_h of z and r held at 0")),
        ("lstm", lambda opts: True, lstm_single_bias, lambda H: slice(0, 4 * H),
         ("flax.linen's LSTM cells hold one bias per gate b_x + b_h (an LSTM single bias): compared with the "
          "reference step on the projection b_x + b_h, b_h held at 0")),
    ],
}  # fmt: skip
_WEIGHTS = {"gru": GRUWeights, "lstm": LSTMWeights}


def _fold(la: Layer, fold: Fold) -> tuple[Layer, dict[tuple[str, str], slice]]:
    kind, _, project_cell, held, _ = fold
    opts = spec_of(la.kind).options(la.options)
    weights, frozen = dict(la.weights), {}
    for s in directions(opts):
        w = project_cell(_WEIGHTS[kind](*(np.asarray(la.weights[k + s]) for k in CELL_WEIGHTS)))
        weights.update({k + s: v for k, v in zip(CELL_WEIGHTS, (w.W, w.U, w.b_x, w.b_h), strict=True)})
        frozen[(la.name, "b_h" + s)] = held(int(opts["units"]))
    return dataclasses.replace(la, weights=weights), frozen


def project(voice: str, model: Model) -> tuple[Model, dict[tuple[str, str], slice], list[str]]:
    """(the model as `voice` holds it, {(layer, "b_h" or "b_h_rev"): entries held fixed}, what was projected, per layer)."""
    if voice not in FOLDS:
        return model, {}, []
    layers, frozen, notes = [], {}, []
    for i, la in enumerate(model.layers):
        for fold in FOLDS[voice]:
            if la.kind == fold[0] and fold[1](dict(la.options)):
                la, held = _fold(la, fold)
                frozen.update(held)
                notes.append(f"{Layer.label(la, i)}: {fold[4]}")
                break
        layers.append(la)
    return dataclasses.replace(model, layers=tuple(layers)), frozen, notes


def reference_step(voice: str, model: Model, x: np.ndarray, t: np.ndarray) -> tuple[float, dict, list[str]]:
    """(loss, {(layer, weight): after the step}, notes): training.reference_step in `voice`'s Adam convention
    (training.FRAMEWORK_ADAM) on the model as `voice` holds it."""
    flavour, eps = training.FRAMEWORK_ADAM[voice]
    projected, frozen, notes = project(voice, model.astype("float64"))
    loss, after = training.reference_step(projected, x, t, flavour, eps)
    for key, held in frozen.items():
        after[key] = after[key].copy()
        after[key][held] = np.asarray(projected.parameters()[key])[held]
    return loss, after, notes


__all__ = ["FOLDS", "lstm_single_bias", "project", "reference_step"]
