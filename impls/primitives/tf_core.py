"""What every module of the TensorFlow voice from primitives builds on: TensorFlow loaded, dtypes and devices, arrays
in and out, a weight as a tensor like x (`_like`), and the GradientTape plumbing (`_vjp`). Re-exported by
tf_impl.py."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import frameworks

tf = frameworks.load("tensorflow")

_DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0", "cuda": "/GPU:0"}
_DTYPES = ("float64", "float32", "bfloat16", "float16")
_ID_DTYPES = ("int64", "int32")  # token ids (an embedding's input): asarray only


# --------------------------------------------------------------------------- boundary


def tf_dtype(dtype) -> Any:
    """A NumPy dtype, its name, or a tf.DType -> tf.DType (float64, float32, bfloat16, float16 only)."""
    name = (
        dtype.name
        if isinstance(dtype, tf.DType)
        else dtype
        if isinstance(dtype, str)
        else np.dtype(dtype).name
    )
    if name not in _DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; supported: {', '.join(_DTYPES)}")
    return tf.as_dtype(name)


def device_name(device: str | None) -> str | None:
    if device is None:
        return None
    if device not in _DEVICES:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(_DEVICES)}")
    return _DEVICES[device]


def asarray(a, dtype="float64", device: str | None = None):
    """NumPy (or a tensor) -> a tf tensor of `dtype` (a float; int64/int32 for integer token ids only, floats are
    never cast to ids), placed on `device` ("cpu", "gpu"/"cuda") if given."""
    name = dtype.name if isinstance(dtype, tf.DType) else dtype if isinstance(dtype, str) else np.dtype(dtype).name
    ids = name in _ID_DTYPES and tf.convert_to_tensor(a).dtype.is_integer  # never floats truncated to ids
    dt, dev = (tf.as_dtype(name) if ids else tf_dtype(dtype)), device_name(device)
    if dev is None:
        return tf.cast(tf.convert_to_tensor(a), dt)
    with tf.device(dev):
        return tf.identity(tf.cast(tf.convert_to_tensor(a), dt))


def to_numpy(a) -> np.ndarray:
    return a.numpy() if hasattr(a, "numpy") else np.asarray(a)


def synchronize(device=None) -> None:
    """Block until queued device work (GPU streams, async eager ops) has finished."""
    tf.test.experimental.sync_devices()


def _like(a, x):
    """A weight (NumPy or tensor) as a tensor of x's dtype."""
    return tf.cast(tf.convert_to_tensor(a), x.dtype)


def _vjp(fn, inputs: dict, outputs_dy: list | None) -> dict:
    """Run fn(**inputs) under a tape watching every input; pull back the cotangents (one per output;
    None for a scalar output: its gradient)."""
    with tf.GradientTape() as tape:
        for v in inputs.values():
            tape.watch(v)
        out = fn(**inputs)
    out = list(out) if isinstance(out, tuple) else [out]
    keys = list(inputs)
    grads = tape.gradient(
        out,
        [inputs[k] for k in keys],
        output_gradients=outputs_dy,
        unconnected_gradients=tf.UnconnectedGradients.ZERO,
    )
    # a gather's gradient (an embedding table's) is tf.IndexedSlices: the dense tensor, as every other gradient
    return {k: tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for k, g in zip(keys, grads)}
