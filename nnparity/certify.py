"""The certificate's pipeline: one model description checked in every voice against the NumPy float64 reference.

    cert = certify(model, imported, Settings(batch=3, bench=True, command=argv))   # a plain, JSON-able dict

Sections (certificate.py renders them): the model; the seeded inputs; per voice the whole forward in float32 and
float64 (where the voice has it), every layer isolated (fed the reference's own input) and accumulated (fed the
voice's own previous output), the gradients of the input and of every parameter; every GRU layer with a seeded
non-zero initial state through each voice's op-contract gru; one Adam step per framework in its own convention;
the user's own loaded model (the source) checked the same two ways; the paired speed ranking (timing.py); versions.
Every comparison is the normwise relative error (impls.contract.tolerance.error_stats) against its bar from the
tolerance table. A voice that cannot express the model is listed with its declared reason; one whose module cannot
load is listed as unavailable with the import error; one that raises while it computes fails its check.
"""

from __future__ import annotations

import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import impls
from impls import frameworks
from impls.contract import limits
from impls.contract.spec import GRUWeights, random_array
from impls.contract.tolerance import OVERRIDES, error_stats, tolerance
from impls.importers import Imported
from impls.model import training, voices
from impls.model.compose import reference_inputs, reference_outputs, reference_vjp
from impls.model.description import Model
from impls.model.layers import spec_of
from impls.primitives import numpy_impl

FORMAT = "nnparity.certificate/1"
DTYPES = ("float32", "float64")
SEEDS = {"x": 1, "dy": 2, "h0": 3, "targets": 4, "blocks": 5}
"""Every random draw's seed: the input, the output cotangent of the gradient check, the GRU initial states, the
training targets, and the speed ranking's block orders."""
INPUT_RANGE = (-1.0, 1.0)
TOKEN_RANGE = (0, 10)  # integer inputs (token ids): uniform integers, in the source's dtype
VERSIONS = ("torch", "tensorflow", "keras", "jax", "flax", "optax", "onnx", "onnxruntime")


@dataclass
class Settings:
    batch: int = 3
    bench: bool = True
    voices: tuple[str, ...] = voices.VOICES
    command: list[str] = field(default_factory=list)
    progress: Callable[[str], None] = lambda message: None
    spec: str = ""  # what the command was pointed at


# --------------------------------------------------------------------------- one comparison


def compare(actual: Any, expected: np.ndarray, precision: str, work: str | None = None) -> dict[str, Any]:
    """{error, bar, pass, max_abs, worst_index}: the normwise relative error against the table's bar."""
    bar = tolerance(precision, work)
    try:
        s = error_stats(actual, expected)
    except AssertionError as e:  # a wrong shape is a failed check, said as such
        return {"error": float("inf"), "bar": bar, "pass": False, "problem": str(e)}
    return {"error": s.rel, "bar": bar, "pass": bool(s.rel <= bar), "max_abs": s.max_abs,
            "worst_index": list(s.worst_index), **({"work": work} if work else {})}  # fmt: skip


def _why(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}".rstrip(": ")


def attempt(fn: Callable[..., Any], *args: Any) -> tuple[Any, dict[str, str] | None]:
    """(fn(*args), None), or (None, {"refused" | "unavailable" | "error": why}) where fn declared a refusal, could not
    load its framework or module, or raised (a bug: its last frame is kept)."""
    try:
        return fn(*args), None
    except limits.Refused as e:
        return None, {"refused": str(e)}
    except ImportError as e:
        return None, {"unavailable": _why(e)}
    except Exception as e:  # noqa: BLE001 - a voice that raises fails its check; the certificate says where
        where = traceback.extract_tb(e.__traceback__)[-1]
        return None, {"error": f"{_why(e)} (at {where.filename}:{where.lineno})"}


# --------------------------------------------------------------------------- inputs and reference


def lengths(batch: int, T: int) -> np.ndarray:
    """A padded batch's lengths: the first row full, the others shorter and different (never 0: torch's
    pack_padded_sequence refuses an empty row, so a certificate that every port can take has none)."""
    return np.array([T] + [max(1, T - 1 - (b * max(T - 1, 1)) // max(batch - 1, 1)) for b in range(1, batch)][: batch - 1])


def inputs(model: Model, batch: int) -> dict[str, np.ndarray]:
    """Seeded, non-symmetric inputs: x (uniform in INPUT_RANGE, or token ids inside the first embedding's table),
    dy for the gradients. A model that reads a padding mask (an embedding with mask_zero, a masking layer) gets a
    post-padded batch of different lengths (`lengths`), padded with id 0 or the mask value."""
    shape = (batch, *model.input_shape)
    first = model.layers[0]
    opts = spec_of(first.kind).options(first.options)
    g = np.random.default_rng(SEEDS["x"])
    if np.issubdtype(np.dtype(model.input_dtype), np.integer):
        hi = min(TOKEN_RANGE[1], opts["input_dim"]) if first.kind == "embedding" else TOKEN_RANGE[1]
        lo = 1 if first.kind == "embedding" and opts["mask_zero"] else TOKEN_RANGE[0]
        x = g.integers(lo, max(hi, lo + 1), shape).astype(model.input_dtype)
    else:
        x = random_array(shape, SEEDS["x"], "float64", *INPUT_RANGE)
    if first.kind in ("masking", "embedding") and (first.kind == "masking" or opts["mask_zero"]):
        pad = 0 if first.kind == "embedding" else opts["mask_value"]
        valid = np.arange(shape[1])[None, :] < lengths(batch, shape[1])[:, None]
        x = np.where(valid.reshape(valid.shape + (1,) * (x.ndim - 2)), x, pad).astype(x.dtype)
    out_shape = model.shapes(batch)[-1]
    return {"x": x, "dy": random_array(out_shape, SEEDS["dy"], "float64", *INPUT_RANGE)}


def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)


@dataclass
class Reference:
    model: Model  # float64
    x: np.ndarray
    ins: list[Any]  # what layer i reads: an array, or a list of them for a merge
    outs: list[np.ndarray]  # what layer i returns

    @classmethod
    def of(cls, model: Model, x: np.ndarray) -> Reference:
        m = model.astype("float64")
        outs = reference_outputs(m, cast(x, "float64"))
        return cls(m, x, reference_inputs(m, cast(x, "float64"), outs), outs)


# --------------------------------------------------------------------------- per voice


def availability(voice: str) -> str | None:
    """Why the voice's module or framework cannot load here, or None."""
    if voice in voices.PORTS:
        try:
            voices.port_module(voice)
        except ImportError as e:
            return f"{voices.PORTS[voice]} is not importable here ({_why(e)})"
    name = voice if voice in impls.IMPLEMENTATIONS else None
    return impls.unavailable_reason(name) if name else None


def layer_checks(voice: str, model: Model, dtype: str, ref: Reference) -> list[dict[str, Any]]:
    """Each layer isolated (the reference's own input) and accumulated (the voice's own chain from the input), in
    `dtype`. In a chain without masks, the accumulated output feeds the next layer's isolated build; in a graph, or
    where a padding mask reaches a layer, it is the voice's build of every layer up to it (Model.sub(0, i + 1)). A
    merge (add, concatenate) reads several tensors: it is checked accumulated only."""
    rows, prev = [], cast(ref.x, dtype)
    sources = model.mask_sources()
    chained = model.is_chain()
    for i, layer in enumerate(model.layers):
        row: dict[str, Any] = {"index": i, "name": layer.name, "kind": layer.kind}
        start = i if sources[i] is None else sources[i]
        if spec_of(layer.kind).ARITY != 1:
            row["isolated"] = {"not_computed": "a merge reads several tensors: checked accumulated, from the input"}
            built = None
        else:
            built, problem = attempt(voices.build, voice, model.sub(i).astype(dtype), dtype)
            if problem:
                row.update(problem)
                rows.append(row)
                prev = None
                continue
            if start == i:
                y, problem = attempt(built.forward, cast(ref.ins[i], dtype))
            else:  # fed a padding mask: from the layer that makes it, whose own check came first
                row["isolated_from"] = {"index": start, "name": model.layers[start].name,
                                        "why": "the layer reads the padding mask that layer makes"}
                whole, problem = attempt(voices.build, voice, model.sub(start, i + 1).astype(dtype), dtype)
                y, problem = (None, problem) if problem else attempt(whole.forward, cast(ref.ins[start], dtype))
            row["isolated"] = problem or compare(y, ref.outs[i], dtype)
        if chained and start == i and built is not None:
            if prev is None:
                row["accumulated"] = {"not_computed": "an earlier layer of this voice's chain did not compute"}
            else:
                prev, problem = attempt(built.forward, prev)
                row["accumulated"] = problem or compare(prev, ref.outs[i], dtype)
        else:  # the voice's own build of layers 0..i
            prefix, problem = attempt(voices.build, voice, model.sub(0, i + 1).astype(dtype), dtype)
            prev, problem = (None, problem) if problem else attempt(prefix.forward, cast(ref.x, dtype))
            row["accumulated"] = problem or compare(prev, ref.outs[i], dtype)
        rows.append(row)
    return rows


def first_diverging(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first layer whose isolated check failed (over its bar, or raised)."""
    for r in rows:
        iso = r.get("isolated")
        if iso is not None and "not_computed" in iso:
            continue
        if iso is None or not iso.get("pass", False):
            return {"index": r["index"], "name": r["name"], "kind": r["kind"]}
    return None


def gradient_checks(built: voices.Built, dtype: str, ref: Reference, dy: np.ndarray) -> dict[str, Any]:
    """dL/dx and every parameter's gradient, per tensor, against the reference's hand-written backward."""
    want_dx, want = reference_vjp(ref.model, cast(ref.x, "float64"), dy)
    got, problem = attempt(built.vjp, cast(ref.x, dtype), dy.astype(dtype))
    if problem:
        return {"dtype": dtype, **problem}
    dx, grads = got
    tensors = [{"tensor": "input", **compare(dx, want_dx, dtype)}] if not np.issubdtype(ref.x.dtype, np.integer) else []
    for (layer, weight), g in want.items():
        if (layer, weight) not in grads:
            tensors.append({"tensor": f"{layer}/{weight}", "error": float("inf"), "bar": tolerance(dtype), "pass": False,
                            "problem": "the voice returned no gradient for it"})  # fmt: skip
            continue
        tensors.append({"tensor": f"{layer}/{weight}", **compare(grads[(layer, weight)], g, dtype)})
    return {"dtype": dtype, "tensors": tensors}


def voice_section(voice: str, model: Model, ref: Reference, dy: np.ndarray, settings: Settings) -> tuple[dict, dict]:
    """(the voice's certificate entry, {dtype: its whole-model Built}) ."""
    entry: dict[str, Any] = {"voice": voice}
    unavailable = availability(voice)
    if unavailable:
        return {**entry, "unavailable": unavailable}, {}
    builts: dict[str, voices.Built] = {}
    entry["refused"], entry["forward"], entry["layers"] = {}, {}, {}
    for dtype in DTYPES:
        why, problem = attempt(voices.refusal, voice, model, dtype)
        if problem and "unavailable" in problem:
            return {"voice": voice, "unavailable": problem["unavailable"]}, {}
        if why or (problem and "refused" in problem):
            entry["refused"][dtype] = why or problem["refused"]
            continue
        settings.progress(f"{voice}: building the model in {dtype}")
        t0 = time.perf_counter()
        built, problem = attempt(voices.build, voice, model.astype(dtype), dtype)
        if problem and "refused" in problem:
            entry["refused"][dtype] = problem["refused"]
            continue
        if problem:
            entry["forward"][dtype] = problem
            continue
        entry["build_s"] = entry.get("build_s", 0.0) + time.perf_counter() - t0
        entry["mode"], entry["notes"] = built.mode, list(built.notes)
        builts[dtype] = built
        y, problem = attempt(built.forward, cast(ref.x, dtype))
        entry["forward"][dtype] = problem or compare(y, ref.outs[-1], dtype)
        settings.progress(f"{voice}: {len(model.layers)} layers isolated and accumulated in {dtype}")
        entry["layers"][dtype] = layer_checks(voice, model, dtype, ref)
    diverging = [{**f, "dtype": d} for d, rows in entry["layers"].items() if (f := first_diverging(rows))]
    entry["first_diverging_layer"] = min(diverging, key=lambda f: f["index"]) if diverging else None
    grad_dtype = next((d for d in ("float64", "float32") if d in builts), None)
    if grad_dtype is None:
        entry["gradients"] = {"not_computed": "the voice built the model in no dtype"}
    elif builts[grad_dtype].vjp is None:
        entry["gradients"] = {"none": limits.GRADIENT_REFUSALS.get(voice, "the voice's build offers no vjp")}
    else:
        settings.progress(f"{voice}: gradients in {grad_dtype}")
        entry["gradients"] = gradient_checks(builts[grad_dtype], grad_dtype, ref, dy)
    return entry, builts


# --------------------------------------------------------------------------- GRU with a non-zero initial state


def initial_state_checks(model: Model, ref: Reference, available: list[str]) -> list[dict[str, Any]]:
    """Every GRU layer, fed the reference's own input and a seeded non-zero h0, through each voice's op-contract gru
    (impls.backend(voice).gru) against impls.primitives.numpy_impl.gru in float64: y and h_T."""
    rows = []
    for i, layer in enumerate(model.layers):
        if layer.kind != "gru":
            continue
        opts = spec_of("gru").options(layer.options)
        variant, H = opts["variant"], int(opts["units"])
        x64 = ref.ins[i]
        h0 = random_array((x64.shape[0], H), SEEDS["h0"] + i, "float64", *INPUT_RANGE)
        w64 = GRUWeights(*(np.asarray(layer.weights[k], "float64") for k in ("W", "U", "b_x", "b_h")))
        y_ref, h_ref = numpy_impl.gru(x64, w64, variant, h0)
        for voice in available:
            row: dict[str, Any] = {"layer": layer.name, "index": i, "variant": variant, "voice": voice,
                                   "h0_seed": SEEDS["h0"] + i}  # fmt: skip
            if variant not in impls.GRU_VARIANTS.get(voice, ()):
                rows.append({**row, "refused": f"{voice}'s GRU computes only {', '.join(impls.GRU_VARIANTS.get(voice, ()))}"})
                continue
            for dtype in DTYPES:
                why = limits.refusal(voice, "gru", dtype)
                if why:
                    rows.append({**row, "dtype": dtype, "refused": why})
                    continue
                got, problem = attempt(_gru, voice, x64, w64, variant, h0, dtype)
                if problem:
                    rows.append({**row, "dtype": dtype, **problem})
                    continue
                y, h = got
                cy, ch = compare(y, y_ref, dtype), compare(h, h_ref, dtype)
                rows.append({**row, "dtype": dtype, "y": cy, "h_T": ch, "pass": cy["pass"] and ch["pass"]})
    return rows


def _gru(voice: str, x: np.ndarray, w: GRUWeights, variant: str, h0: np.ndarray, dtype: str):
    ops = impls.backend(voice)
    y, h = ops.gru(ops.asarray(x, dtype), w.map(lambda a: ops.asarray(a, dtype)), variant, ops.asarray(h0, dtype))
    return ops.to_numpy(y), ops.to_numpy(h)


# --------------------------------------------------------------------------- one training step


ADAM_CONVENTIONS = {
    "keras": "keras.optimizers.Adam: eps 1e-7 added to the uncorrected sqrt(v), the step size lr*sqrt(1-b2^t)/(1-b1^t)",
    "torch": "torch.optim.Adam and optax.adam: eps 1e-8 added to the bias-corrected sqrt(v_hat)",
}


def _update_difference(before: dict, a: dict, b: dict) -> dict[str, Any]:
    """How far two steps' updates are apart, relative to the update's size, and where most."""
    worst = max(before, key=lambda k: float(np.max(np.abs((a[k] - before[k]) - (b[k] - before[k])))))
    num = max(float(np.max(np.abs((a[k] - before[k]) - (b[k] - before[k])))) for k in before)
    den = max(float(np.max(np.abs(b[k] - before[k]))) for k in before)
    return {"relative_to_update": num / den if den > 0 else 0.0, "max_abs": num, "largest_in": "/".join(worst)}


UNMOVED = 1e-6
"""A parameter whose gradient is exactly zero moves by rounding noise alone; Adam turns a gradient g of 1e-16 into a
step of about lr * g / eps: both steps must keep it within UNMOVED * lr of where it was."""


def zero_gradient_parameters(model: Model) -> dict[tuple[str, str], str]:
    """{(layer, weight): why} for parameters whose gradient is exactly zero in a training step: the bias of a layer
    read by nothing but a BatchNorm in training mode (the batch mean removes any per-channel constant)."""
    out = {}
    for i, la in enumerate(model.layers):
        readers = model.consumers(la.name)
        if "bias" in la.weights and readers and all(model.layers[j].kind == "batch_norm" for j in readers):
            out[(la.name, "bias")] = (f"read only by the BatchNorm {model.layers[readers[0]].name!r}, whose batch mean "
                                      "removes it: its gradient is exactly zero")
    return out


def _unmoved(before: np.ndarray, got: np.ndarray, want: np.ndarray, why: str) -> dict[str, Any]:
    bar = UNMOVED * training.LR
    moved = max(float(np.max(np.abs(np.asarray(got) - before))), float(np.max(np.abs(np.asarray(want) - before))))
    return {"error": moved, "bar": bar, "pass": bool(moved <= bar), "zero_gradient": why,
            "measure": "the larger of the two steps' moves, absolute"}


def training_section(model: Model, ref: Reference, available: list[str], settings: Settings) -> dict[str, Any]:
    """One Adam step per framework (torch_nn, keras, flax: impls/ports/*.train_step) against the reference step in
    that framework's own convention and parametrization (trainref.py), in float64, Dropout off."""
    from . import trainref

    kind = training.loss_kind(model)
    t = training.targets(model, ref.outs[-1], SEEDS["targets"])
    out: dict[str, Any] = {"loss": kind, "lr": training.LR, "dtype": "float64", "targets_seed": SEEDS["targets"],
                           "dropout": "off (a step is taken in inference mode)", "conventions": ADAM_CONVENTIONS,
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
    steps = {flavour: training.reference_step(model, ref.x, t, flavour, eps)
             for flavour, eps in set(training.FRAMEWORK_ADAM.values())}
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
        if voice not in settings.voices:
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
        settings.progress(f"{voice}: one training step")
        got, problem = attempt(module.train_step, ref.model, ref.x, t)  # float64 weights: a fold is exact
        if problem:
            out["voices"][voice] = {**row, **problem}
            continue
        loss, weights = got
        want_loss, want, notes = trainref.reference_step(voice, model, ref.x, t)
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
        zero = zero_gradient_parameters(ref.model)
        row["weights"] = [{"tensor": "/".join(k), **(
            {"error": float("inf"), "bar": tolerance("float64", work), "pass": False,
             "problem": "train_step returned no such weight"} if k not in weights else
            _unmoved(before[k], weights[k], want[k], zero[k]) if k in zero else
            compare(weights[k], want[k], "float64", work))} for k in want]  # fmt: skip
        if work:
            row["bar_reason"] = OVERRIDES[(work, "float64")][1]
        row["port_notes"] = list(getattr(got, "notes", []))
        row["loss_value"], row["reference_loss"] = float(loss), float(want_loss)
        row["pass"] = row["loss_check"]["pass"] and all(w["pass"] for w in row["weights"])
        out["voices"][voice] = row
    return out


# --------------------------------------------------------------------------- the source model


def source_section(imported: Imported | None, ref: Reference, settings: Settings) -> dict[str, Any]:
    """The user's own loaded model against the reference: whole, and per layer both ways where it exposes them."""
    if imported is None:
        return {"none": "the model is an nnparity description: there is no framework model behind it to compare"}
    dtype = imported.dtype
    out: dict[str, Any] = {"source": imported.source, "path": imported.path, "dtype": dtype, "notes": list(imported.notes)}
    settings.progress(f"the source model ({imported.source}) itself")
    y, problem = attempt(imported.forward, cast(ref.x, dtype))
    out["forward"] = problem or compare(y, ref.outs[-1], dtype)
    model = ref.model
    rows = [{"index": i, "name": la.name, "kind": la.kind} for i, la in enumerate(model.layers)]
    if imported.layer_call is not None:
        sources = model.mask_sources()
        for i, r in enumerate(rows):
            if spec_of(model.layers[i].kind).ARITY != 1:
                r["isolated"] = {"not_computed": "a merge reads several tensors: checked accumulated"}
                continue
            if sources[i] is not None:  # one source layer alone would run without the mask
                r["isolated"] = {"not_computed": f"the layer reads the padding mask of layer {sources[i]} "
                                                 f"{model.layers[sources[i]].name!r}: checked accumulated"}
                continue
            y, problem = attempt(imported.layer_call, i, cast(ref.ins[i], dtype))
            r["isolated"] = problem or compare(y, ref.outs[i], dtype)
    else:
        out["isolated"] = "the source does not expose its layers one by one"
    if imported.layer_outputs is not None:
        ys, problem = attempt(imported.layer_outputs, cast(ref.x, dtype))
        for i, r in enumerate(rows):
            if problem:
                r["accumulated"] = problem
            elif i < len(ys):
                r["accumulated"] = compare(ys[i], ref.outs[i], dtype)
            else:
                r["accumulated"] = {"error": float("inf"), "bar": tolerance(dtype), "pass": False,
                                    "problem": f"the source gave {len(ys)} layer outputs for {len(rows)} layers"}
    else:
        out["accumulated"] = "the source does not expose its layers' outputs"
    out["layers"] = rows
    out["first_diverging_layer"] = first_diverging(rows) if imported.layer_call is not None else None
    return out


# --------------------------------------------------------------------------- verdict


def _checks(node: Any, where: str) -> list[tuple[str, dict]]:
    """Every comparison dict (one with "pass") in a section, with a readable path."""
    found = []
    if isinstance(node, dict):
        if "pass" in node and "bar" in node:
            found.append((where, node))
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                found += _checks(v, f"{where} {k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            label = v.get("name") or v.get("tensor") or v.get("layer") or str(i) if isinstance(v, dict) else str(i)
            if isinstance(v, dict) and "voice" in v and "dtype" in v and "layer" in v:
                label = f"{v['layer']} {v['voice']} {v['dtype']}"
            found += _checks(v, f"{where} {label}")
    return found


def _errors(node: Any, where: str) -> list[str]:
    """Every check that raised (a bug somewhere): {"error": "TypeError: ..."} entries."""
    found = []
    if isinstance(node, dict):
        if isinstance(node.get("error"), str):
            found.append(f"{where}: raised {node['error']}")
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                found += _errors(v, f"{where} {k}" if where else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            label = (v.get("name") or v.get("tensor") or v.get("layer") or str(i)) if isinstance(v, dict) else str(i)
            found += _errors(v, f"{where} {label}")
    return found


def failures(cert: dict[str, Any]) -> list[str]:
    out = []
    for section in ("voices", "initial_state", "training", "source"):
        for where, c in _checks(cert.get(section), section):
            if not c["pass"]:
                out.append(f"{where}: relative error {c['error']:.3g} > bar {c['bar']:.1g}"
                           + (f" ({c['problem']})" if c.get("problem") else ""))
        out += _errors(cert.get(section), section)
    return out


def overall_first_diverging(cert: dict[str, Any]) -> dict[str, Any] | None:
    """The earliest first-diverging layer over the source and every voice, with who diverges there."""
    found = []
    src = cert.get("source", {}).get("first_diverging_layer")
    if src:
        found.append(("source", src))
    for v, e in cert["voices"].items():
        if e.get("first_diverging_layer"):
            found.append((f"{v} {e['first_diverging_layer']['dtype']}", e["first_diverging_layer"]))
    if not found:
        return None
    index = min(f["index"] for _, f in found)
    first = next(f for _, f in found if f["index"] == index)
    return {"index": index, "name": first["name"], "kind": first["kind"], "in": [w for w, f in found if f["index"] == index]}


def versions() -> dict[str, str | None]:
    import importlib.metadata as md

    def mine() -> str | None:
        try:
            return md.version("nnparity")
        except md.PackageNotFoundError:
            return None

    return {"python": platform.python_version(), "numpy": np.__version__, "nnparity": mine(),
            **{name: frameworks.version(name) for name in VERSIONS}}  # fmt: skip


def model_section(model: Model, batch: int) -> dict[str, Any]:
    shapes = model.shapes(batch)
    return {"name": model.name, "source": model.source, "input_shape": [batch, *model.input_shape],
            "input_dtype": model.input_dtype, "boundary": model.boundary, "parameters": model.param_count(),
            "flops": model.flops(batch),
            "layers": [{"index": i, "name": la.name, "kind": la.kind, "options": dict(la.options),
                        "output_shape": list(shapes[i + 1]), "parameters": int(sum(np.size(w) for w in la.weights.values()))}
                       for i, la in enumerate(model.layers)]}  # fmt: skip


# --------------------------------------------------------------------------- the whole pipeline


def certify(model: Model, imported: Imported | None, settings: Settings) -> dict[str, Any]:
    """The certificate of `model` (and of the user's own model, `imported`): a plain dict (JSON-able but for
    non-finite floats, which certificate.py writes as strings)."""
    t0 = time.perf_counter()
    batch = settings.batch
    data = inputs(model, batch)
    settings.progress("the NumPy float64 reference")
    ref = Reference.of(model, data["x"])
    cert: dict[str, Any] = {
        "format": FORMAT, "command": list(settings.command), "model": model_section(model, batch),
        "inputs": {"batch": batch, "shape": list(data["x"].shape), "dtype": str(data["x"].dtype), "seeds": dict(SEEDS),
                   "x": (f"impls.contract.spec.random_array(shape, seed={SEEDS['x']}) uniform in {list(INPUT_RANGE)}"
                         if data["x"].dtype.kind == "f" else f"uniform integers in {list(TOKEN_RANGE)} (and inside the first "
                         f"embedding's table), seed {SEEDS['x']}")
                   + (f"; post-padded to lengths {lengths(settings.batch, model.input_shape[0]).tolist()}"
                      if model.mask_sources() and any(s is not None for s in model.mask_sources()) else ""),
                   "dy": f"uniform in {list(INPUT_RANGE)} of the output's shape, seed {SEEDS['dy']}",
                   "h0": f"uniform in {list(INPUT_RANGE)}, seed {SEEDS['h0']} + the GRU layer's index",
                   "gru_state": "the model itself starts every GRU from zeros, as its source does; the initial_state "
                                "section checks a non-zero one"},
        "reference": "impls.model.compose.reference_forward / reference_vjp on the model in float64 (NumPy)",
        "error_measure": "max|actual - reference| / max|reference| (impls.contract.tolerance.error_stats)",
        "bars": {d: tolerance(d) for d in DTYPES},
        "voices": {},
    }  # fmt: skip
    builts32: dict[str, voices.Built] = {}
    for voice in settings.voices:
        entry, builts = voice_section(voice, model, ref, data["dy"], settings)
        cert["voices"][voice] = entry
        if "float32" in builts:
            builts32[voice] = builts["float32"]
    available = [v for v, e in cert["voices"].items() if "unavailable" not in e]
    settings.progress("GRU layers with a non-zero initial state")
    cert["initial_state"] = initial_state_checks(model, ref, available)
    cert["training"] = training_section(model, ref, available, settings)
    cert["source"] = source_section(imported, ref, settings)
    cert["checks_s"] = time.perf_counter() - t0
    if settings.bench:
        from . import timing

        settings.progress("the speed ranking")
        cert["speed"] = timing.rank(builts32, cast(data["x"], "float32"), data["dy"].astype("float32"),
                                    SEEDS["blocks"], settings.progress, flops=model.flops(batch))  # fmt: skip
    else:
        cert["speed"] = {"skipped": "--no-bench"}
    cert["versions"] = versions()
    cert["platform"] = {"system": platform.platform(), "python": sys.version.split()[0]}
    cert["failures"] = failures(cert)
    fd = overall_first_diverging(cert)
    cert["first_diverging_layer"] = fd["name"] if fd else None
    cert["first_diverging"] = fd
    cert["verdict"] = "pass" if not cert["failures"] else "fail"
    cert["total_s"] = time.perf_counter() - t0
    return cert


__all__ = ["DTYPES", "FORMAT", "SEEDS", "Settings", "attempt", "certify", "compare", "failures", "first_diverging"]
