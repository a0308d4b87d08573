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
Steps 1-3 are bench/prepare.py. Everything framework-specific goes through the implementation modules or
bench/native_*.py.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from statistics import median
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from impls import frameworks
from impls import numpy_impl as ref
from impls.tolerance import tolerance

from . import flops
from .cases import Ceiling, Row
from .prepare import load, max_error, native, prepare_model, prepare_op, tol_work, version
from .works import seed_of

SCHEMA = 1
STRICT = ("float64", "float32")
"""Precisions whose rows fail when over tolerance. tf32, bfloat16 and float16 rows over it are flagged
(err_ok false in the JSON, and a BenchErrorFlag warning): their table entries were set for forward passes,
and a gradient through relu or max-pool can switch branch when its input rounds to 8 or 11 bits."""


class BenchErrorFlag(UserWarning):
    """A reduced-precision row whose error is over its tolerance (recorded, not failed)."""


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
        "max_rel_err": None, "tolerance": tolerance(row.precision, tol_work(row)), "err_ok": None,
        "reference": "numpy float64, same dtype-rounded inputs", "id": row.id,
    }  # fmt: skip
    if row.framework == "keras":
        info["backend_version"] = f"tensorflow {frameworks.version('tensorflow')}"
    if row.impl == "numpy" and row.precision == "float64":
        info["err_note"] = "the reference itself (same code, same inputs): 0 by construction"
    return info


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
