"""What every module of the JAX voice from primitives builds on: JAX loaded, dtypes and devices, arrays in and out, a
weight as an array like x (`_like`), jax.jit per configuration (`_jit`), the spec's weights as pytrees, and the
activations (each one jitted computation). Re-exported by jax_impl.py; jax_grads.py differentiates `_relu`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import frameworks
from ..contract import spec
from ..contract.models import SeedCNNParams, SeedGRUParams

jax = frameworks.load("jax")
jnp, lax = jax.numpy, jax.lax

_DTYPES = {"float64": jnp.float64, "float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
_DEVICES = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu"}

# --------------------------------------------------------------------------- boundary


def jax_dtype(dtype: Any) -> Any:
    """A NumPy dtype or its name, or "bfloat16" -> the jnp dtype (float64, float32, bfloat16, float16 only)."""
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(_DTYPES)}")
    return _DTYPES[name]


def jax_device(name: str | None) -> Any:
    """"cpu" or "cuda"/"gpu" -> the first such jax device (ValueError naming what exists where there is none)."""
    if name is None:
        return None
    if name not in _DEVICES:
        raise ValueError(f"unknown device {name!r}; valid devices: {', '.join(_DEVICES)}")
    try:
        return jax.devices(_DEVICES[name])[0]
    except RuntimeError as e:
        raise ValueError(f"no jax {name} device here ({e}); devices: {jax.devices()}") from None


_ID_DTYPES = {"int64": jnp.int64, "int32": jnp.int32}  # token ids (an embedding's input): asarray only


def asarray(a: Any, dtype: Any = "float64", device: str | None = None) -> Any:
    """NumPy (or a jax array) -> a jax array of `dtype` (a float; int64/int32 for integer token ids only, floats are
    never cast to ids) on `device` (default: JAX's default device)."""
    dev = jax_device(device)
    name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    a = a if isinstance(a, jax.Array) else np.asarray(a)
    ids = name in _ID_DTYPES and jnp.issubdtype(a.dtype, jnp.integer)  # never floats truncated to ids
    out = jnp.asarray(a, dtype=_ID_DTYPES[name] if ids else jax_dtype(dtype))
    return out if dev is None else jax.device_put(out, dev)


def to_numpy(a: Any) -> np.ndarray:
    """A jax array -> NumPy on the host; bfloat16 (which NumPy lacks) comes back as float32."""
    out = np.asarray(a)
    return out.astype(np.float32) if out.dtype == jnp.bfloat16 else out


def synchronize(device: Any = None) -> None:
    """JAX dispatches asynchronously and has no global barrier: `compile` blocks on each call's outputs
    (block_until_ready). This waits for effects only."""
    jax.effects_barrier()


def _like(a: Any, x: Any) -> Any:
    return jnp.asarray(a, dtype=x.dtype)


def _jit(fn: Callable, *static: str) -> Callable:
    return jax.jit(fn, static_argnames=static)


def register_pytrees(*classes: type) -> None:
    """Make the spec's weight dataclasses jax pytrees (their fields are the leaves), once."""
    for cls in classes:
        try:
            jax.tree_util.register_dataclass(cls)
        except ValueError:  # already registered
            pass


register_pytrees(spec.GRUWeights, spec.DenseWeights, spec.ConvWeights, SeedGRUParams, SeedCNNParams)

# --------------------------------------------------------------------------- activations


def _relu(x):
    return jnp.maximum(x, jnp.zeros((), x.dtype))


def _softmax(x, axis=-1):
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True)))  # shifted: exp never overflows
    return e / jnp.sum(e, axis=axis, keepdims=True)


relu = _jit(_relu)
tanh = _jit(jnp.tanh)
sigmoid = _jit(jax.nn.sigmoid)
softmax = _jit(_softmax, "axis")
