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
            **{name: frameworks.version(name) for name in ("torch", "tensorflow", "keras")},
        },
        "gpu": gpu,
        "profile": profile,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "TF_NUM_INTRAOP_THREADS", "CUDA_VISIBLE_DEVICES") if k in os.environ},
    }  # fmt: skip
