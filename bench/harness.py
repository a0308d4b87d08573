"""The benchmark harness: prepares each row (or ceiling) as a member of its comparison group and
turns the group's timing into each row's pytest-benchmark entry.

For every member, in this order (bench/prepare.py does steps 1-2):
  1. seeded float64 inputs; the implementation's native copies (conversion outside the timed call);
  2. the callable: the contract function (NumPy, torch, TensorFlow from primitives, built-in model
     forwards) or a prepared one from bench/native_*.py (built-in layers, model gradients, optimiser
     steps), given to the implementation's compile(fn, mode);
  3. a first call (compilation, tracing) timed apart as compile_s, whose output is compared with the
     NumPy float64 reference on the same dtype-rounded inputs (tolerance from impls/contract/tolerance.py);
  4. the timed unit: one call + the implementation's synchronize(device) (on cuda, for calls under
     SPIN_MAX_S, a spin on an event's query() instead, unless --cuda-wait says otherwise).
bench/groups.py then times every member of a group in interleaved blocks (bench/blocks.py) and computes
the paired ratios (bench/paired.py); `run_row` replays a row's share into its own benchmark fixture, and
a float64/float32 row over its tolerance fails, a tf32/bfloat16/float16 one is flagged (a warning);
either way it is in the JSON with err_ok false.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from statistics import median
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import tolerance
from impls.primitives import numpy_impl as ref

from . import flops, seqtask
from .blocks import Member, Timing
from .cases import LAYER_WORKS, SEQ_WORKS, Ceiling, Row
from .prepare import load, max_error, native, prepare_layer, prepare_model, prepare_op, tol_work, version
from .works import seed_of

SCHEMA = 1
STRICT = ("float64", "float32")
"""Precisions whose rows fail when over tolerance. tf32, bfloat16 and float16 rows over it are flagged
(err_ok false in the JSON, and a BenchErrorFlag warning): their table entries were set for forward passes,
and a gradient through relu or max-pool can switch branch when its input rounds to 8 or 11 bits."""


class BenchErrorFlag(UserWarning):
    """A reduced-precision row whose error is over its tolerance (recorded, not failed)."""


CUDA_EVENT_MIN_S = 1e-3
"""The fidelity bar holds for calls of 1 ms or more; events are recorded from half that (by the first calls),
so a row whose timed median lands just above 1 ms still has them."""
SPIN_MAX_S = 3e-3
"""cuda calls shorter than this wait for the GPU by spinning on an event's query() (--cuda-wait auto): the
H100 runs read 50-190 us more than CUDA events on 1-3 ms calls waited on with torch.cuda.synchronize()."""

TIMING = {
    "quick": Timing(slot=0.02, min_blocks=15, max_blocks=30, group_time=3.0, warmup=2, warmup_time=0.1, epochs=5),
    "full": Timing(slot=0.02, min_blocks=16, max_blocks=40, group_time=6.0, warmup=3, warmup_time=0.2, epochs=4),
    "deepbench": Timing(slot=0.02, min_blocks=5, max_blocks=20, group_time=4.0, warmup=1, warmup_time=0.0),
}
"""Per profile (bench/blocks.py says what each field does); --bench-slot, --bench-group-time, --bench-blocks
and --bench-epochs override them. deepbench keeps one epoch: its groups' inputs (up to ~0.5 GB each on cuda)
are not all held at once, so each group is timed alone when its first row runs."""
THREADS = {"quick": 1, "full": 1, "deepbench": None}
"""Each profile's default thread policy (None: every framework's own default, the machine's cores);
--bench-threads N or `default` overrides it. The CPU profiles run one thread per framework, pinned to one
CPU: on the project's 2-vCPU VM that gave median 95% half-widths of 1.1-2.7% against 15% with both
threads (reports/README.md has the runs). deepbench, mostly a GPU profile, keeps the frameworks' own."""


@dataclass(frozen=True)
class Options:
    profile: str
    timing: Timing
    cuda_events: bool = True
    blocks: int | None = None  # --bench-blocks: a fixed number of blocks per group
    enabled: bool = True  # False under --benchmark-disable: each member is prepared and checked, not timed
    cuda_wait: str = "auto"  # auto | sync | spin
    threads: int | None = None  # the thread policy the run applied (None: frameworks' defaults)


# --------------------------------------------------------------------------- one member of a group


def context(framework: str, precision: str, device: str):
    """The framework's precision switches for the row (TF32 on or off on cuda); nothing for NumPy."""
    if framework == "torch":
        return native("torch").precision(precision, device)
    if framework in ("tensorflow", "keras"):
        return native("tensorflow").precision(precision, device)
    return nullcontext()


def _sync(mod: ModuleType, device: str, info: dict[str, Any]) -> Callable[[], None]:
    """The implementation's synchronize(device), called inside the timed unit; recorded in info["sync"]."""
    framework = getattr(mod, "FRAMEWORK", "numpy")
    if framework == "numpy":
        info["sync"] = "none (NumPy is synchronous)"
        return lambda: None
    if framework in ("jax", "flax"):
        info["sync"] = "jax.block_until_ready on the call's outputs, inside the call (the module's compile)"
        return lambda: None
    if framework == "onnxruntime":
        info["sync"] = "none (InferenceSession.run returns its outputs on the host)"
        return lambda: None
    if framework in ("tensorflow", "keras") and not native("tensorflow").needs_sync(device):
        info["sync"] = "none (TensorFlow runs synchronously on the CPU; sync_devices would cost ~50 us a call)"
        return lambda: None
    info["sync"] = f"{mod.__name__}.synchronize({device!r})"
    return lambda: mod.synchronize(device)


def _wait(mod: ModuleType, fn: Callable[[], Any], sync: Callable[[], None], device: str, opts: Options,
          info: dict[str, Any]) -> Callable[[], None]:  # fmt: skip
    """On cuda with torch, calls under SPIN_MAX_S (three timed calls decide) wait by spinning on an event's
    query() instead of torch.cuda.synchronize(), per --cuda-wait; info["sync"] says which."""
    if device != "cuda" or getattr(mod, "FRAMEWORK", None) != "torch" or opts.cuda_wait == "sync":
        return sync
    if opts.cuda_wait == "auto":
        t = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            sync()
            t.append(time.perf_counter() - t0)
        if median(t) >= SPIN_MAX_S:
            return sync
    spin = native("torch").SpinWait()
    info["sync"] = "torch.cuda.Event.record() + spin on query() (calls under 3 ms; --cuda-wait)"
    return spin


def _first_call(fn: Callable[[], Any], sync: Callable[[], None], info: dict[str, Any],
                check: Callable[[Any], tuple] | None) -> None:  # fmt: skip
    """The first call (compilation, tracing) timed apart as compile_s, and its output judged."""
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


@dataclass
class Entry:
    """One prepared member of a comparison group: its timed unit, its extra_info so far, and the pieces
    bench/groups.py wraps in CUDA events (the call apart from its wait)."""

    member: Member
    info: dict[str, Any]
    fn: Callable[[], Any]
    wait: Callable[[], None]
    device: str


def _entry(id_: str, mod: ModuleType, fn: Callable[[], Any], device: str, opts: Options, info: dict[str, Any],
           check: Callable[[Any], tuple] | None) -> Entry:  # fmt: skip
    sync = _sync(mod, device, info)
    _first_call(fn, sync, info, check)
    wait = _wait(mod, fn, sync, device, opts, info) if opts.enabled else sync

    def unit():
        fn()
        wait()

    return Entry(Member(id_, unit), info, fn, wait, device)


def row_info(row: Row, mod: ModuleType) -> dict[str, Any]:
    d = row.size.dims
    convention = row.convention if row.work != "max_pool2d" else "model"
    item = np.dtype(row.dtype if row.dtype != "bfloat16" else "float16").itemsize
    if row.work in SEQ_WORKS:  # counted from the architecture's description (bench/seqtask.py)
        fl = gemm = seqtask.row_flops(row.variant, row.size.sizes, row.pass_)
        nbytes = seqtask.row_bytes(row.variant, row.size.sizes, row.pass_, item)
    else:
        fl = flops.row_flops(row.work, d, row.pass_, convention if convention == "deepbench" else "gemm")
        gemm, nbytes = flops.row_flops(row.work, d, row.pass_), flops.row_bytes(row.work, d, row.pass_, item)
    info = {
        "schema": SCHEMA, "kind": "row", "impl": row.impl, "framework": row.framework,
        "framework_version": version(row.framework), "mode": row.mode, "device": row.device, "dtype": row.dtype,
        "precision": row.precision, "work": row.work, "variant": row.variant, "pass": row.pass_,
        "shape": row.size.label, "sizes": d, "sweep": row.size.sweep, "profile": row.profile,
        "flops": fl, "flop_convention": convention, "flops_gemm": gemm, "bytes": nbytes,
        "bound": "memory" if row.work == "max_pool2d" else "compute",
        "max_rel_err": None, "tolerance": tolerance(row.precision, tol_work(row)), "err_ok": None,
        "reference": "numpy float64, same dtype-rounded inputs", "id": row.id,
    }  # fmt: skip
    if row.work in SEQ_WORKS:
        info["params"] = seqtask.param_counts(row.size.sizes)  # canonical counts of the three architectures
    if row.framework == "keras":
        info["backend_version"] = f"tensorflow {frameworks.version('tensorflow')}"
    if row.impl == "numpy" and row.precision == "float64":
        info["err_note"] = "the reference itself (same code, same inputs): 0 by construction"
    return info


def cuda_missing(framework: str) -> str | None:
    """Why `framework` cannot run a "cuda" row here, or None (torch decides whether there are cuda rows at all)."""
    if framework in ("tensorflow", "keras") and not native("tensorflow").gpu_available():
        return "TensorFlow sees no GPU here (it would place the 'cuda' row on the CPU silently)"
    if framework in ("jax", "flax"):
        try:
            frameworks.load("jax").devices("gpu")
        except RuntimeError as e:
            return f"JAX sees no GPU here (this jaxlib has no CUDA backend: {str(e).splitlines()[0][:200]})"
    if framework == "onnxruntime":
        providers = frameworks.load("onnxruntime").get_available_providers()
        if "CUDAExecutionProvider" not in providers:
            return f"this onnxruntime has no CUDAExecutionProvider (onnxruntime-gpu is not installed; it has {providers})"
    return None


def prepare_row(row: Row, opts: Options) -> Entry:
    """The row as a member of its group: skips with the reason where it cannot run; the caller has
    entered the row's precision context (`context`)."""
    mod = load(row.impl)
    if row.impl == "numpy" and row.device != "cpu":
        pytest.skip("NumPy runs on the CPU only")
    if row.device == "cuda" and (why := cuda_missing(row.framework)):
        pytest.skip(why)
    info = row_info(row, mod)
    if row.work in SEQ_WORKS:
        from .seqtrain import prepare_seq  # imports the ports' modules: only where a run has these rows

        prep = prepare_seq(row, mod)
    else:
        prep = (prepare_op if row.work in ("gru", "conv2d", "max_pool2d", "dense")
                else prepare_layer if row.work in LAYER_WORKS else prepare_model)(row, mod)  # fmt: skip
    info["timed"] = prep.what
    try:
        return _entry(row.id, mod, prep.fn, row.device, opts, info, prep.check)
    except Exception as e:
        if row.mode == "torch.compile" and "compile_s" not in info:
            pytest.skip(f"torch.compile failed on this machine: {type(e).__name__}: {str(e).splitlines()[0][:300]}")
        raise


def judge(row: Row, info: dict[str, Any]) -> None:
    """A strict-precision row over its bar fails; a reduced-precision one is flagged."""
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


def prepare_ceiling(c: Ceiling, opts: Options) -> Entry:
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
    mod = ref if c.lib == "numpy" else load(c.lib)
    if c.work == "empty":
        if c.device == "cuda" and (why := cuda_missing(c.lib)):
            pytest.skip(why)
        info["timed"] = "an empty Python callable, then the sync its framework's rows use: the harness's own cost"
        info["err_note"] = "no output to check"
        return _entry(c.id, mod, lambda: None, c.device, opts, info, None)
    info["tolerance"] = tolerance(c.precision, c.work)
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
    entry = _entry(c.id, mod, fn, c.device, opts, info, check)
    assert info["err_ok"], f"{c.id}: error {info['max_rel_err']} over {info['tolerance']}"
    return entry


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
