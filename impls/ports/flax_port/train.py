"""The Flax port's training: `train_step`, one optax.adam step of the written port (its code and variables in memory,
program.Program, as the built voice runs them), and `project_for_training`.

Training (`train_step`) is optax.adam with its defaults (eps 1e-8 after the bias-corrected sqrt(v), eps_root 0:
optax/_src/transform.py's scale_by_adam, torch's convention), which is exact for every layer but a GRU or an LSTM: the
GRU cell holds b_x + b_h of the z and r gates as one parameter and the LSTM cell every gate's, so Adam moves their
sum by one step where two separate biases move by one step each. `train_step` returns that in its notes, and
`project_for_training` is the reference model in the cells' own parametrization to compare the step with.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ... import convert, frameworks
from ...contract import limits
from ...contract.spec import GRUWeights, LSTMWeights
from ...model import training
from ...model.description import Model
from ...model.layers import spec_of
from ...model.layers.rnn import CELL_WEIGHTS, directions
from .emit import RECURRENT, VOICE, has_state, refusal
from .normalization import batch_norm_notes
from .program import Program, integer_input
from .weights import canonical

NOT_TRAINING_EXACT = (
    "not training-exact: flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each (four biases, not "
    "six), so one Adam step moves each folded sum by one step (~lr) where the reference moves b_x and b_h by one "
    "step each (~2 lr on the sum); the GRU biases returned are the cell's, read back as convert.flax_folded_bias "
    "(b_h of z and r zero)")
NOT_TRAINING_EXACT_LSTM = (
    "not training-exact: flax.linen.LSTMCell holds each gate's b_x + b_h as one bias (on its hidden Dense), so one "
    "Adam step moves each folded sum by one step (~lr) where the reference moves b_x and b_h by one step each (~2 lr "
    "on the sum); the LSTM biases returned are the cell's, read back as convert.flax_lstm_folded_bias (b_h zero)")


class TrainStep(tuple):
    """(loss before the step, {(layer, weight): canonical weight after it}), unpacking as that pair; `.exact` says
    whether the step is the reference's exactly, and `.notes` what differs where it is not."""

    exact: bool
    notes: list[str]

    def __new__(cls, loss: float, weights: dict, notes: list[str]):
        self = super().__new__(cls, (loss, weights))
        self.exact, self.notes = not notes, list(notes)
        return self


def train_step(model: Model, x: np.ndarray, t: np.ndarray, dtype: str = "float64") -> TrainStep:
    """One optax.adam(training.LR) step (its defaults: eps 1e-8, torch's convention) of the port on the loss
    training.loss_kind(model) names, with optax's own losses: cross-entropy as optax.softmax_cross_entropy on the
    log of the softmax output (log_softmax(log p) = log p where p sums to 1), else optax.squared_error's mean.
    A model with BatchNorm steps in training mode (module.apply(..., train=True, mutable=["batch_stats"]): the
    batch's statistics normalise and the moving ones move); dropout is left out of the port, so it is off.
    Returns (loss before the step, every canonical weight after it, and a BatchNorm's moving_mean / moving_var
    after it), with `.notes` where it is not exact (batch_norm_notes: an unbiased variance update, which the step
    makes in Flax's biased convention)."""
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    jax = frameworks.load("jax")
    optax = frameworks.load("optax")
    jnp = jax.numpy
    program = Program(model, dtype)  # the code write() writes, exec'd in memory, and the same variables
    module, variables = program.module, program.variables(model)
    layout, kind = program.layout, training.loss_kind(model)
    stateful = has_state(model)

    def loss_fn(p, s, x, t):
        if stateful:
            y, moved = module.apply({"params": p, "batch_stats": s}, x, train=True, mutable=["batch_stats"])
            s = moved["batch_stats"]
        else:
            y = module.apply({"params": p}, x)
        if kind == "categorical_crossentropy":
            return jnp.mean(optax.softmax_cross_entropy(jnp.log(y), t)), s
        return jnp.mean(optax.squared_error(y, t)), s

    opt = optax.adam(training.LR)

    @jax.jit
    def step(p, s, x, t):
        (loss, s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, t)
        updates, _ = opt.update(grads, opt.init(p), p)
        return loss, optax.apply_updates(p, updates), s

    xn = jnp.asarray(layout.x(np.asarray(x)), dtype=model.input_dtype if integer_input(model) else dtype)
    tn = jnp.asarray(layout.y(np.asarray(t)), dtype=dtype)
    loss, new, stats = step(variables["params"], variables.get("batch_stats", {}), xn, tn)
    new, stats = jax.tree_util.tree_map(np.asarray, (new, stats))
    weights = canonical(model, new, gradients=False, stats=stats if stateful else None)
    notes = [note for kind, note in (("gru", NOT_TRAINING_EXACT), ("lstm", NOT_TRAINING_EXACT_LSTM))
             if any(la.kind == kind for la in model.layers)]
    notes += batch_norm_notes(model)
    return TrainStep(float(loss), {k: weights[k] for k in (*model.parameters(), *model.state())}, notes)


def project_for_training(model: Model) -> tuple[Model, dict[tuple[str, str], slice], list[str]]:
    """The model as the Flax port's cells hold it, for comparing train_step with the reference step (what
    nnparity/trainref.project("flax", model) gives for a forward GRU, extended to LSTMs and backward cells):
    (the projected model, {(layer, "b_h" + suffix): entries the step must hold at zero}, a note per layer).
    GRU: convert.flax_folded_bias (b_h of z and r held at 0); LSTM: convert.flax_lstm_folded_bias (all of b_h held
    at 0). The projection changes no output, so the loss is the same."""
    layers, frozen, notes = [], {}, []
    for i, la in enumerate(model.layers):
        if la.kind in RECURRENT:
            opts = spec_of(la.kind).options(la.options)
            H, w = opts["units"], dict(la.weights)
            fold, kept, cls = ((convert.flax_folded_bias, 2, GRUWeights) if la.kind == "gru" else
                               (convert.flax_lstm_folded_bias, 4, LSTMWeights))
            for suffix in directions(opts):
                f = fold(cls(*(np.asarray(w[k + suffix]) for k in CELL_WEIGHTS)))
                w |= {k + suffix: getattr(f, k) for k in CELL_WEIGHTS}
                frozen[(la.name, "b_h" + suffix)] = slice(0, kept * H)
            la = dataclasses.replace(la, weights=w)
            notes.append(f"{la.label(i)}: " + (
                "flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each: compared with the reference "
                "step on convert.flax_folded_bias's projection, b_h of z and r held at 0" if la.kind == "gru" else
                "flax.linen.LSTMCell holds each gate's b_x + b_h as one bias: compared with the reference step on "
                "convert.flax_lstm_folded_bias's projection, b_h held at 0"))
        layers.append(la)
    return dataclasses.replace(model, layers=tuple(layers)), frozen, notes


__all__ = ["NOT_TRAINING_EXACT", "NOT_TRAINING_EXACT_LSTM", "TrainStep", "project_for_training", "train_step"]
