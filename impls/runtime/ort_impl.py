"""ONNX Runtime as a voice: every contract function is a hand-built ONNX graph (impls/runtime/onnx_graphs.py) run by an
InferenceSession, CPUExecutionProvider (CUDAExecutionProvider first where device="cuda" and onnxruntime-gpu
is present). Arrays are NumPy arrays: that is what a session takes and gives.

What ONNX Runtime cannot compute is declared in impls/contract/limits.py and refused with the reason: GRU, Conv and
AveragePool in float64 (its CPU kernels are float32 only), and every gradient (an InferenceSession has none).
Sessions are cached per graph (op, attributes, shapes, dtype): a graph is built and optimised once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract import limits, spec
from ..contract.spec import GRUWeights
from . import onnx_graphs

ort = frameworks.load("onnxruntime")

NAME = "onnxruntime"
FRAMEWORK = "onnxruntime"
MODE = "ort"
MODES = ("ort",)
SUPPORTED_VARIANTS = tuple(onnx_graphs.LINEAR_BEFORE_RESET)  # the GRU operator's linear_before_reset = 0 / 1
_DTYPES = ("float64", "float32", "float16")


# --------------------------------------------------------------------------- boundary and sessions


def asarray(a: Any, dtype: Any = "float64", device: str | None = None) -> np.ndarray:
    """A NumPy array of `dtype` (a copy). device "cuda" needs onnxruntime's CUDAExecutionProvider; the arrays stay
    on the host either way and a session copies them."""
    name = np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(_DTYPES)}")
    providers(device)
    return np.array(a, dtype=name)


def to_numpy(a: Any) -> np.ndarray:
    return np.asarray(a)


def synchronize(device: Any = None) -> None:
    """session.run returns when its outputs are on the host: nothing is left queued."""


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as it runs in `mode`: sessions are built and optimised when a graph is first seen; later calls run them."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for {NAME}; valid modes: {', '.join(MODES)}")
    return fn


@functools.cache
def providers(device: str | None = None) -> tuple[str, ...]:
    """The execution providers for `device`: ("CPUExecutionProvider",) on the CPU; CUDA first on "cuda"."""
    if device in (None, "cpu"):
        return ("CPUExecutionProvider",)
    if device in ("cuda", "gpu"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError(f"no CUDAExecutionProvider in this onnxruntime (providers: {ort.get_available_providers()})")
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    raise ValueError(f"unknown device {device!r}; valid devices: cpu, cuda")


def session(model: Any, device: str | None = None) -> Any:
    """An InferenceSession for a ModelProto (threads as impls.frameworks.set_threads says). Where no thread count is
    set (checks, not timing), idle worker threads do not spin: each live session's workers otherwise keep spinning
    after a run, and with a session per layer (certify's isolated checks) they took the VM's two cores (measured: a
    residual model's ONNX layer checks 0.8 s with spinning, 0.07 s without)."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if frameworks.threads() is not None:
        opts.intra_op_num_threads = opts.inter_op_num_threads = frameworks.threads()
    else:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=list(providers(device)))


@functools.lru_cache(maxsize=512)
def _cached(build: Callable, *key: Any) -> Any:
    return session(build(*key))


def _run(build: Callable, key: tuple, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return _cached(build, *key).run(None, feeds)


def _like(a: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=x.dtype)


def _dtype(x: np.ndarray) -> str:
    return x.dtype.name


# --------------------------------------------------------------------------- GRU


def check_variant(variant: str) -> str:
    spec.check_variant(variant)
    if variant not in SUPPORTED_VARIANTS:
        raise ValueError(f"the ONNX GRU operator does not compute the GRU variant {variant!r}; supported: "
                         f"{', '.join(SUPPORTED_VARIANTS)} (linear_before_reset 0 and 1)")  # fmt: skip
    return variant


def gru(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ONNX GRU (linear_before_reset by variant), W/R/B from convert.gru_to_onnx. (B, T, I) -> (y, h_T)."""
    check_variant(variant)
    H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)[3]
    limits.check(NAME, "gru", _dtype(x))
    feeds = {"x": x} | {k: _like(v, x) for k, v in convert.gru_to_onnx(weights).items()}
    if h0 is not None:
        feeds["h0"] = _like(h0, x)
    y, h_T = _run(onnx_graphs.gru, (x.shape, H, variant, _dtype(x), h0 is not None), feeds)
    return y, h_T


# --------------------------------------------------------------------------- conv, pools, dense, activations


def conv2d(x: np.ndarray, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
           groups: int = 1) -> np.ndarray:  # fmt: skip
    """ONNX Conv (group, dilations, explicit pads; TensorFlow's 'same' as its explicit pads) on NCHW inside."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    limits.check(NAME, "conv2d", _dtype(x), stride=stride, padding=padding, dilation=dilation, groups=groups)
    w = _like(convert.hwio_to_oihw(np.asarray(kernel)), x)
    (y,) = _run(onnx_graphs.conv2d, (x.shape, w.shape, g, _dtype(x)), {"x": x, "W": w, "B": _like(bias, x)})
    return y


def max_pool2d(x: np.ndarray, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> np.ndarray:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    (y,) = _run(onnx_graphs.pool2d, ("MaxPool", x.shape, g, _dtype(x)), {"x": x})
    return y


def avg_pool2d(x: np.ndarray, pool: Any = 2, stride: Any = None, padding: Any = "valid",
               count_include_pad: bool = False) -> np.ndarray:  # fmt: skip
    """ONNX AveragePool; its count_include_pad attribute is the contract's flag."""
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    limits.check(NAME, "avg_pool2d", _dtype(x), pool=pool, stride=stride, padding=padding, count_include_pad=flag)
    (y,) = _run(onnx_graphs.pool2d, ("AveragePool", x.shape, g, _dtype(x), flag), {"x": x})
    return y


def dense(x: np.ndarray, kernel: Any, bias: Any) -> np.ndarray:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    n_out = int(kernel.shape[1])
    (y,) = _run(onnx_graphs.dense, (x.shape, n_out, _dtype(x)), {"x": x, "kernel": _like(kernel, x), "bias": _like(bias, x)})
    return y


def relu(x: np.ndarray) -> np.ndarray:
    return _run(onnx_graphs.unary, ("Relu", x.shape, _dtype(x)), {"x": x})[0]


@functools.lru_cache(maxsize=64)
def _softmax_graph(shape: tuple, dtype: str, axis: int) -> Any:
    return onnx_graphs.unary("Softmax", shape, dtype, axis=axis)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return _run(_softmax_graph, (x.shape, _dtype(x), axis), {"x": x})[0]


def seed_conv1d(x: np.ndarray, w: Any, b: Any) -> np.ndarray:
    """The seed's per-channel 1-D correlation as a depthwise 1-D Conv: w (K, C) -> (C, 1, K)."""
    _, _, _, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    limits.check(NAME, "seed_conv1d", _dtype(x))
    feeds = {"x": x, "W": _like(np.asarray(w).T[:, None, :], x), "B": _like(b, x)}
    return _run(onnx_graphs.seed_conv1d, (x.shape, K, _dtype(x)), feeds)[0]


def seed_pool1d(y: np.ndarray) -> np.ndarray:
    spec.check_seed_pool1d(y.shape)
    return _run(onnx_graphs.seed_pool1d, (y.shape, _dtype(y)), {"x": y})[0]


def flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


# --------------------------------------------------------------------------- gradients: declared refused (impls/contract/limits.py)


def _no_gradients(op: str) -> Callable:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        limits.check(NAME, op)
        raise AssertionError(f"limits declares {NAME} without gradients")  # unreachable while it does

    refuse.__name__ = refuse.__qualname__ = op
    refuse.__doc__ = f"Refused: {limits.GRADIENT_REFUSALS[NAME]}"
    return refuse


gru_vjp = _no_gradients("gru_vjp")
conv2d_vjp = _no_gradients("conv2d_vjp")
max_pool2d_vjp = _no_gradients("max_pool2d_vjp")
avg_pool2d_vjp = _no_gradients("avg_pool2d_vjp")
dense_vjp = _no_gradients("dense_vjp")
relu_vjp = _no_gradients("relu_vjp")
softmax_cross_entropy = _no_gradients("softmax_cross_entropy")
softmax_cross_entropy_vjp = _no_gradients("softmax_cross_entropy_vjp")

__all__ = [
    "FRAMEWORK", "MODE", "MODES", "NAME", "SUPPORTED_VARIANTS", "asarray", "avg_pool2d", "avg_pool2d_vjp",
    "compile", "conv2d", "conv2d_vjp", "dense", "dense_vjp", "flatten", "gru", "gru_vjp", "max_pool2d",
    "max_pool2d_vjp", "providers", "relu", "relu_vjp", "seed_conv1d",
    "seed_pool1d", "session", "softmax", "softmax_cross_entropy", "softmax_cross_entropy_vjp", "synchronize",
    "to_numpy",
]  # fmt: skip
