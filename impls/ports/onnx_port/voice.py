"""The ONNX port as a voice and as a file: build (the port's graph in an ONNX Runtime InferenceSession), port_dtype
and write (what `nnparity port MODEL --to onnx -o net.onnx` saves).

build never touches a file: the ModelProto is assembled in memory and the session is made from its bytes, the very
graph `write` saves (byte for byte, for the same dtype and layout), so the voice computes what the written port
computes in onnxruntime alone. Its Built offers (issue 27):
- outputs(x): every layer's output from one session.run of the same graph with each layer's value marked a graph
  output as well (Polygraphy's `--onnx-outputs mark all`, per description layer), each read back from the physical
  layout the builder tracked for it (to_canonical); the last is the graph's own output through the boundary. That
  session is made on the first call only; the written file never has these outputs. A value marked an output is
  not fused into the node after it (Conv + BatchNormalization, Conv + activation, a Pad folded into a Conv; ONNX
  Runtime's NCHWc transformer adds ReorderOutput nodes to hand it out): the taps equal the builds of the layers up to
  each (Model.sub(0, i + 1)) to float32 rounding (tests/test_port_onnx_outputs.py). The Pad that keeps its axes before
  a pool, and the plain Pad beside a Transpose, stay as they are: no new fusion and no optimizer failure.
- rebind(other): `other`'s weights, converted by the same emitters (builder._assemble; no graph assembled, checked or
  refused again), in place of this graph's initializers (the nodes and names stay this graph's), in a new session:
  about 1 ms a session for a 32-channel 3x3 conv layer (rebind 1.6-2.7 ms, build 2.4-3 ms, on a loaded machine).
  The weights as inputs of one shared session would save that session and cost more in every run (+0.2-0.8 ms on
  that conv, +35% on a 64-channel 56x56 one: no pre-packed weights), and run another optimised graph than
  build(other) does (nothing folded or fused with a weight it cannot see).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...contract import limits
from ...model.description import Model
from ...model.voices import Built
from ...runtime import ort_impl
from .builder import (
    DTYPES,
    INPUT,
    OUTPUT,
    VOICE,
    Tap,
    _assemble,
    _graph,
    _input_dtype,
    boundary_transforms,
    graph,
    helper,
    numpy_helper,
    onnx,
    to_canonical,
)


def build(model: Model, dtype: str) -> Built:
    """The port's graph (exactly what `write` saves, native_layout False) in an InferenceSession. to_native and
    to_numpy transpose between the canonical layout and the port's boundary; vjp and step are None (an
    InferenceSession has no gradients: limits.GRADIENT_REFUSALS)."""
    proto, notes, taps = _graph(model, dtype, False)
    return _built(model, dtype, proto, taps, notes)


def _built(model: Model, dtype: str, proto: Any, taps: list[Tap], notes: list[str]) -> Built:
    sess = ort_impl.session(proto)
    into, back = boundary_transforms(model)
    dt = np.dtype(dtype)
    in_dt = _input_dtype(model, dt)
    tapped: list[Any] = []  # the session of the graph with every layer's value an output, made on the first outputs()

    def to_native(x: np.ndarray) -> np.ndarray:
        return into(np.asarray(x, dtype=in_dt))

    def call(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {INPUT: x})[0]

    def outputs(x: np.ndarray) -> list[np.ndarray]:
        model.check_input(np.asarray(x))
        if not tapped:
            tapped.append(ort_impl.session(with_taps(proto, taps)))
        xn = to_native(x)
        names = [OUTPUT, *dict.fromkeys(t for t, _, _ in taps if t not in (INPUT, OUTPUT))]
        got = {**dict(zip(names, tapped[0].run(names, {INPUT: xn}), strict=True)), INPUT: xn}
        return [*(to_canonical(got[t], layout, chw) for t, layout, chw in taps[:-1]), back(got[OUTPUT])]

    def rebind(other: Model) -> Built:
        g = _assemble(other, dtype, False)
        return _built(other, dtype, with_weights(proto, list(g.init.values())), taps, g.notes)

    return Built(VOICE, dt.name, to_native, call, back, vjp=None, step=None, mode=ort_impl.MODE, notes=_notes(notes),
                 outputs=outputs, rebind=rebind)


def _notes(notes: list[str]) -> list[str]:
    return [f"no gradients: {limits.GRADIENT_REFUSALS[VOICE]}", *notes]


def with_taps(proto: Any, taps: list[Tap]) -> Any:
    """A copy of the graph whose outputs are its own, then every layer's value (once each; not the input)."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    elem = m.graph.output[0].type.tensor_type.elem_type
    for t in dict.fromkeys(t for t, _, _ in taps if t not in (INPUT, OUTPUT)):
        m.graph.output.append(helper.make_tensor_value_info(t, elem, None))
    return m


def with_weights(proto: Any, weights: list[np.ndarray]) -> Any:
    """A copy of the graph with `weights` in place of its initializers, in order (the emitters add a model's weights
    in the same order for every model of the same structure: voices.structure). Raises ValueError where they differ
    in number, shape or dtype."""
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    inits = m.graph.initializer
    if len(weights) != len(inits):
        raise ValueError(f"{len(weights)} initializers for a graph of {len(inits)}: not the same structure")
    for t, a in zip(inits, weights, strict=True):
        a = np.ascontiguousarray(a)  # as onnx_graphs.model stores it: a scalar as shape (1,)
        if tuple(t.dims) != a.shape or t.data_type != helper.np_dtype_to_tensor_dtype(a.dtype):
            raise ValueError(f"initializer {t.name!r} is {tuple(t.dims)}, got {a.dtype} {a.shape}: not the same structure")
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    return m


def port_dtype(model: Model) -> str:
    """The dtype a written port computes in: the source's input dtype where it is a float the port has."""
    return model.input_dtype if model.input_dtype in DTYPES else "float32"


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Save the port at exactly `out` (an .onnx file) in the source's dtype; returns [out]. Raises limits.Refused
    where ONNX Runtime cannot run it (a float64 source with a GRU or Conv, a GRU variant ONNX has not)."""
    out = Path(out)
    proto = graph(model, port_dtype(model), native_layout)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(out))
    return [out]


__all__ = ["build", "port_dtype", "with_taps", "with_weights", "write"]
