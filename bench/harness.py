"""The benchmark harness: runs one row (or ceiling) with pytest-benchmark and fills its extra_info.

For every row, in this order:
  1. seeded float64 inputs; the implementation's native copies (conversion outside the timed call);
  2. the callable: the contract function (NumPy, torch, TensorFlow from primitives, built-in model
     forwards) or a prepared one from bench/native_*.py (built-in layers, model gradients, optimiser
     steps), given to the implementation's compile(fn, mode);
  3. a first call (compilation, tracing) timed apart as compile_s, whose output is compared with the
     NumPy float64 reference on the same dtype-rounded inputs (tolerance from impls/tolerance.py);
  4. warm-up calls, then benchmark.pedantic over `timed` = one call + the implementation's
     synchronize(device), rounds sized to the profile's time budget;
  5. on cuda, rows of 0.5 ms or more (by the warm-up) also record CUDA events around each of the same timed
     calls (cuda_event_median_s, cuda_event_ratio: the 5% fidelity bar applies from 1 ms);
  6. a float64/float32 row over its tolerance fails, a tf32/bfloat16/float16 one is flagged (a warning);
     either way it is in the JSON with err_ok false.
Everything framework-specific goes through the implementation modules or bench/native_*.py.
"""

from __future__ import annotations

import importlib
import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from statistics import median
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from impls import BUILTINS, BackendUnavailable, backend, frameworks, numpy_train
from impls import numpy_impl as ref
from impls.inputs import round_to, to_native
from impls.tolerance import CALIBRATED_FACTOR, CALIBRATED_WORKS, calibrated_tolerance, error_stats, tolerance

from . import flops
from .cases import Ceiling, Row
from .works import OP_FUNCTIONS, make_inputs, op_call, seed_of, truncate_gru

SCHEMA = 1
STRICT = ("float64", "float32")
"""Precisions whose rows fail when over tolerance. tf32, bfloat16 and float16 rows over it are flagged
(err_ok false in the JSON, and a BenchErrorFlag warning): their table entries were set for forward passes,
and a gradient through relu or max-pool can switch branch when its input rounds to 8 or 11 bits."""


class BenchErrorFlag(UserWarning):
    """A reduced-precision row whose error is over its tolerance (recorded, not failed)."""

REF_FLOP_BUDGET = 2e10
"""Largest reference (NumPy float64) computed in full, in FLOPs (~0.2-0.5 s here). Longer GRU rows are
checked on their first timesteps, with a separate untimed call of the implementation (err_note says so)."""
CUDA_EVENT_MIN_S = 1e-3
"""The fidelity bar holds for calls of 1 ms or more; events are recorded from half that (by the warm-up median),
so a row whose timed median lands just above 1 ms still has them."""


@dataclass(frozen=True)
class Timing:
    min_rounds: int
    max_rounds: int
    max_time: float  # seconds of timed calls per row; rounds = max_time / one call, clamped
    warmup: int  # warm-up calls after the first (compiling) call, at least
    warmup_time: float  # and at least this many seconds of them


TIMING = {
    "quick": Timing(min_rounds=5, max_rounds=2000, max_time=0.25, warmup=2, warmup_time=0.05),
    "full": Timing(min_rounds=10, max_rounds=10000, max_time=1.0, warmup=3, warmup_time=0.2),
    "deepbench": Timing(min_rounds=3, max_rounds=500, max_time=1.0, warmup=1, warmup_time=0.0),
}
"""Per profile; --bench-max-time and --bench-min-rounds override max_time and min_rounds."""


@dataclass(frozen=True)
class Options:
    profile: str
    timing: Timing
    cuda_events: bool = True


# --------------------------------------------------------------------------- loading


def load(impl: str) -> ModuleType:
    try:
        return backend(impl)
    except BackendUnavailable as e:
        pytest.skip(str(e))


def native(framework: str) -> ModuleType:
    """bench.native_torch for torch rows, bench.native_tf for tensorflow/keras rows (skip if missing)."""
    name = "bench.native_torch" if framework == "torch" else "bench.native_tf"
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
    if row.impl in BUILTINS:
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
        tol_work = _tol_work(row)
        if err <= tolerance(row.precision, tol_work) or row.precision != "float32" or tol_work not in CALIBRATED_WORKS:
            return err, note
        # over the table: is float32 itself this far off on these inputs? (NumPy float32, same inputs, untimed)
        own = [to_np(ref, o) for o in call(ref, to_native(ref, a_ref, "float32", "cpu"))]
        own_err = max_error(own, expected)[0]
        bar = calibrated_tolerance(row.precision, tol_work, own_err)
        note = (f"{note + '; ' if note else ''}over the table's {tolerance(row.precision, tol_work):.0e}: NumPy's own "
                f"float32 error on these inputs is {own_err:.2e}, so the bar is {CALIBRATED_FACTOR:g}x that")  # fmt: skip
        return err, note, bool(err <= bar), {"numpy_float32_err": float(own_err), "calibrated_tolerance": bar}

    return Prepared(compiled, check, what)


def prepare_model(row: Row, mod: ModuleType) -> Prepared:
    a = inputs(row)
    r = round_to(a, row.dtype)
    gru_model = row.work == "seed_gru_model"
    grads_key = (row.work, row.size.label, row.variant, "grads", row.dtype)

    def ref_grads():
        return reference(grads_key, lambda: _flat_grads(*_model_loss_and_grads(row.work, r["params"], r["x"], r["onehot"], row.variant)))

    if row.pass_ == "fwd":
        build = mod.seed_gru_model if gru_model else mod.seed_cnn_model
        forward = build(a["params"], row.variant, dtype=row.dtype, device=row.device) if gru_model else build(
            a["params"], dtype=row.dtype, device=row.device)  # fmt: skip
        x = mod.asarray(a["x"], row.dtype, row.device)
        fn = lambda: forward(x)
        key = (row.work, row.size.label, row.variant, "fwd", row.dtype)

        def check(out):
            model = (ref.seed_gru_model(r["params"], row.variant) if gru_model else ref.seed_cnn_model(r["params"]))
            expected = reference(key, lambda: [model(r["x"])])
            return max_error([to_np(mod, out)], expected)[0], None

        what = f"{row.impl}.{build.__name__}(params)(x), the model built outside"
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


# --------------------------------------------------------------------------- timing


def _context(framework: str, precision: str, device: str):
    if framework == "torch":
        return native("torch").precision(precision, device)
    if framework in ("tensorflow", "keras"):
        return native("tensorflow").precision(precision, device)
    return nullcontext()


def _sync(mod: ModuleType, device: str, info: dict[str, Any]) -> Callable[[], None]:
    """The implementation's synchronize(device), called inside the timed callable; recorded in info["sync"]."""
    framework = getattr(mod, "FRAMEWORK", "numpy")
    if framework == "numpy":
        info["sync"] = "none (NumPy is synchronous)"
        return lambda: None
    if framework in ("tensorflow", "keras") and not native("tensorflow").needs_sync(device):
        info["sync"] = "none (TensorFlow runs synchronously on the CPU; sync_devices would cost ~50 us a call)"
        return lambda: None
    info["sync"] = f"{mod.__name__}.synchronize({device!r})"
    return lambda: mod.synchronize(device)


def measure(benchmark, fn: Callable[[], Any], sync: Callable[[], None], opts: Options, device: str,
            info: dict[str, Any], check: Callable[[Any], tuple] | None) -> dict[str, Any]:  # fmt: skip
    """First call (compile), error check, warm-up, then benchmark.pedantic(one call + synchronize)."""
    t0 = time.perf_counter()
    out = fn()
    sync()
    info["compile_s"] = time.perf_counter() - t0
    if check is not None:
        err, note, *more = check(out)  # (err, note) or (err, note, ok, extra fields)
        info["max_rel_err"] = float(err)  # inf / nan stay floats (JSON Infinity / NaN; err_ok is false)
        info["err_ok"] = bool(more[0]) if more else bool(err <= info["tolerance"])
        if more:
            info.update(more[1])
        if note:
            info["err_note"] = note
    del out
    events = None

    def timed():
        fn()
        sync()

    rounds, warm = 1, []
    if not benchmark.disabled:
        t = opts.timing
        start = time.perf_counter()
        while len(warm) < t.warmup or time.perf_counter() - start < t.warmup_time:
            t1 = time.perf_counter()
            timed()
            warm.append(time.perf_counter() - t1)
        one = median(warm) if warm else info["compile_s"]
        rounds = int(min(t.max_rounds, max(t.min_rounds, math.ceil(t.max_time / max(one, 1e-7)))))
        if device == "cuda" and opts.cuda_events and one >= CUDA_EVENT_MIN_S / 2:
            events = native("torch").EventTimer(rounds)
            call = events.wrap(fn)

            def timed():  # the same call, between two CUDA events (a few us, < 1% of a 0.5 ms call)
                call()
                sync()

    info["warmup_calls"], info["rounds"] = len(warm), rounds
    benchmark.extra_info.update(info)
    benchmark.pedantic(timed, rounds=rounds, warmup_rounds=0, iterations=1)
    if events is not None:
        ev = events.median_s()
        benchmark.extra_info.update(cuda_event_median_s=ev, cuda_event_ratio=benchmark.stats.stats.median / ev,
                                    cuda_event_rounds=events.used)  # fmt: skip
    return info


def row_info(row: Row, mod: ModuleType) -> dict[str, Any]:
    d = row.size.dims
    convention = row.convention if row.work != "max_pool2d" else "model"
    info = {
        "schema": SCHEMA, "kind": "row", "impl": row.impl, "framework": row.framework,
        "framework_version": version(row.framework), "mode": row.mode, "device": row.device, "dtype": row.dtype,
        "precision": row.precision, "work": row.work, "variant": row.variant, "pass": row.pass_,
        "shape": row.size.label, "sizes": d, "sweep": row.size.sweep, "profile": row.profile,
        "flops": flops.row_flops(row.work, d, row.pass_, convention if convention == "deepbench" else "gemm"),
        "flop_convention": convention, "flops_gemm": flops.row_flops(row.work, d, row.pass_),
        "bytes": flops.row_bytes(row.work, d, row.pass_, np.dtype(row.dtype if row.dtype != "bfloat16" else "float16").itemsize),
        "bound": "memory" if row.work == "max_pool2d" else "compute",
        "max_rel_err": None, "tolerance": tolerance(row.precision, _tol_work(row)), "err_ok": None,
        "reference": "numpy float64, same dtype-rounded inputs", "id": row.id,
    }  # fmt: skip
    if row.framework == "keras":
        info["backend_version"] = f"tensorflow {frameworks.version('tensorflow')}"
    if row.impl == "numpy" and row.precision == "float64":
        info["err_note"] = "the reference itself (same code, same inputs): 0 by construction"
    return info


def _tol_work(row: Row) -> str:
    """The tolerance table's `work` key: the contract function (gru, gru_vjp ...) or the model's name."""
    return OP_FUNCTIONS.get((row.work, row.pass_), row.work)


def run_row(benchmark, row: Row, opts: Options) -> None:
    mod = load(row.impl)
    if row.impl == "numpy" and row.device != "cpu":
        pytest.skip("NumPy runs on the CPU only")
    if row.framework in ("tensorflow", "keras") and row.device == "cuda" and not native("tensorflow").gpu_available():
        pytest.skip("TensorFlow sees no GPU here (it would place the 'cuda' row on the CPU silently)")
    info = row_info(row, mod)
    with ExitStack() as stack:
        stack.enter_context(_context(row.framework, row.precision, row.device))
        prep = (prepare_op if row.work in ("gru", "conv2d", "max_pool2d", "dense") else prepare_model)(row, mod)
        info["timed"] = prep.what
        try:
            measure(benchmark, prep.fn, _sync(mod, row.device, info), opts, row.device, info, prep.check)
        except Exception as e:
            if row.mode == "torch.compile" and "compile_s" not in info:
                pytest.skip(f"torch.compile failed on this machine: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
            raise
    if info["err_ok"]:
        return
    upd = f"; update_err {info['update_err']:.2e} (allowed {info['update_tolerance']:.1e})" if "update_err" in info else ""
    if "calibrated_tolerance" in info:
        upd += f"; calibrated bar {info['calibrated_tolerance']:.1e} (NumPy float32: {info['numpy_float32_err']:.2e})"
    msg = (f"{row.id}: relative error {info['max_rel_err']} vs NumPy float64 (allowed {info['tolerance']:.1e} for "
           f"{row.precision}){upd}: {info.get('err_note', '')}")  # fmt: skip
    if row.precision in STRICT:
        raise AssertionError(msg)
    warnings.warn(f"flagged (err_ok false in the JSON): {msg}", BenchErrorFlag, stacklevel=1)


# --------------------------------------------------------------------------- ceilings and the harness overhead


def run_ceiling(benchmark, c: Ceiling, opts: Options) -> None:
    seed = seed_of(c.id)
    d = c.size.dims
    info: dict[str, Any] = {
        "schema": SCHEMA, "kind": "ceiling", "impl": c.lib, "framework": c.lib, "framework_version": version(c.lib),
        "mode": "numpy" if c.lib == "numpy" else "eager", "device": c.device, "dtype": c.dtype,
        "precision": c.precision, "work": c.work, "variant": None, "pass": "fwd", "shape": c.size.label, "sizes": d,
        "sweep": "ceiling", "profile": c.profile, "flops": flops.row_flops(c.work, d, "fwd"),
        "flop_convention": "gemm", "flops_gemm": flops.row_flops(c.work, d, "fwd"),
        "bytes": 2 * d["N"] * 4 if c.work == "copy" else flops.row_bytes(c.work, d, "fwd", np.dtype(c.dtype if c.dtype != "bfloat16" else "float16").itemsize),
        "bound": {"matmul": "compute", "copy": "memory", "empty": "overhead"}[c.work],
        "max_rel_err": None, "tolerance": None, "err_ok": None, "id": c.id,
    }  # fmt: skip
    if c.work == "copy":
        info["err_note"] = "bytes = read + write of the buffer"
    mod = None if c.lib == "numpy" else load(c.lib)
    if c.work == "empty":
        if c.lib == "tensorflow" and c.device == "cuda" and not native("tensorflow").gpu_available():
            pytest.skip("TensorFlow sees no GPU here")
        sync = _sync(ref if mod is None else mod, c.device, info)
        info["timed"] = "an empty Python callable, then the sync its framework's rows use: the harness's own cost"
        info["err_note"] = "no output to check"
        measure(benchmark, lambda: None, sync, opts, c.device, info, None)
        return
    info["tolerance"] = tolerance(c.precision, c.work)
    with _context(c.lib, c.precision, c.device):
        if c.lib == "numpy":
            fn, probe = _numpy_ceiling(c.work, d, c.dtype, seed)
        else:
            fn, probe = getattr(native("torch"), c.work)(d["M"] if c.work == "matmul" else d["N"], c.dtype, c.device, seed)

        def check(_):
            if c.work == "matmul":
                out64, a64, b64 = probe()
                info["err_note"] = "checked on the first 64 rows of the product"
                return max_error([out64], [a64 @ b64])[0], info["err_note"]
            dst, src = probe()  # a copy is exact: equal, or wrong
            return (0.0 if np.array_equal(dst, src) else float("inf")), info["err_note"]

        info["timed"] = {"matmul": f"{c.lib} matmul into a preallocated output", "copy": f"{c.lib} copy into a preallocated buffer"}[c.work]
        measure(benchmark, fn, _sync(ref if mod is None else mod, c.device, info), opts, c.device, info, check)
    assert info["err_ok"], f"{c.id}: error {info['max_rel_err']} over {info['tolerance']}"


def _numpy_ceiling(work: str, d: dict[str, int], dtype: str, seed: int):
    g = np.random.default_rng(seed)
    if work == "matmul":
        n = d["M"]
        a, b = g.uniform(-1, 1, (n, n)).astype(dtype), g.uniform(-1, 1, (n, n)).astype(dtype)
        out = np.empty((n, n), dtype=dtype)
        fn = lambda: np.matmul(a, b, out=out)
        return fn, lambda: (out[:64].astype(np.float64), a[:64].astype(np.float64), b.astype(np.float64))
    src = g.random(d["N"], dtype=np.float32).astype(dtype, copy=False)
    dst = np.empty_like(src)
    return (lambda: np.copyto(dst, src)), (lambda: (dst, src))
