"""The benchmark's ceilings (a large matmul per precision, a memory copy) and the harness's own overhead (an empty
callable + synchronize), part of every profile. Re-exported by bench/cases.py."""

from __future__ import annotations

from dataclasses import dataclass

from impls import SHORT

from .precisions import CPU_PRECISIONS, CUDA_PRECISIONS, STORAGE
from .sizes import Size


@dataclass(frozen=True)
class Ceiling:
    lib: str  # "numpy" or "torch"
    work: str  # "matmul", "copy" or "empty" (the harness's own overhead: an empty callable + synchronize)
    device: str
    precision: str
    size: Size
    profile: str

    @property
    def dtype(self) -> str:
        return STORAGE[self.precision]

    @property
    def id(self) -> str:
        kind = "overhead" if self.work == "empty" else "ceiling"
        return "-".join([kind, self.work, SHORT.get(self.lib, self.lib), self.device, self.precision, self.size.token])

    @property
    def group(self) -> str:
        """A ceiling is timed alone: a group of one."""
        return self.id


def _matmul_size(n: int) -> Size:
    return Size("matmul", f"M{n} N{n} K{n}", (("M", n), ("N", n), ("K", n)), "ceiling")


def _copy_size(mib: int, itemsize: int = 4) -> Size:
    return Size("copy", f"{mib}MiB", (("N", mib * 2**20 // itemsize),), "ceiling")


def ceilings(profile: str, devices: tuple[str, ...]) -> list[Ceiling]:
    """A large matmul per precision per device (NumPy and torch on cpu, torch on cuda), a memory copy
    per device, and the empty-callable overhead row per framework and device."""
    n_cpu = 2048 if profile == "full" else 1024
    out = [Ceiling("numpy", "matmul", "cpu", p, _matmul_size(n_cpu), profile) for p in CPU_PRECISIONS]
    out += [Ceiling("torch", "matmul", "cpu", p, _matmul_size(n_cpu), profile) for p in CPU_PRECISIONS]
    out += [Ceiling(lib, "copy", "cpu", "float32", _copy_size(256 if profile == "full" else 64), profile)
            for lib in ("numpy", "torch")]  # fmt: skip
    empty = Size("empty", "call", (), "ceiling")
    out += [Ceiling(lib, "empty", "cpu", "float32", empty, profile) for lib in ("numpy", "torch", "tensorflow")]
    if "cuda" in devices:
        out += [Ceiling("torch", "matmul", "cuda", p, _matmul_size(8192), profile) for p in CUDA_PRECISIONS["torch"]]
        out += [Ceiling("torch", "copy", "cuda", "float32", _copy_size(1024), profile)]
        out += [Ceiling(lib, "empty", "cuda", "float32", empty, profile) for lib in ("torch", "tensorflow")]
    return out
