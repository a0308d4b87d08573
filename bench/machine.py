"""Facts about the machine a benchmark ran on, for machine_info["nnparity"] (see docs/DESIGN.md).

CPU model and cores from /proc/cpuinfo, BLAS from threadpoolctl (the libraries actually loaded and
their thread counts) and numpy.show_config, framework versions through impls.frameworks.version, the
GPU through bench/native_torch.py. Every probe degrades to None instead of failing the run.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import numpy as np

from impls import BackendUnavailable, frameworks


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def cores() -> int | None:
    """Physical cores: distinct (physical id, core id) pairs in /proc/cpuinfo."""
    try:
        pairs, phys = set(), "0"
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    pairs.add((phys, value.strip()))
        return len(pairs) or os.cpu_count()
    except OSError:
        return os.cpu_count()


def blas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        out["numpy_build"] = {k: cfg.get(k) for k in ("name", "version", "openblas configuration") if k in cfg}
    except (KeyError, TypeError) as e:  # a probe, never fatal: say what it could not read
        out["numpy_build"] = f"unavailable: {type(e).__name__}: {e}"
    try:
        import threadpoolctl

        out["loaded"] = [
            {k: lib.get(k) for k in ("internal_api", "version", "num_threads", "threading_layer", "architecture", "prefix")}
            for lib in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        out["loaded"] = None
    return out


def _torch_facts() -> tuple[dict[str, Any] | None, int | None]:
    try:
        from . import native_torch
    except BackendUnavailable:
        return None, None
    return native_torch.gpu_facts(), native_torch.threads()


def facts(profile: str | None = None) -> dict[str, Any]:
    gpu, torch_threads = _torch_facts()
    return {
        "cpu_model": cpu_model(),
        "cores": cores(),
        "threads": os.cpu_count(),
        "threads_limit": frameworks.threads(),  # --bench-threads, None = each framework's default
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch_threads,
        "blas": blas(),
        "versions": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            **{name: frameworks.version(name) for name in ("torch", "tensorflow", "keras", "jax", "flax", "onnxruntime")},
        },
        "gpu": gpu,
        "profile": profile,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "TF_NUM_INTRAOP_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ},
    }  # fmt: skip


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
TRIM_THRESHOLD = 2**30


def steady_malloc() -> dict[str, Any]:
    """Fix glibc malloc's mmap and trim thresholds for this process (mallopt), so that blocks of up to 32 MiB
    come from the heap and freed memory stays there. glibc's default adapts the mmap threshold to the sizes
    freed so far, so whether a framework's per-call temporaries are fresh, page-faulting mmaps or reused heap
    depends on the process's history: measured here, NumPy and torch.nn rows of the seed CNN's training step
    ran 10-20% slower with 2-3x the block-to-block spread in some processes and not in others. Returns what
    was set, or why nothing was (not glibc)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError, TypeError) as e:
        return {"policy": "default", "why": f"mallopt unavailable ({type(e).__name__}: {e})"}
    if not ok:
        return {"policy": "default", "why": f"{name}: mallopt refused the thresholds"}
    return {"policy": "steady", "mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD, "libc": name}


def pin(cpu: int | None = None) -> dict[str, Any]:
    """Confine this process (and every thread it starts later: framework pools inherit it) to one CPU, the
    highest it may use unless `cpu` says which. With one compute thread per framework, TensorFlow's executor
    thread, torch's and OpenBLAS's pools then share the core the Python thread runs on instead of waking
    each other across cores. Returns what was done, or why not."""
    if not hasattr(os, "sched_setaffinity"):
        return {"policy": "unpinned", "why": "no sched_setaffinity on this system"}
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if cpu is None else cpu
    if cpu not in allowed:
        raise ValueError(f"CPU {cpu} is not one this process may use ({allowed})")
    os.sched_setaffinity(0, {cpu})
    return {"policy": "pinned", "cpu": cpu, "of": allowed}


def label(f: dict[str, Any]) -> str:
    """A machine named from its hardware: CPU model and cores, GPU model and count ("cpu only" without one).
    --bench-label overrides it."""
    cpu = " ".join((f.get("cpu_model") or "unknown CPU").replace("(R)", "").replace("(TM)", "").split())
    cores = f.get("cores")
    out = f"{cpu}, {cores} core{'s' if cores != 1 else ''}" if cores else cpu
    gpu = f.get("gpu") or None
    if gpu:
        n = gpu.get("count") or 1
        out += f", {n}x {gpu.get('name') or 'GPU'}"
    return out


def tree(root) -> dict[str, Any]:
    """The commit the run was made from and the files that differed from it (git status --porcelain), or why
    that could not be read. A published report is re-run from a clean commit; a dirty one says so."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=20, check=False)
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                            text=True, timeout=20, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        return {"commit": None, "dirty": None, "why": f"git unavailable ({type(e).__name__})"}
    if head.returncode != 0 or st.returncode != 0:
        return {"commit": None, "dirty": None, "why": (head.stderr or st.stderr).strip()[:200]}
    files = sorted(line[3:].strip() for line in st.stdout.splitlines() if line.strip())
    return {"commit": head.stdout.strip(), "dirty": files}
