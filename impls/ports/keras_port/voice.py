"""The Keras port as the "keras" voice and as a file: build (the port under tf.function, canonical arrays in and out)
and write (the port saved as a .keras file that keras.saving.load_model loads without custom objects)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ... import convert
from ...model.description import Model
from ...model.voices import Built
from ...primitives import tf_impl
from .assembly import assemble, boundary_perms, integer, keras_model
from .embedding import embedding_notes
from .emitters import DTYPES, VOICE, tf
from .normalization import batch_norm_notes
from .recurrent import gru_notes, lstm_notes
from .weights import canonical_weights, dense_grads, variables


def _finished(fn):
    """fn, synchronised where TensorFlow may return before its kernels ran (a GPU, async execution)."""
    if not tf.config.list_physical_devices("GPU") and tf.config.experimental.get_synchronous_execution():
        return fn

    def call(*a):
        out = fn(*a)
        tf_impl.synchronize()
        return out

    return call


def build(model: Model, dtype: str = "float32") -> Built:
    """The port (keras_model(model, dtype), as write() saves it) run under tf.function; canonical arrays in and
    out: NHWC images (and a channels_first source's 3-D feature maps, NWC) are transposed to the port's channels-first
    boundary in to_native and back in to_numpy."""
    net, mains = assemble(model, dtype, native_layout=False)
    cf = model.boundary == "channels_first"
    first, last = boundary_perms(model, False)
    flat = model.flattened_output()  # 2-D arrays here are the output and its dy: features in (c, h, w) order
    held = variables(mains)
    ids = integer(model.input_dtype)  # token ids in: no gradient with respect to the input

    def _swap3(a, on):
        return np.swapaxes(a, 1, 2) if on is not None and len(on) == 2 and a.ndim == 3 else a

    def dy_to_native(a):
        a = np.asarray(a, dtype=dtype)
        a = convert.nhwc_to_nchw(a) if cf and a.ndim == 4 else convert.features_nhwc_to_nchw(a, flat) if flat and a.ndim == 2 else a
        return tf.convert_to_tensor(np.ascontiguousarray(_swap3(a, last)))

    def to_native(a):
        if ids:
            return tf.convert_to_tensor(np.asarray(a, dtype=model.input_dtype))
        a = np.asarray(a, dtype=dtype)
        a = convert.nhwc_to_nchw(a) if cf and a.ndim == 4 else a
        return tf.convert_to_tensor(np.ascontiguousarray(_swap3(a, first)))

    def to_numpy(t) -> np.ndarray:
        a = tf_impl.to_numpy(t)
        a = convert.nchw_to_nhwc(a) if cf and a.ndim == 4 else convert.features_nchw_to_nhwc(a, flat) if flat and a.ndim == 2 else a
        return np.ascontiguousarray(_swap3(a, last))

    def dx_to_numpy(t) -> np.ndarray:
        a = tf_impl.to_numpy(t)
        return np.ascontiguousarray(_swap3(convert.nchw_to_nhwc(a) if cf and a.ndim == 4 else a, first))

    def eager(x):
        return net(x, training=False)

    def grads(x, dy):
        with tf.GradientTape() as tape:
            if not ids:
                tape.watch(x)
            y = net(x, training=False)
        wrt = held if ids else [x, *held]
        g = tape.gradient(y, wrt, output_gradients=dy, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [None, *dense_grads(g)] if ids else dense_grads(g)

    def vjp(x, dy):  # eager: one call, no trace to pay for
        gx, *gw = grads(to_native(x), dy_to_native(dy))
        return (None if gx is None else dx_to_numpy(gx)), canonical_weights(mains, gw)

    notes = [*gru_notes(model), *lstm_notes(model), *batch_norm_notes(model), *embedding_notes(model)]
    notes += [f"takes {'NCHW' if len(first) == 3 else 'NCW'} through Permute({first})"] if first else []
    notes += [f"returns {'NCHW' if len(last) == 3 else 'NCW'} through Permute({last})"] if last else []
    return Built(VOICE, dtype, to_native, _finished(tf.function(eager)), to_numpy, vjp, _finished(tf.function(grads)),
                 "tf.function", notes, eager=eager, native_model=net, dy_to_native=dy_to_native)  # fmt: skip


def port_dtype(model: Model) -> str:
    """The dtype a written port computes in: the source's input dtype where it is float64, else float32."""
    return model.input_dtype if model.input_dtype in DTYPES else "float32"


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Save the port at exactly `out` with model.save (a Keras 3 .keras zip whatever out's suffix), in the
    source's input dtype where it is float64, else float32. Returns [out]."""
    out = Path(out)
    net = keras_model(model, port_dtype(model), native_layout)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".keras_port_") as d:
        tmp = Path(d) / "model.keras"  # model.save insists on the .keras suffix
        net.save(tmp)
        os.replace(tmp, out)
    return [out]


__all__ = ["build", "port_dtype", "write"]
