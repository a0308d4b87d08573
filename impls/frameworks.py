"""The one place that imports PyTorch, TensorFlow, Keras, JAX, Flax, ONNX and ONNX Runtime, lazily, with the
environment they need.

Every other module gets a framework through `load(name)`. A framework that is not installed raises
`BackendUnavailable` naming the package and the import error, so callers (and pytest) can skip
with the reason instead of crashing.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from types import ModuleType


class BackendUnavailable(ImportError):
    """A framework or backend cannot be used here; the message says why."""


_THREADS: int | None = None  # set_threads(n): every framework's compute threads, None = its default

_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "onnx": "onnx", "jax": "jax",
             "flax": "flax.linen", "optax": "optax", "onnxruntime": "onnxruntime", "torchvision": "torchvision"}
_VERSION_OF = {"flax": "flax"}  # where a name's __version__ lives, when not in the module load() returns

JAX_CONFIG = {
    "jax_enable_x64": True,  # float64 arrays stay float64 (JAX's default silently makes them float32)
    "jax_default_matmul_precision": "highest",  # float32 matmuls in full float32, never TF32 or bf16 passes
}
"""Set once, here, when JAX is first loaded: the float64 reference bar needs float64 arrays, and the float32 bar
needs float32 products on GPUs too (JAX's default there rounds float32 matmul inputs to TF32)."""


_JAX_CACHE: str | None = None  # use_jax_compile_cache(path): where JAX keeps compiled programs between runs


def use_jax_compile_cache(path: str | os.PathLike) -> None:
    """Keep every program JAX compiles in `path` (JAX's persistent compilation cache), so a later run of the
    same shapes loads it instead of compiling again. Nothing computed changes: an entry's key is the program,
    the compile options, the JAX/XLA version and the device. verify/ and bench/ set it to .cache/jax (measured:
    the JAX and Flax gradient tests take 38.7 s cold, 9.9 s from the cache)."""
    global _JAX_CACHE
    _JAX_CACHE = os.fspath(path)
    if "jax" in sys.modules:
        _configure("jax", sys.modules["jax"])


SYSTEM_ALLOCATOR = {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "1"}
"""TensorFlow's oneDNN CPU allocator pools what it frees and never gives it back to the system (a BFC pool); with
this variable it allocates with malloc, whose freed memory the process can return. Nothing computed changes, only
where the bytes live. Measured on torchvision vgg11 (128.8 M parameters, 3x3x32x32): the tensorflow voice's section
held 3.35 GiB more than before it once finished and collected, 0.69 GiB with the system allocator
(`prefer_system_allocator`)."""


def prefer_system_allocator() -> bool:
    """Ask TensorFlow, before it starts, for the system allocator (SYSTEM_ALLOCATOR), unless the environment already
    says otherwise. False where TensorFlow has already started in this process (its allocator is then fixed). Used
    where no timing is taken (certify --no-bench), so no speed this project reports depends on it."""
    if "tensorflow" in sys.modules:
        return False
    for key, value in SYSTEM_ALLOCATOR.items():
        os.environ.setdefault(key, value)
    return True


def _prepare(name: str) -> None:
    if name in ("tensorflow", "keras"):
        # Before the first TensorFlow import: silence oneDNN/absl start-up lines, keep Keras on TF.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if name in ("jax", "flax", "optax") and _THREADS == 1 and "jax" not in sys.modules:
        # XLA's CPU thread pool is fixed when JAX starts: one thread means no Eigen multi-threading.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").strip()
    if name in ("flax", "optax"):
        load("jax")  # flax computes with jax: its configuration first
    if name == "torchvision":
        load("torch")


_TORCHVISION_OPS = ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_STAND_INS: list = []  # the torch.library fragment below, kept alive while the process runs


def _import_torchvision() -> ModuleType:
    """torchvision, where PyPI's wheel (built against CUDA torch) meets the CPU torch 2.13.0: its C++ ops do not
    load, and `import torchvision` raises "operator torchvision::nms does not exist" while it registers fake
    kernels for them. Only then are nms and qnms declared first, as schemas without kernels (torch.library): the
    classification models never call them, and a detection model that did would raise naming the missing kernel.
    Measured 2026-12-07: every torchvision 0.28 classification model builds and runs with that."""
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as e:
        if "torchvision::nms" not in str(e):
            raise
    for m in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[m]  # the failed import's half-made modules
    torch = sys.modules["torch"]
    lib = torch.library.Library("torchvision", "FRAGMENT")  # the ops' own namespace, declared before torchvision does
    for schema in _TORCHVISION_OPS:
        lib.define(schema)
    _STAND_INS.append(lib)
    return importlib.import_module("torchvision")


@contextlib.contextmanager
def _quiet_native_stderr(name: str):
    """TensorFlow 2.21's C++ start-up writes absl lines to file descriptor 2 before its logging honours
    TF_CPP_MIN_LOG_LEVEL ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on"): with
    that variable at 2 or more (its default here) they are sent to /dev/null while TensorFlow is imported, so a
    command's stderr holds only what the command says. Python's own errors are raised after the descriptor is back."""
    quiet = name in ("tensorflow", "keras") and "tensorflow" not in sys.modules
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    if not quiet or level < 2:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _configure(name: str, module: ModuleType) -> None:
    if name == "jax":
        cache = {"jax_compilation_cache_dir": _JAX_CACHE, "jax_persistent_cache_min_compile_time_secs": 0.0}
        for key, value in {**JAX_CONFIG, **(cache if _JAX_CACHE else {})}.items():
            if getattr(module.config, key) != value:
                module.config.update(key, value)


def load(name: str) -> ModuleType:
    """Import and return the framework `name` ("torch", "tensorflow", "keras", "onnx", "jax", "flax" (its
    flax.linen), "onnxruntime" or "torchvision", whose models are the zoo's)."""
    if name not in _PACKAGES:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(_PACKAGES)}")
    _prepare(name)
    try:
        with _quiet_native_stderr(name):
            module = _import_torchvision() if name == "torchvision" else importlib.import_module(_PACKAGES[name])
    except ImportError as e:  # not installed, or a broken install
        raise BackendUnavailable(f"{name} is not importable here ({type(e).__name__}: {e})") from e
    _configure(name, module)
    if _THREADS is not None:
        _apply_pending(strict=False)
    return module


_APPLIED: set[str] = set()
"""Frameworks whose thread counts have been set to _THREADS since set_threads, or tried and found already running:
each is asked once, so loading a framework again (or another one) never re-applies, or raises, for it."""


def _apply_pending(strict: bool) -> None:
    """Apply _THREADS to each imported framework not asked yet. strict: raise where TensorFlow already started with
    another count (set_threads says so once); a later load() leaves it at what it has."""
    for name in ("torch", "tensorflow"):
        package = _PACKAGES[name]
        if package in sys.modules and name not in _APPLIED:
            _APPLIED.add(name)
            try:
                _apply_threads(name, sys.modules[package], _THREADS)
            except RuntimeError:
                if strict:
                    raise


def _apply_threads(name: str, module: ModuleType, n: int) -> None:
    if name == "torch" and module.get_num_threads() != n:
        module.set_num_threads(n)
    elif name == "tensorflow":
        threading = module.config.threading
        if threading.get_intra_op_parallelism_threads() != n:
            try:  # only possible before TensorFlow's runtime starts
                threading.set_intra_op_parallelism_threads(n)
                threading.set_inter_op_parallelism_threads(n)
            except RuntimeError as e:
                raise RuntimeError(f"TensorFlow already started with its own thread count; set threads first ({e})") from e


def set_threads(n: int | None) -> None:
    """Limit every framework to n compute threads (None: leave each its default). NumPy's BLAS and
    OpenMP pools are limited at once through threadpoolctl; torch and TensorFlow when loaded (now,
    if they already are). On a small shared VM one thread is the stable measurement: a second vCPU
    comes and goes, and 2-thread timings jump between levels."""
    global _THREADS
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ValueError(f"threads must be a positive int or None, got {n!r}")
    _THREADS = n
    _APPLIED.clear()
    if n is None:
        return
    import threadpoolctl

    threadpoolctl.threadpool_limits(n)
    _apply_pending(strict=True)


@contextlib.contextmanager
def thread_limit(n: int):
    """set_threads(n) for a block, and the limit before it afterwards (NumPy's BLAS pools and torch's count back as
    they were; TensorFlow's pools, fixed once its runtime starts, stay). Yields None, or what TensorFlow said where its
    runtime had already started with another count (the other frameworks took the limit). For in-process callers of
    `nnparity certify`: a test or a notebook, whose later work must not run on one thread unasked."""
    import threadpoolctl

    global _THREADS
    before, blas = _THREADS, threadpoolctl.threadpool_limits(None)  # None: records the pools' limits, changes none
    torch_before = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    refused = None
    try:
        try:
            set_threads(n)
        except RuntimeError as e:
            refused = str(e)
        yield refused
    finally:
        _THREADS = before
        _APPLIED.clear()
        blas.restore_original_limits()
        if torch_before is not None:
            sys.modules["torch"].set_num_threads(torch_before)


def threads() -> int | None:
    """The thread limit set by set_threads, or None."""
    return _THREADS


def load_attr(module: str, attr: str):
    """An attribute of a framework's submodule (e.g. onnx.reference.ReferenceEvaluator)."""
    load(module.split(".")[0])
    return getattr(importlib.import_module(module), attr)


def version(name: str) -> str | None:
    """The framework's version, or None where it is not installed (never raises)."""
    try:
        module = load(name)
        return str(importlib.import_module(_VERSION_OF[name]).__version__ if name in _VERSION_OF else module.__version__)
    except BackendUnavailable:
        return None
