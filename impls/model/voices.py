"""Every voice builds any model description: `build(voice, model, dtype) -> Built`.

    built = build("keras", model, "float32")
    y = built.forward(x)                    # NumPy in (canonical layout), NumPy out
    dx, grads = built.vjp(x, dy)            # {(layer name, weight name): canonical gradient}; Refused without gradients

The from-primitives voices (numpy, torch, tensorflow, jax) compose the model from their own operations
(impls/model/compose.py). The built-in voices build the frameworks' own whole models, and those are exactly what
`nnparity port` writes: torch_nn -> impls/ports/torch_port.py, keras -> keras_port.py, flax -> flax_port.py,
onnxruntime -> onnx_port.py. Each port module offers `refusal(model, dtype) -> str | None` (what it cannot express,
with the reason), `build(model, dtype) -> Built` and `write(model, out, native_layout=False)`.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import backend
from ..contract.limits import Refused
from .compose import Composed, compose, reference_vjp
from .description import Model

PRIMITIVES = ("numpy", "torch", "tensorflow", "jax")
PORTS: dict[str, str] = {
    "torch_nn": "impls.ports.torch_port",
    "keras": "impls.ports.keras_port",
    "flax": "impls.ports.flax_port",
    "onnxruntime": "impls.ports.onnx_port",
}
VOICES = (*PRIMITIVES, *PORTS)


@dataclass
class Built:
    """One voice's build of one model, in one dtype.

    to_native / call / to_numpy: the timed path (call takes and returns the voice's own arrays and has finished
    computing when it returns). vjp: NumPy in, (dx, {(layer, weight): canonical gradient}) out, or None where the voice
    has no gradients. step: the timed forward + backward, (native x, native dy) -> anything, or None. dy_to_native:
    a canonical dy (the output's shape) -> step's dy, where the port's output layout is not its input's (a torch
    module takes NCHW images and returns (B, classes)); None means to_native does both."""

    voice: str
    dtype: str
    to_native: Callable[[np.ndarray], Any]
    call: Callable[[Any], Any]
    to_numpy: Callable[[Any], np.ndarray]
    vjp: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]] | None = None
    step: Callable[[Any, Any], Any] | None = None
    mode: str = ""  # how it runs, as bench labels rows: eager, jit, tf.function, ort ...
    notes: list[str] = field(default_factory=list)  # what the build translated (a folded bias, a layout)
    eager: Callable[[Any], Any] | None = None  # the same forward uncompiled, where `call` is compiled (bench compiles it per mode)
    native_model: Any = None  # the framework's own object: an nn.Module, a keras.Model, (linen module, variables), a ModelProto
    dy_to_native: Callable[[np.ndarray], Any] | None = None
    outputs: Callable[[np.ndarray], list[np.ndarray]] | None = None
    """NumPy in, every layer's output out (canonical layout, in layer order) from ONE forward of this build: what the
    certificate's accumulated check compares (Polygraphy's 'mark every tensor an output'). None: not offered."""
    forward_is_last_output: bool = False
    """The certificate's forward check may take the last of `outputs` instead of `call`: both are one traced chain
    compiled as one program each (JAX from primitives, Composed), so compiling the chain alone again would only double
    the compile (resnet18: 2.7 s a dtype). `call` stays what is timed and what a user runs."""
    rebind: Callable[[Model], Built] | None = None
    """A build of another model of the same structure (structure(model) equal: kinds, options, shapes, boundary;
    other weights and names) that reuses this one's traced or compiled program: the certificate's isolated checks
    build each distinct layer configuration once. None: every model is built afresh."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.to_numpy(self.call(self.to_native(x)))

    def native_dy(self, dy: np.ndarray) -> Any:
        """A canonical dy as step takes it."""
        return (self.dy_to_native or self.to_native)(dy)


def port_module(voice: str):
    try:
        return importlib.import_module(PORTS[voice])
    except KeyError:
        raise ValueError(f"{voice!r} has no port; ports: {', '.join(PORTS)}") from None


def refusal(voice: str, model: Model, dtype: str) -> str | None:
    """Why `voice` cannot build `model` in `dtype`, or None."""
    if voice in PRIMITIVES:
        return None
    if voice not in PORTS:
        raise ValueError(f"unknown voice {voice!r}; voices: {', '.join(VOICES)}")
    return port_module(voice).refusal(model, dtype)


def _primitive(voice: str, model: Model, dtype: str, device: str | None, composed: Composed | None = None) -> Built:
    ops = backend(voice)
    composed = compose(ops, model, dtype, device) if composed is None else composed
    in_dtype = model.input_dtype if is_integer(model.input_dtype) else dtype  # token ids stay integers
    asarray = (lambda x: ops.asarray(x, in_dtype, device))
    if voice == "numpy":  # the hand-written backward chain, not autograd
        typed = model.astype(dtype)  # its weights in the dtype asked for

        def step(x, dy):
            return reference_vjp(typed, x, dy)

        def vjp(x, dy):
            x = np.asarray(x) if is_integer(model.input_dtype) else np.asarray(x, dtype)
            return step(x, np.asarray(dy, dtype))
    else:
        def step(x, dy):
            return composed.vjp(x, dy)

        def vjp(x, dy):
            dx, g = step(asarray(x), ops.asarray(dy, dtype, device))
            return (None if dx is None else ops.to_numpy(dx)), {k: ops.to_numpy(v) for k, v in g.items()}

    mode = {"jax": "jit", "numpy": "numpy"}.get(voice, "eager")
    call = composed if voice != "jax" else ops.compile(composed, "jit")

    def outputs(x: np.ndarray) -> list[np.ndarray]:
        return [ops.to_numpy(y) for y in composed.outputs(asarray(x))]

    def rebind(other: Model) -> Built:
        return _primitive(voice, other, dtype, device, composed.rebind(other))

    return Built(voice, dtype, asarray, call, ops.to_numpy, vjp, step, mode, eager=composed, outputs=outputs,
                 forward_is_last_output=voice == "jax", rebind=rebind)


def build(voice: str, model: Model, dtype: str = "float32", device: str | None = None) -> Built:
    """`voice`'s build of `model`. Raises limits.Refused with the reason where the voice cannot express it."""
    why = refusal(voice, model, dtype)
    if why is not None:
        raise Refused(f"{voice}: {why}")
    if voice in PRIMITIVES:
        return _checked(model, _primitive(voice, model, dtype, device))
    if device not in (None, "cpu"):
        raise Refused(f"{voice}: the port builds its model on the CPU only, not on {device!r} (a later step)")
    return _checked(model, port_module(voice).build(model, dtype))


def structure(model: Model) -> tuple:
    """What a build depends on besides the weights' values and the layers' names: equal structures compute the same
    function of their weights (the key of LayerBuilds)."""
    from .layers import spec_of

    index = {la.name: i for i, la in enumerate(model.layers)}

    def layer(la):
        opts = spec_of(la.kind).options(la.options)
        return (la.kind, json.dumps(opts, sort_keys=True, default=str), tuple(index.get(s, -1) for s in la.inputs),
                tuple(sorted((k, tuple(np.shape(v)), str(np.asarray(v).dtype)) for k, v in la.weights.items())))

    return (model.input_shape, model.input_dtype, model.boundary, tuple(layer(la) for la in model.layers))


class LayerBuilds:
    """One voice's builds of small models (one layer, fed the reference's input), one build per distinct structure:
    a model whose structure was built before is run by that build's `rebind`, so a framework that compiles (JAX,
    Flax, XLA) compiles each layer configuration once, and a port writes no files for it."""

    def __init__(self, voice: str, dtype: str):
        self.voice, self.dtype = voice, dtype
        self._built: dict[tuple, Built] = {}
        self.built = self.rebound = 0  # how many builds, and how many runs of an earlier build (for --profile)

    def get(self, model: Model) -> Built:
        key = structure(model)
        first = self._built.get(key)
        if first is not None and first.rebind is not None:
            self.rebound += 1
            return _checked(model, first.rebind(model))
        built = build(self.voice, model, self.dtype)
        self._built.setdefault(key, built)
        self.built += 1
        return built


def is_integer(dtype: str) -> bool:
    return np.issubdtype(np.dtype(dtype), np.integer)


def _checked(model: Model, built: Built) -> Built:
    """Every voice refuses the same input data, before converting it (Model.check_input: an id outside an
    embedding's table, a pre-padded mask), whatever its framework would do (raise, clamp or wrap)."""
    to_native, vjp, outputs = built.to_native, built.vjp, built.outputs

    def checked(x):
        model.check_input(np.asarray(x))
        return to_native(x)

    def checked_vjp(x, dy):
        model.check_input(np.asarray(x))
        return vjp(x, dy)

    def checked_outputs(x):
        model.check_input(np.asarray(x))
        return outputs(x)

    built.to_native = checked
    if vjp is not None:
        built.vjp = checked_vjp
    if outputs is not None:
        built.outputs = checked_outputs
    return built


__all__ = ["PORTS", "PRIMITIVES", "VOICES", "Built", "LayerBuilds", "build", "port_module", "refusal", "structure"]
