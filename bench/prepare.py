"""Preparing one benchmark row, outside the timed region: the seeded float64 inputs (shared by consecutive
rows), the NumPy float64 reference on the same dtype-rounded inputs (a few kept), the implementation's
callable (a contract function, or a prepared one from bench/native_*.py) given to its compile(fn, mode),
and the check that turns the first call's output into (max_rel_err, err_note[, err_ok, extra fields]).

bench/harness.py times what this returns; nothing here is timed.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from impls import LAYER_COUNTS, BackendUnavailable, backend, frameworks
from impls.contract.inputs import round_to, to_native
from impls.contract.limits import Refused
from impls.contract.tolerance import (
    CALIBRATED_FACTOR,
    CALIBRATED_WORKS,
    calibrated_tolerance,
    error_stats,
    tolerance,
)
from impls.model import compose
from impls.model import seed as seed_models
from impls.model import voices as model_voices
from impls.primitives import numpy_impl as ref
from impls.train import numpy_train

from . import flops
from .cases import Row
from .works import OP_FUNCTIONS, make_inputs, op_call, seed_of, truncate_gru

REF_FLOP_BUDGET = 2e10
"""Largest reference (NumPy float64) computed in full, in FLOPs (~0.2-0.5 s here). Longer GRU rows are
checked on their first timesteps, with a separate untimed call of the implementation (err_note says so)."""


# --------------------------------------------------------------------------- loading


def load(impl: str) -> ModuleType:
    try:
        return backend(impl)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def native(framework: str) -> ModuleType:
    """bench.native_torch for torch rows, bench.native_jax for jax/flax rows, bench.native_tf for tensorflow/keras
    rows (skip if missing)."""
    name = {"torch": "bench.native_torch", "jax": "bench.native_jax", "flax": "bench.native_jax"}.get(framework, "bench.native_tf")
    try:
        return importlib.import_module(name)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def version(framework: str) -> str | None:
    return np.__version__ if framework == "numpy" else frameworks.version(framework)


# --------------------------------------------------------------------------- rounding and conversion


def to_np(mod: ModuleType, a: Any) -> np.ndarray:
    return np.asarray(mod.to_numpy(a), dtype=np.float64)


# --------------------------------------------------------------------------- inputs and references (NumPy float64)

_INPUTS: dict[tuple, dict[str, Any]] = {}


def inputs(row: Row) -> dict[str, Any]:
    """The row's seeded float64 inputs. Consecutive rows of one size and pass share them (DeepBench's inputs
    are up to ~0.5 GB); nobody writes into them (every implementation converts to its own copy)."""
    key = (row.work, row.size.label, row.pass_)
    if key not in _INPUTS:
        _INPUTS.clear()
        _INPUTS[key] = make_inputs(row.work, row.size.dims, row.pass_, row.size.label)
    return _INPUTS[key]


_REFS: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()


def reference(key: tuple, compute: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
    """Consecutive rows share a reference (rows are ordered for it); a few are kept."""
    if key not in _REFS:
        _REFS[key] = [np.asarray(r, dtype=np.float64) for r in compute()]
        while len(_REFS) > 6:
            _REFS.popitem(last=False)
    return _REFS[key]


def _model_loss_and_grads(work: str, params: Any, x: np.ndarray, onehot: np.ndarray, variant: str | None):
    if work == "seed_gru_model":
        return numpy_train.seed_gru_loss_and_grads(params, x, onehot, variant)
    return numpy_train.seed_cnn_loss_and_grads(params, x, onehot)


def _flat_grads(loss, grads) -> list[np.ndarray]:
    return [np.asarray(loss), *numpy_train.leaves(grads)]


def max_error(got: list[np.ndarray], expected: list[np.ndarray], names: list[str] | None = None) -> tuple[float, str]:
    if len(got) != len(expected):
        raise AssertionError(f"{len(got)} outputs where the reference has {len(expected)}")
    worst, where = 0.0, ""
    for i, (g, e) in enumerate(zip(got, expected)):
        rel = error_stats(g, e).rel
        if not rel <= worst:  # NaN and inf win
            worst, where = rel, names[i] if names else f"output {i}"
    return worst, where


# --------------------------------------------------------------------------- preparing a row


@dataclass
class Prepared:
    fn: Callable[[], Any]  # the compiled zero-argument call
    check: Callable[[Any], tuple]  # first call's output -> (max_rel_err, err_note[, err_ok, extra fields])
    what: str  # what the timed call does


def compile_for(mod: ModuleType, fn: Callable, mode: str, device: str, framework: str) -> Callable:
    if mode == "numpy":
        return fn
    offered = getattr(mod, "MODES", (getattr(mod, "MODE", None),))
    if mode not in offered or not hasattr(mod, "compile"):
        pytest.skip(f"{mod.__name__} does not offer mode {mode!r} (offers {offered})")
    compiled = mod.compile(fn, mode)
    if framework in ("tensorflow", "keras"):
        return native("tensorflow").on_device(compiled, device)
    return compiled


def _op_prepare(row: Row, mod: ModuleType, a: dict[str, Any]) -> tuple[Callable, Callable, str]:
    if row.impl in LAYER_COUNTS:  # torch.nn and Keras rows time layers built once (bench/native_*.py)
        return native(row.framework).builtin_op(row.work, row.pass_, a, row.variant, row.dtype, row.device)
    fname = OP_FUNCTIONS[(row.work, row.pass_)]
    if not hasattr(mod, fname):
        pytest.skip(f"{mod.__name__} has no {fname}() yet")
    na, call = to_native(mod, a, row.dtype, row.device), op_call(row.work, row.pass_, row.variant)
    return (lambda: call(mod, na)), (lambda out: [to_np(mod, o) for o in out]), f"{row.impl}.{fname}(...)"


def _truncation(row: Row) -> int | None:
    """Timesteps the reference of a long GRU row is computed on, None for the whole row."""
    if row.work != "gru":
        return None
    d = row.size.dims
    cost = flops.row_flops("gru", d, row.pass_)
    if cost <= REF_FLOP_BUDGET:
        return None
    return max(1, min(d["T"] - 1, int(d["T"] * REF_FLOP_BUDGET / cost)))


def prepare_op(row: Row, mod: ModuleType) -> Prepared:
    a = inputs(row)
    fn, post, what = _op_prepare(row, mod, a)
    compiled = compile_for(mod, fn, row.mode, row.device, row.framework)
    steps = _truncation(row)
    a_ref = a if steps is None else truncate_gru(a, steps)
    key = (row.work, row.size.label, row.variant, row.pass_, row.dtype, steps)
    call = op_call(row.work, row.pass_, row.variant)

    def check(out):
        expected = reference(key, lambda: [np.asarray(o) for o in call(ref, round_to(a_ref, row.dtype))])
        if steps is None:
            got, note = post(out), None
        else:  # a separate, untimed call on the first timesteps
            cfn, cpost, _ = _op_prepare(row, mod, a_ref)
            got = cpost(compile_for(mod, cfn, row.mode, row.device, row.framework)())
            note = f"error measured on the first {steps} of {row.size.dims['T']} timesteps (a separate untimed call)"
        err, where = max_error(got, expected)
        note = note or (f"worst: {where}" if len(got) > 1 else None)
        work = tol_work(row)
        if err <= tolerance(row.precision, work) or row.precision != "float32" or work not in CALIBRATED_WORKS:
            return err, note
        # over the table: is float32 itself this far off on these inputs? (NumPy float32, same inputs, untimed)
        own = [to_np(ref, o) for o in call(ref, to_native(ref, a_ref, "float32", "cpu"))]
        own_err = max_error(own, expected)[0]
        bar = calibrated_tolerance(row.precision, work, own_err)
        note = (f"{note + '; ' if note else ''}over the table's {tolerance(row.precision, work):.0e}: NumPy's own "
                f"float32 error on these inputs is {own_err:.2e}, so the bar is {CALIBRATED_FACTOR:g}x that")  # fmt: skip
        return err, note, bool(err <= bar), {"numpy_float32_err": float(own_err), "calibrated_tolerance": bar}

    return Prepared(compiled, check, what)


def _description(row: Row, params: Any):
    """The row's seed model as a model description, holding `params`."""
    if row.work == "seed_gru_model":
        return seed_models.from_gru_params(params, row.variant, row.size.dims["T"])
    d = row.size.dims
    return seed_models.from_cnn_params(params, (d["H"], d["W"], d["C"]))


def prepare_model(row: Row, mod: ModuleType) -> Prepared:
    a = inputs(row)
    r = round_to(a, row.dtype)
    grads_key = (row.work, row.size.label, row.variant, "grads", row.dtype)

    def ref_grads():
        return reference(grads_key, lambda: _flat_grads(*_model_loss_and_grads(row.work, r["params"], r["x"], r["onehot"], row.variant)))

    if row.pass_ == "fwd":
        built = model_voices.build(row.impl, _description(row, a["params"]), row.dtype, row.device)
        forward = built.eager or built.call  # compiled below in the row's mode, as every row is
        x = built.to_native(a["x"])
        fn = lambda: forward(x)
        key = (row.work, row.size.label, row.variant, "fwd", row.dtype)

        def check(out):
            expected = reference(key, lambda: [compose.reference_forward(_description(row, r["params"]), r["x"])])
            return max_error([built.to_numpy(out)], expected)[0], None

        what = f"voices.build({row.impl!r}, the {row.work} description).call(x), the model built outside"
        return Prepared(compile_for(mod, fn, row.mode, row.device, row.framework), check, what)

    if row.pass_ == "fwd+bwd":
        if row.impl == "numpy":
            p = a["params"].map(lambda v: np.asarray(v, dtype=row.dtype))
            x, onehot = a["x"].astype(row.dtype), a["onehot"].astype(row.dtype)
            fn = lambda: _model_loss_and_grads(row.work, p, x, onehot, row.variant)
            post, what = (lambda out: _flat_grads(*out)), "numpy_train.seed_*_loss_and_grads (hand-written backward)"
        else:
            fn, post, what = native(row.framework).model_grads(row.impl, row.work, a, row.variant, row.dtype, row.device)
        names = ["loss", *(f"grad {i}" for i in range(len(numpy_train.leaves(a["params"]))))]

        def check(out):
            err, where = max_error(post(out), ref_grads(), names)
            return err, f"loss and every parameter's gradient; worst: {where}"

        return Prepared(compile_for(mod, fn, row.mode, row.device, row.framework), check, what)

    # train_step: one optimiser step
    if row.impl == "numpy":
        fn, observe, what, adam = _numpy_train_step(row, a)
    else:
        fn, observe, what, adam = native(row.framework).train_step(row.impl, row.work, a, row.variant, row.dtype, row.device)

    def check(out):
        obs = observe(out)
        expected = ref_grads()
        g_err, g_where = max_error([obs["loss"], *numpy_train.leaves(obs["grads"])], expected)
        # the update, from this step's own gradients, by numpy_train's Adam in float64
        p0 = numpy_train.leaves(r["params"])
        g = [np.asarray(v, dtype=np.float64) for v in numpy_train.leaves(obs["grads"])]
        p1, _ = numpy_train.adam_update(p0, g, numpy_train.adam_init(p0), lr=adam["lr"], eps=adam["eps"],
                                        flavour=adam["flavour"])  # fmt: skip
        flat = lambda arrays: [np.concatenate([np.ravel(v) for v in arrays])]
        u_err, _ = max_error(flat(numpy_train.leaves(obs["params"])), flat(p1))
        u_tol = tolerance(row.precision, "adam_step")
        note = (f"max_rel_err: loss and gradients of the step vs NumPy float64 (worst {g_where}); update_err: the "
                f"parameters after the step vs numpy_train's {adam['flavour']} Adam in float64 applied to this "
                f"step's own gradients")  # fmt: skip
        extra = {"update_err": float(u_err), "update_tolerance": u_tol, "adam": adam}
        return g_err, note, bool(g_err <= tolerance(row.precision, row.work) and u_err <= u_tol), extra

    return Prepared(compile_for(mod, fn, row.mode, row.device, row.framework), check, what)


LAYER_SPECS = {"lstm": ("lstm", {}), "bilstm": ("lstm", {"direction": "bidirectional"}),
               "bigru": ("gru", {"direction": "bidirectional"})}
"""A LAYER_WORKS row's one layer: (kind, options beyond units), the final state returned (return_sequences False)."""


def layer_description(work: str, dims: dict[str, int]):
    """The row's one-layer model description, seeded from the work and sizes (float64 weights)."""
    from impls.model.seeded import chain

    kind, extra = LAYER_SPECS[work]
    return chain(work, (dims["T"], dims["I"]), [(kind, work, {"units": dims["H"], **extra})],
                 seed=seed_of(f"{work} weights"), batch=dims["B"])


def prepare_layer(row: Row, mod: ModuleType) -> Prepared:
    """A LAYER_WORKS row: the voice's build of the one-layer description (impls.model.voices.build), timed on its
    native arrays: `call(x)` forward, `step(x, dy)` forward + backward. The fwd+bwd check is the same build's vjp on
    the same inputs (an untimed call), against the reference's hand-written backward."""
    model = layer_description(row.work, row.size.dims).astype(row.dtype).astype("float64")  # the weights the voice holds
    a = inputs(row)
    r = round_to({k: v for k, v in a.items() if k in ("x", "dy")}, row.dtype)
    try:
        built = model_voices.build(row.impl, model.astype(row.dtype), row.dtype, row.device)
    except Refused as e:
        pytest.skip(str(e))
    x = built.to_native(r["x"])
    if row.pass_ == "fwd":
        forward = built.eager or built.call
        key = (row.work, row.size.label, "fwd", row.dtype)

        def check(out):
            expected = reference(key, lambda: [compose.reference_forward(model, r["x"])])
            return max_error([built.to_numpy(out)], expected)[0], None

        what = f"voices.build({row.impl!r}, the one-layer {row.work} description).call(x)"
        return Prepared(compile_for(mod, lambda: forward(x), row.mode, row.device, row.framework), check, what)
    if built.step is None or built.vjp is None:
        pytest.skip(f"{row.impl} builds no gradients for {row.work}")
    dy = built.native_dy(r["dy"])
    key = (row.work, row.size.label, "grads", row.dtype)

    def ref_grads():
        dx, g = compose.reference_vjp(model, r["x"], r["dy"])
        return [dx, *g.values()]

    def check(_out):
        dx, g = built.vjp(r["x"], r["dy"])
        err, where = max_error([dx, *g.values()], reference(key, ref_grads), ["dx", *(f"{k[1]}" for k in g)])
        return err, f"dx and every weight's gradient from the same build's vjp (untimed); worst: {where}"

    what = f"voices.build({row.impl!r}, the one-layer {row.work} description).step(x, dy)"
    return Prepared(compile_for(mod, lambda: built.step(x, dy), row.mode, row.device, row.framework), check, what)


def _numpy_train_step(row: Row, a: dict[str, Any]):
    state = {"p": a["params"].map(lambda v: np.asarray(v, dtype=row.dtype).copy())}
    state["adam"] = numpy_train.adam_init(numpy_train.leaves(state["p"]))
    x, onehot = a["x"].astype(row.dtype), a["onehot"].astype(row.dtype)

    def fn():
        loss, g = _model_loss_and_grads(row.work, state["p"], x, onehot, row.variant)
        arrays, state["adam"] = numpy_train.adam_update(numpy_train.leaves(state["p"]), numpy_train.leaves(g),
                                                        state["adam"], flavour="keras")  # fmt: skip
        state["p"] = numpy_train.rebuild(state["p"], arrays)
        return loss, g

    def observe(out):
        return {"loss": np.asarray(out[0]), "grads": out[1], "params": state["p"]}

    what = "numpy_train loss_and_grads + adam_update (keras flavour)"
    return fn, observe, what, {"flavour": "keras", "eps": numpy_train.DEFAULT_EPS["keras"], "lr": 1e-3}


def tol_work(row: Row) -> str:
    """The tolerance table's `work` key: the contract function (gru, gru_vjp ...) or the model's name."""
    return OP_FUNCTIONS.get((row.work, row.pass_), row.work)
