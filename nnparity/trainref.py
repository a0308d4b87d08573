"""The reference Adam step in each framework's own parametrization of a GRU's biases.

A framework that holds fewer GRU biases than the canonical four blocks steps a different set of parameters, so
its step is compared with the reference step of the model projected onto what it holds, the projected-away bias
entries held where the projection puts them (zero):
- Keras GRU(reset_after=False) holds one bias b_x + b_h (convert.keras_single_bias): all of b_h is held at 0;
- flax.linen.GRUCell holds the z and r gates' b_x + b_h as one (convert.flax_folded_bias): b_h[:2H] is held at 0.
The projection changes no output, so the loss is the same; the certificate also states how far that step is from
the canonical one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from impls import convert
from impls.contract.spec import GRUWeights
from impls.model import training
from impls.model.description import Layer, Model

Fold = tuple[Callable[[dict], bool], Callable[[GRUWeights], GRUWeights], Callable[[int], slice], str]
FOLDS: dict[str, Fold] = {
    "keras": (lambda opts: opts.get("variant") == "reset_before", convert.keras_single_bias, lambda H: slice(0, 3 * H),
              ("Keras' GRU(reset_after=False) holds one bias b_x + b_h: compared with the reference step on "
              "convert.keras_single_bias's projection, b_h held at 0")),
    "flax": (lambda opts: True, convert.flax_folded_bias, lambda H: slice(0, 2 * H),
             ("flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each: compared with the reference "
             "step on convert.flax_folded_bias's projection, b_h of z and r held at 0")),
}  # fmt: skip


def project(voice: str, model: Model) -> tuple[Model, dict[tuple[str, str], slice], list[str]]:
    """(the model as `voice` holds it, {(layer, "b_h"): entries held fixed}, what was projected, per layer)."""
    if voice not in FOLDS:
        return model, {}, []
    applies, fold, held, why = FOLDS[voice]
    layers, frozen, notes = [], {}, []
    for i, la in enumerate(model.layers):
        if la.kind == "gru" and applies(dict(la.options)):
            w = fold(GRUWeights(*(np.asarray(la.weights[k]) for k in ("W", "U", "b_x", "b_h"))))
            la = dataclasses.replace(la, weights={"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h})
            frozen[(la.name, "b_h")] = held(int(la.options["units"]))
            notes.append(f"{Layer.label(la, i)}: {why}")
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


__all__ = ["FOLDS", "project", "reference_step"]
