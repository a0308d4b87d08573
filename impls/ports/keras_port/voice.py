"""The Keras port as the "keras" voice and as a file: build (the port under tf.function, canonical arrays in and out,
assembled in memory; every layer's output from one forward, and rebinds to other weights of the same structure) and
write (the port saved as a .keras file that keras.saving.load_model loads without custom objects)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ... import convert
from ...model.description import Model
from ...model.voices import Built, structure
from ...primitives import tf_impl
from .assembly import boundary_perms, integer, keras_model, tapped
from .embedding import embedding_notes
from .emitters import DTYPES, VOICE, tf
from .normalization import batch_norm_notes
from .recurrent import gru_notes, lstm_notes
from .weights import Mains, assign, canonical_weights, dense_grads, variables, weights_of


def _finished(fn):
    """fn, synchronised where TensorFlow may return before its kernels ran (a GPU, async execution)."""
    if not tf.config.list_physical_devices("GPU") and tf.config.experimental.get_synchronous_execution():
        return fn

    def call(*a):
        out = fn(*a)
        tf_impl.synchronize()
        return out

    return call


class _Program:
    """What a build and every rebind of it share: the assembled port (net, keras_model's own), taps (a model over
    the same Keras layers returning every description layer's output: assembly.tapped), the tf.functions that run
    them (call, outputs, step), and which build's weights the Keras variables hold now (holder: its Mains)."""

    def __init__(self, model: Model, dtype: str):
        self.dtype, self.structure = dtype, structure(model)
        self.net, self.mains, taps = tapped(model, dtype)
        self.holder = self.mains
        self.ids = integer(model.input_dtype)  # token ids in: no gradient with respect to the input
        net, held, ids = self.net, variables(self.mains), self.ids

        def eager(x):
            return net(x, training=False)

        def every(x):
            return taps(x, training=False)

        def grads(x, dy):
            with tf.GradientTape() as tape:
                if not ids:
                    tape.watch(x)
                y = net(x, training=False)
            wrt = held if ids else [x, *held]
            g = tape.gradient(y, wrt, output_gradients=dy, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return [None, *dense_grads(g)] if ids else dense_grads(g)

        self.eager, self.grads = eager, grads
        self.call, self.every, self.step = (_finished(tf.function(f)) for f in (eager, every, grads))

    def hold(self, mains: Mains) -> None:
        """Put `mains`' weights (a build's layers on this program's Keras layers) in the shared variables."""
        if self.holder is not mains:
            assign(mains, self.dtype)
            self.holder = mains

    def mains_of(self, model: Model) -> Mains:
        """`model`'s weighted layers on this program's Keras layers (model of the same structure)."""
        if structure(model) != self.structure:
            raise ValueError(f"{VOICE}: rebind takes a model of the same structure (kinds, options, shapes, boundary, "
                             f"input dtype); {model.name!r} is not one of {self.net.name!r}'s")
        weighted = [la for la in model.layers if weights_of(la.kind) is not None]
        return [(la, opts, main) for la, (_, opts, main) in zip(weighted, self.mains, strict=True)]


def build(model: Model, dtype: str = "float32") -> Built:
    """The port (keras_model(model, dtype), as write() saves it) run under tf.function; canonical arrays in and
    out: NHWC images (and a channels_first source's 3-D feature maps, NWC) are transposed to the port's channels-first
    boundary in to_native and back in to_numpy.

    In memory: the net is assembled in this process, its weights assigned from the description's arrays; nothing is
    written, saved or loaded, and it is the very net write() saves, so it computes what the written file loaded by
    keras.saving.load_model computes. `outputs` runs taps (every description layer's output, canonical, from one
    forward under tf.function); `rebind(other)` runs `other` (the same structure) on the same Keras layers and
    tf.functions, its weights assigned to their variables: nothing is built or traced again. The two Builts then
    share one set of variables, and each one's to_native (every forward, outputs and vjp goes through it) puts its
    own weights back in when the other's are there: a step or call fed an array converted before the other Built
    ran reads the other's weights, and so does native_model, which is the shared net."""
    program = _Program(model, dtype)
    return _built(model, dtype, program, program.mains)


def _built(model: Model, dtype: str, program: _Program, mains: Mains) -> Built:
    """`model`'s Built on `program`, whose variables hold `mains`' weights whenever its to_native ran last."""
    cf = model.boundary == "channels_first"
    first, last = boundary_perms(model, False)
    flat = model.flattened_output()  # 2-D arrays here are the output and its dy: features in (c, h, w) order
    ids = program.ids

    def _swap3(a, on):
        return np.swapaxes(a, 1, 2) if on is not None and len(on) == 2 and a.ndim == 3 else a

    def dy_to_native(a):
        a = np.asarray(a, dtype=dtype)
        a = convert.nhwc_to_nchw(a) if cf and a.ndim == 4 else convert.features_nhwc_to_nchw(a, flat) if flat and a.ndim == 2 else a
        return tf.convert_to_tensor(np.ascontiguousarray(_swap3(a, last)))

    def to_native(a):
        program.hold(mains)
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

    def outputs(x: np.ndarray) -> list[np.ndarray]:
        """Every description layer's output, in order, canonical: the taps are inside the boundary's permutes."""
        return [np.ascontiguousarray(tf_impl.to_numpy(t)) for t in program.every(to_native(x))]

    def vjp(x, dy):  # eager: one call, no trace to pay for
        gx, *gw = program.grads(to_native(x), dy_to_native(dy))
        return (None if gx is None else dx_to_numpy(gx)), canonical_weights(mains, gw)

    def rebind(other: Model) -> Built:
        again = program.mains_of(other)
        program.hold(again)
        return _built(other, dtype, program, again)

    notes = [*gru_notes(model), *lstm_notes(model), *batch_norm_notes(model), *embedding_notes(model)]
    notes += [f"takes {'NCHW' if len(first) == 3 else 'NCW'} through Permute({first})"] if first else []
    notes += [f"returns {'NCHW' if len(last) == 3 else 'NCW'} through Permute({last})"] if last else []
    return Built(VOICE, dtype, to_native, program.call, to_numpy, vjp, program.step, "tf.function", notes,
                 eager=program.eager, native_model=program.net, dy_to_native=dy_to_native, outputs=outputs,
                 rebind=rebind)  # fmt: skip


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
