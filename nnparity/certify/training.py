"""One Adam step per framework (torch_nn, keras, flax: impls/ports/*.train_step) against the NumPy reference step in
that framework's own convention and parametrization (nnparity/trainref.py), in float64, Dropout off.

The bar of a weight after the step follows the step's conditioning (`conditioned`): element i may be off by
    bar * max|w_after| + |d update_i / d g_i| * gradient accuracy
the table's float64 bar on the weight itself (as for any array), plus the accuracy of the gradient the step took
carried through the optimizer's first step at that element: update = lr g / (|g| + e), d update / d g =
lr e / (|g| + e)^2 (numpy_train.adam_first_step_sensitivity; e = eps for torch and optax, eps / sqrt(1 - beta_2)
for Keras). Where |g| is near eps that derivative is about lr / (4 eps) = 2.5e4, so a gradient rounding of a few
1e-16 moves the weight by about 1e-12: honest, not a porting bug (resnet34's BatchNorm betas, issue 27). Elsewhere
the second term is negligible, so a wrong convention (eps inside the square root, no bias correction, another eps,
a momentum written as 1 - m) still fails at the plain bar.

The gradient's accuracy is the larger of its bar (bar * max|g| of its tensor, as the gradient check's) and
SPREAD_FACTOR times how far the reference's own training gradient moves when every weight and the input move by one
unit in the last place (seeded signs: `gradient_spread`). In training mode a BatchNorm divides by the deviation of a
small batch, and a deep network's gradient is then worse conditioned than the bar assumes: measured on torchvision's
resnet50 at 3x3x32x32, a one-ulp move of the weights moved the reference's float64 gradients by 4-7e-10 of their
size (every tensor over the 1e-10 bar), and torch's own gradients differed from the reference's by 3.5-4.0e-10, at
most 1.6 times that spread. The factor 10 covers that ratio with room; it widens the bar only where the step itself
is that sensitive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from impls.contract import tolerance as T
from impls.contract.tolerance import OVERRIDES, tolerance
from impls.model import training, voices
from impls.model.description import Model
from impls.train import numpy_train

from .. import trainref
from .about import release_memory, worth_releasing
from .checks import Profile, attempt, compare
from .inputs import SEEDS, Reference, one_ulp

ADAM_CONVENTIONS = {
    "keras": "keras.optimizers.Adam: eps 1e-7 added to the uncorrected sqrt(v), the step size lr*sqrt(1-b2^t)/(1-b1^t)",
    "torch": "torch.optim.Adam and optax.adam: eps 1e-8 added to the bias-corrected sqrt(v_hat)",
}
BAR_RULE = ("a weight after the step may be off by bar * max|w| plus, at each element, the gradient's accuracy times "
            "Adam's first-step derivative there, lr e / (|g| + e)^2 (e = eps for torch and optax, eps / sqrt(1 - beta_2) "
            "for Keras); the gradient's accuracy is the larger of bar * max|g| of its tensor and 10 times how far the "
            "reference's training gradient moves when every weight and the input move by one ulp; a weight whose "
            "gradient is exactly zero (a bias read only by a BatchNorm) may move by the larger of 1e-6 lr and lr / e "
            "times 10 times its own one-ulp gradient spread; moving statistics at the plain bar")
SPREAD_FACTOR = T.SPREAD_FACTOR
"""How many times the reference's one-ulp gradient spread a framework's training gradient may be off (see above)."""
UNMOVED = 1e-6
"""A parameter whose gradient is exactly zero moves by rounding noise alone; Adam turns a gradient g of 1e-16 into a
step of about lr * g / eps: both steps must keep it within UNMOVED * lr of where it was."""


def _update_difference(before: dict, a: dict, b: dict) -> dict[str, Any]:
    """How far two steps' updates are apart, relative to the update's size, and where most."""
    worst = max(before, key=lambda k: float(np.max(np.abs((a[k] - before[k]) - (b[k] - before[k])))))
    num = max(float(np.max(np.abs((a[k] - before[k]) - (b[k] - before[k])))) for k in before)
    den = max(float(np.max(np.abs(b[k] - before[k]))) for k in before)
    return {"relative_to_update": num / den if den > 0 else 0.0, "max_abs": num, "largest_in": "/".join(worst)}


def zero_gradient_parameters(model: Model) -> dict[tuple[str, str], str]:
    """{(layer, weight): why} for parameters whose gradient is exactly zero in a training step: the bias of a layer
    read by nothing but a BatchNorm in training mode (the batch mean removes any per-channel constant)."""
    out = {}
    for la in model.layers:
        readers = model.consumers(la.name)
        linear = la.options.get("activation", "linear") in ("linear", None)  # relu(Wx + b): b is not removed
        if "bias" in la.weights and linear and readers and all(model.layers[j].kind == "batch_norm" for j in readers):
            out[(la.name, "bias")] = (f"read only by the BatchNorm {model.layers[readers[0]].name!r}, whose batch mean "
                                      "removes it: its gradient is exactly zero")
    return out


def unmoved_bar(flavour: str, eps: float, spread: float = 0.0) -> float:
    """How far a parameter with an exactly-zero gradient may move in one step: UNMOVED * lr, or, where the reference's
    own gradient of it moves by rounding (its one-ulp `spread`), Adam's sensitivity at g = 0 (lr / e) times
    SPREAD_FACTOR times that spread. In a deep model the zero is a sum that cancels: keras.applications ResNet50's
    conv1 bias (read only by a BatchNorm) moved 3.6e-8 in torch_nn's float64 step, a gradient of a few 1e-13 that
    Adam divides by eps = 1e-8."""
    at_zero = float(numpy_train.adam_first_step_sensitivity(np.zeros(()), flavour, eps, training.LR))
    return max(UNMOVED * training.LR, at_zero * SPREAD_FACTOR * spread)


def _unmoved(before: np.ndarray, got: np.ndarray, want: np.ndarray, why: str, bar: float | None = None,
             spread: float | None = None) -> dict[str, Any]:  # fmt: skip
    bar = UNMOVED * training.LR if bar is None else bar
    moved = max(float(np.max(np.abs(np.asarray(got) - before))), float(np.max(np.abs(np.asarray(want) - before))))
    return {"error": moved, "bar": bar, "pass": bool(moved <= bar), "zero_gradient": why,
            "measure": "the larger of the two steps' moves, absolute",
            **({"spread": spread} if spread is not None else {})}  # fmt: skip


def gradient_spread(model: Model, x: np.ndarray, t: np.ndarray,
                    grads: dict[tuple[str, str], np.ndarray]) -> dict[tuple[str, str], float]:  # fmt: skip
    """Per parameter tensor, max |g' - g|: how far the reference's training gradient moves when every weight and the
    (float) input are multiplied by 1 +- 2^-52 (one ulp, seeded signs): the step's own conditioning, measured."""
    moved, xm = one_ulp(model, x)
    _, g2, _ = training.reference_gradients(moved, xm, t)
    return {k: float(np.max(np.abs(g2[k] - g))) for k, g in grads.items()}


def conditioned(got: np.ndarray, want: np.ndarray, grad: np.ndarray, flavour: str, eps: float,
                work: str | None = None, spread: float = 0.0) -> dict[str, Any]:  # fmt: skip
    """A weight after the step against the reference's: compare()'s numbers, passed or failed by the rule above
    (`allowed` per element); `worst_share` is the largest |difference| / allowed (at most 1 passes). `spread`: the
    tensor's gradient_spread."""
    c = compare(got, want, "float64", work)
    if "problem" in c:
        return c
    bar, gbar = tolerance("float64", work), tolerance("float64")
    want, got = np.asarray(want, np.float64), np.asarray(got, np.float64)
    sens = numpy_train.adam_first_step_sensitivity(grad, flavour, eps, training.LR)
    accuracy = max(gbar * float(np.max(np.abs(grad))), SPREAD_FACTOR * spread)
    allowed = bar * float(np.max(np.abs(want))) + sens * accuracy
    share = np.abs(got - want) / np.maximum(allowed, np.finfo(np.float64).tiny)
    worst = np.unravel_index(int(np.argmax(share)), share.shape) if share.size else ()
    return {**c, "pass": bool(np.all(share <= 1.0)), "worst_share": float(share[worst]) if share.size else 0.0,
            "worst_share_index": [int(i) for i in worst], "conditioned": True}  # fmt: skip


_STOCHASTIC_DEPTH = ("; stochastic depth is off too, the identity it is at inference (in training torchvision drops "
                     "each sample's path, Keras' ConvNeXt the whole batch's, at random: no two frameworks' draws match)")


def training_section(model: Model, ref: Reference, available: list[str], selected: tuple[str, ...], progress,
                     profile: Profile) -> dict[str, Any]:  # fmt: skip
    model = ref.model  # the same model in float64: each astype("float64") below is then the same arrays, not a copy
    kind = training.loss_kind(model)
    t = training.targets(model, ref.outs[-1], SEEDS["targets"])
    out: dict[str, Any] = {"loss": kind, "lr": training.LR, "dtype": "float64", "targets_seed": SEEDS["targets"],
                           "dropout": "off (a step is taken in inference mode)" + _STOCHASTIC_DEPTH * any(
                               la.kind == "stochastic_depth" for la in model.layers), "conventions": ADAM_CONVENTIONS,
                           "bar_rule": BAR_RULE,
                           **({"batch_norm": ("training mode: each BatchNorm normalises by the batch's mean and biased "
                                              "variance and moves its moving statistics, compared after the step "
                                              "with the parameters")} if model.state() else {}),
                           "voices": {}}  # fmt: skip
    if not ref.model.parameters():
        return {**out, "not_compared": "the model has no parameters: a training step has nothing to update"}
    if kind == "categorical_crossentropy":
        try:
            training.check_unsaturated(ref.outs[-1])
        except ValueError as e:
            return {**out, "not_compared": f"{e}; on these inputs the frameworks' own losses are different functions"}
    large = worth_releasing(model, ref.outs)
    memo: dict = {}  # the reference's training gradients, once per distinct projected model
    with profile.section("reference", "training"):
        loss0, grads0, state0 = training.reference_gradients(model, ref.x, t)
        key = trainref._key(model.astype("float64"))
        memo[key] = (loss0, grads0, state0)
        stepped = {(flavour, eps): {**training.adam_step(model, grads0, flavour, eps), **state0}
                   for flavour, eps in sorted(set(training.FRAMEWORK_ADAM.values()))}  # fmt: skip
        memo |= {(key, *conv): dict(after) for conv, after in stepped.items()}  # each (convention, eps): its own step
        steps = {flavour: (loss0, after) for (flavour, _), after in stepped.items()}
        spread = gradient_spread(model, ref.x, t, grads0)
    zero = zero_gradient_parameters(ref.model)
    judged = [k for k in spread if k not in zero] or list(spread)  # an exactly-zero gradient has only noise to move
    worst = max(judged, key=lambda k: spread[k] / max(float(np.max(np.abs(grads0[k]))), 1e-300))
    out["gradient_spread"] = {
        "factor": SPREAD_FACTOR, "seed": SEEDS["ulp"], "largest_in": "/".join(worst),
        "relative": spread[worst] / max(float(np.max(np.abs(grads0[worst]))), 1e-300),
        "what": "max|g(w, x moved by one ulp) - g(w, x)| / max|g| of the reference's training gradient, worst tensor"}
    before = {k: np.asarray(v, "float64") for k, v in ref.model.parameters().items()}
    diff = _update_difference(before, steps["keras"][1], steps["torch"][1])
    out["differences"] = [(
        f"the Keras-convention step and the torch-convention step differ by {diff['relative_to_update']:.2e} of the "
        f"update's size (largest in {diff['largest_in']}): Keras adds eps=1e-7 to the uncorrected sqrt(v), torch and "
        "optax 1e-8 to the bias-corrected one")]
    out["convention_difference"] = diff
    for voice in training.FRAMEWORK_ADAM:
        flavour, eps = training.FRAMEWORK_ADAM[voice]
        row: dict[str, Any] = {"voice": voice, "convention": flavour, "eps": eps}
        if voice not in selected:
            out["voices"][voice] = {**row, "not_computed": "not among this run's voices"}
            continue
        if voice not in available:
            out["voices"][voice] = {**row, "unavailable": "the voice is not available here (see its entry)"}
            continue
        why, problem = attempt(voices.refusal, voice, model, "float64")
        if why or problem:
            out["voices"][voice] = {**row, **(problem or {"refused": why})}
            continue
        module = voices.port_module(voice)
        if not hasattr(module, "train_step"):
            out["voices"][voice] = {**row, "unavailable": f"{voices.PORTS[voice]} has no train_step"}
            continue
        progress(f"{voice}: one training step")
        with profile.section(voice, "training"):
            got, problem = attempt(module.train_step, ref.model, ref.x, t)  # float64 weights: a fold is exact
        if problem:
            out["voices"][voice] = {**row, **problem}
            continue
        loss, weights = got
        with profile.section("reference", "training"):
            want_loss, want, notes, grads = trainref.step_and_gradients(voice, model, ref.x, t, memo)
        if notes:
            canonical = _update_difference(before, want, steps[flavour][1])
            row["parametrization"] = notes
            out["differences"].append(
                f"{voice}: it holds the model in its own parametrization or convention ({'; '.join(notes)}); its "
                f"step differs from the canonical {flavour}-convention step by {canonical['relative_to_update']:.2e} of "
                f"the update's size (largest in {canonical['largest_in']})")  # fmt: skip
            state = trainref.state_difference(model, want, steps[flavour][1])
            if state and state["max_abs"] > 0:
                out["differences"].append(
                    f"{voice}: its moving statistics after the step differ from the canonical ones by "
                    f"{state['relative_to_update']:.2e} of their move (largest in {state['largest_in']})")
        work = "adam_step" if voice == "keras" else None
        row["loss_check"] = compare(np.float64(loss), np.float64(want_loss), "float64")
        row["weights"] = [{"tensor": "/".join(k), **(
            {"error": float("inf"), "bar": tolerance("float64", work), "pass": False,
             "problem": "train_step returned no such weight"} if k not in weights else
            _unmoved(before[k], weights[k], want[k], zero[k], unmoved_bar(flavour, eps, spread.get(k, 0.0)),
                     spread.get(k, 0.0)) if k in zero else
            conditioned(weights[k], want[k], grads[k], flavour, eps, work, spread.get(k, 0.0)) if k in grads else
            compare(weights[k], want[k], "float64", work))} for k in want]  # fmt: skip
        if work:
            row["bar_reason"] = OVERRIDES[(work, "float64")][1]
        row["port_notes"] = list(getattr(got, "notes", []))
        row["loss_value"], row["reference_loss"] = float(loss), float(want_loss)
        row["pass"] = row["loss_check"]["pass"] and all(w["pass"] for w in row["weights"])
        out["voices"][voice] = row
        del got, weights, want, grads
        if large:
            release_memory()  # the framework's model, its Adam state and its step: freed before the next voice's
    return out


__all__ = ["ADAM_CONVENTIONS", "BAR_RULE", "SPREAD_FACTOR", "UNMOVED", "conditioned", "gradient_spread", "training_section",
           "unmoved_bar", "zero_gradient_parameters"]
