"""One voice's entry in the certificate: the whole forward in float32 and float64, every layer isolated and
accumulated, the gradients of the input and of every parameter.

A voice that cannot express the model in a dtype is listed with its declared reason; one whose module cannot load is
unavailable with the import error; one that raises while it computes fails its check, its last frame named.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import impls
from impls.contract import limits
from impls.contract.tolerance import tolerance
from impls.model import voices
from impls.model.description import Model

from .checks import Profile, attempt, compare, why
from .inputs import Reference, by_spread, cast
from .layers import first_diverging, layer_checks

DTYPES = ("float32", "float64")


def availability(voice: str) -> str | None:
    """Why the voice's module or framework cannot load here, or None."""
    if voice in voices.PORTS:
        try:
            voices.port_module(voice)
        except ImportError as e:
            return f"{voices.PORTS[voice]} is not importable here ({why(e)})"
    name = voice if voice in impls.IMPLEMENTATIONS else None
    return impls.unavailable_reason(name) if name else None


def saturated(model: Model, y: np.ndarray) -> str | None:
    """Why the gradients of L = <dy, y> cannot be compared, or None: a softmax output whose every row is one-hot in
    float64 (its largest probability rounds to 1). The softmax's vjp, p * (dy - <p, dy>), is then rounding alone (seen
    in the zoo: keras.applications EfficientNetB0 with drawn Normalization statistics, max |dL/dx| 4e-259), so two
    correct backwards differ by 100% of it."""
    if model.layers[-1].options.get("activation") != "softmax" or model.layers[-1].kind not in ("dense", "activation"):
        return None
    top = np.max(np.asarray(y, np.float64), axis=-1)
    if np.all(1.0 - top <= 2 * np.finfo(np.float64).eps):
        return (f"the softmax output is saturated on these inputs (every row's largest probability is 1 in float64; "
                f"smallest gap {float(np.min(1.0 - top)):.1e}): its gradient is rounding alone, so no two backwards "
                "can agree on it")
    return None


def gradient_checks(built: voices.Built, dtype: str, ref: Reference, dy: np.ndarray) -> dict[str, Any]:
    """dL/dx and every parameter's gradient, per tensor, against the reference's hand-written backward; in float64 one
    over the table's bar is judged by the reference's own one-ulp spread of it (inputs.by_spread, SPREAD_RULE)."""
    why_not = saturated(ref.model, ref.outs[-1])
    if why_not:
        return {"dtype": dtype, "not_compared": why_not}
    want_dx, want = ref.vjp(dy)
    got, problem = attempt(built.vjp, cast(ref.x, dtype), dy.astype(dtype))
    if problem:
        return {"dtype": dtype, **problem}
    dx, grads = got
    def judged(c: dict[str, Any], key: Any) -> dict[str, Any]:  # float64 over the table: by the reference's spread
        return by_spread(c, ref.gradient_spread(dy).get(key)) if dtype == "float64" and not c.get("pass") else c

    tensors = ([{"tensor": "input", **judged(compare(dx, want_dx, dtype), "input")}]
               if not np.issubdtype(ref.x.dtype, np.integer) else [])  # fmt: skip
    for (layer, weight), g in want.items():
        if (layer, weight) not in grads:
            tensors.append({"tensor": f"{layer}/{weight}", "error": float("inf"), "bar": tolerance(dtype), "pass": False,
                            "problem": "the voice returned no gradient for it"})  # fmt: skip
            continue
        tensors.append({"tensor": f"{layer}/{weight}", **judged(compare(grads[(layer, weight)], g, dtype), (layer, weight))})
    return {"dtype": dtype, "tensors": tensors}


def whole_forward(built: voices.Built, x: np.ndarray) -> np.ndarray:
    """The whole model's output: the build's forward, or the last of its every-layer outputs where that is the same
    compiled chain (Built.forward_is_last_output: JAX compiles one program, not two)."""
    if built.forward_is_last_output and built.outputs is not None:
        return np.asarray(built.outputs(x)[-1])
    return built.forward(x)


def voice_section(voice: str, model: Model, ref: Reference, dy: np.ndarray, profile: Profile, progress,
                  one_pass: bool = True) -> tuple[dict, dict]:  # fmt: skip
    """(the voice's certificate entry, {dtype: its whole-model Built})."""
    entry: dict[str, Any] = {"voice": voice}
    unavailable = availability(voice)
    if unavailable:
        return {**entry, "unavailable": unavailable}, {}
    builts: dict[str, voices.Built] = {}
    entry["refused"], entry["forward"], entry["layers"] = {}, {}, {}
    for dtype in DTYPES:
        refused, problem = attempt(voices.refusal, voice, model, dtype)
        if problem and "unavailable" in problem:
            return {"voice": voice, "unavailable": problem["unavailable"]}, {}
        if refused or (problem and "refused" in problem):
            entry["refused"][dtype] = refused or problem["refused"]
            continue
        progress(f"{voice}: building the model in {dtype}")
        with profile.section(voice, "build"):
            built, problem = attempt(voices.build, voice, model.astype(dtype), dtype)
        if problem and "refused" in problem:
            entry["refused"][dtype] = problem["refused"]
            continue
        if problem:
            entry["forward"][dtype] = problem
            continue
        entry["mode"], entry["notes"] = built.mode, list(built.notes)
        builts[dtype] = built
        with profile.section(voice, "forward"):
            y, problem = attempt(whole_forward, built, cast(ref.x, dtype))
        entry["forward"][dtype] = problem or ref.compare(y, len(ref.outs) - 1, dtype, accumulated=True)
        progress(f"{voice}: {len(model.layers)} layers isolated and accumulated in {dtype}")
        with profile.section(voice, "layers"):
            entry["layers"][dtype] = layer_checks(voice, model, dtype, ref, built, voices.LayerBuilds(voice, dtype),
                                                  one_pass)  # fmt: skip
    diverging = [{**f, "dtype": d} for d, rows in entry["layers"].items() if (f := first_diverging(rows))]
    entry["first_diverging_layer"] = min(diverging, key=lambda f: f["index"]) if diverging else None
    grad_dtype = next((d for d in ("float64", "float32") if d in builts), None)
    if grad_dtype is None:
        entry["gradients"] = {"not_computed": "the voice built the model in no dtype"}
    elif builts[grad_dtype].vjp is None:
        entry["gradients"] = {"none": limits.GRADIENT_REFUSALS.get(voice, "the voice's build offers no vjp")}
    else:
        progress(f"{voice}: gradients in {grad_dtype}")
        with profile.section(voice, "gradients"):
            entry["gradients"] = gradient_checks(builts[grad_dtype], grad_dtype, ref, dy)
    return entry, builts


__all__ = ["DTYPES", "availability", "gradient_checks", "saturated", "voice_section", "whole_forward"]
