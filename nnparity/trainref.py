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

A BatchNorm's moving statistics are state: training.reference_step returns them after the step (the step runs the
model in training mode) and every projection here passes them through, so a framework's step is compared on its
parameters and its moving statistics. A framework's built-in BatchNorm moves its moving variance in one convention
(VARIANCE_UPDATE: Keras and Flax by the biased batch variance, torch by the unbiased one, n / (n - 1) times it): a
model in the other convention is compared with the reference step in the framework's own (the projection changes
no output, not even the step's parameters; only moving_var after the step), and `state_difference` says by how much
that step's moving_var is from the canonical one.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np

from impls import convert
from impls.contract.spec import GRUWeights, LSTMWeights
from impls.model import training
from impls.model.description import Layer, Model
from impls.model.layers import spec_of
from impls.model.layers.rnn import CELL_WEIGHTS, directions
from impls.model.voices import structure


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
VARIANCE_UPDATE = {"keras": "biased", "flax": "biased", "torch_nn": "unbiased"}
"""The variance_update each framework's built-in BatchNorm computes (keras.layers.BatchNormalization,
flax.linen.BatchNorm: the biased batch variance; torch.nn.BatchNorm*d: unbiased)."""


def _variance_convention(voice: str, la: Layer, i: int) -> tuple[Layer, str | None]:
    """A batch_norm in another variance convention than `voice`'s BatchNorm, as that BatchNorm computes it."""
    if la.kind != "batch_norm" or voice not in VARIANCE_UPDATE:
        return la, None
    have, own = spec_of(la.kind).options(la.options)["variance_update"], VARIANCE_UPDATE[voice]
    if have == own:
        return la, None
    note = (f"{Layer.label(la, i)}: its variance_update is {have!r}, {voice}'s BatchNorm moves the moving variance by "
            f"the {own} batch variance ({'n / (n - 1) times' if own == 'unbiased' else '1 / (n / (n - 1)) of'} the "
            f"{have} update's): compared with the reference step in {own!r}, which differs from the canonical one in "
            "moving_var only")  # fmt: skip
    return dataclasses.replace(la, options={**la.options, "variance_update": own}), note


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
    if voice not in FOLDS and voice not in VARIANCE_UPDATE:
        return model, {}, []
    layers, frozen, notes = [], {}, []
    for i, la in enumerate(model.layers):
        for fold in FOLDS.get(voice, []):
            if la.kind == fold[0] and fold[1](dict(la.options)):
                la, held = _fold(la, fold)
                frozen.update(held)
                notes.append(f"{Layer.label(la, i)}: {fold[4]}")
                break
        la, note = _variance_convention(voice, la, i)
        notes += [note] if note else []
        layers.append(la)  # weights and state (a BatchNorm's moving statistics) pass through
    return dataclasses.replace(model, layers=tuple(layers)), frozen, notes


def reference_step(voice: str, model: Model, x: np.ndarray, t: np.ndarray,
                   memo: dict | None = None) -> tuple[float, dict, list[str]]:  # fmt: skip
    """(loss, {(layer, weight): after the step, and (layer, "moving_mean" / "moving_var"): a BatchNorm's moving
    statistics after it}, notes): training.reference_step in `voice`'s Adam convention (training.FRAMEWORK_ADAM) on
    the model as `voice` holds it."""
    loss, after, notes, _ = step_and_gradients(voice, model, x, t, memo)
    return loss, after, notes


def step_and_gradients(voice: str, model: Model, x: np.ndarray, t: np.ndarray,
                       memo: dict | None = None) -> tuple[float, dict, list[str], dict]:  # fmt: skip
    """reference_step's answer and the gradients the step took (of the model as `voice` holds it). `memo` (a dict
    the caller keeps) computes the reference's training forward and backward once per distinct projected model, and
    its Adam step once per projected model and convention (a held entry below is set on a copy, never on what the
    memo keeps)."""
    flavour, eps = training.FRAMEWORK_ADAM[voice]
    projected, frozen, notes = project(voice, model.astype("float64"))
    key = _key(projected)
    if memo is not None and key in memo:
        loss, grads, state = memo[key]
    else:
        loss, grads, state = training.reference_gradients(projected, x, t)
        if memo is not None:
            memo[key] = (loss, grads, state)
    stepped = (key, flavour, eps)  # torch_nn and flax take the same step where neither projects the model
    if memo is not None and stepped in memo:
        after = dict(memo[stepped])
    else:
        after = {**training.adam_step(projected, grads, flavour, eps), **state}
        if memo is not None:
            memo[stepped] = dict(after)
    for k, held in frozen.items():
        after[k] = after[k].copy()
        after[k][held] = np.asarray(projected.parameters()[k])[held]
    return loss, after, notes, grads


def _key(model: Model) -> tuple:
    """What the reference's training gradients depend on: the structure and every weight's bytes (hashed)."""
    h = hashlib.blake2b(digest_size=16)
    for la in model.layers:
        for w in la.weights.values():
            h.update(np.ascontiguousarray(w).data)
    return structure(model), h.hexdigest()


def state_difference(model: Model, a: dict, b: dict) -> dict | None:
    """How far two steps' moving statistics are apart (a projected step against the canonical one), relative to
    how far the canonical step moved them, and where most; None for a model without state. What the certificate's
    training section states next to _update_difference (which compares parameters only) where a row's notes come
    from a variance-convention projection."""
    before = {k: np.asarray(v, "float64") for k, v in model.state().items()}
    if not before:
        return None
    moved = {k: np.asarray(a[k], "float64") - np.asarray(b[k], "float64") for k in before}
    worst = max(before, key=lambda k: float(np.max(np.abs(moved[k]))))
    num = float(np.max(np.abs(moved[worst])))
    den = max(float(np.max(np.abs(np.asarray(b[k], "float64") - before[k]))) for k in before)
    return {"relative_to_update": num / den if den > 0 else 0.0, "max_abs": num, "largest_in": "/".join(worst)}


def state_rows(model: Model, got: dict, want: dict) -> list[tuple[str, np.ndarray | None, np.ndarray]]:
    """[(tensor name, the framework's value or None where its step did not return it, the reference's)] for every
    moving statistic: what a training comparison must include besides the parameters."""
    return [("/".join(k), got.get(k), want[k]) for k in model.state()]


__all__ = ["FOLDS", "VARIANCE_UPDATE", "lstm_single_bias", "project", "reference_step", "state_difference", "state_rows",
           "step_and_gradients"]
