"""The ONNX port as a voice and as a file: build (the port's graph in an ONNX Runtime InferenceSession), port_dtype
and write (what `nnparity port MODEL --to onnx -o net.onnx` saves)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...contract import limits
from ...model.description import Model
from ...model.voices import Built
from ...runtime import ort_impl
from .builder import DTYPES, INPUT, VOICE, _graph, _input_dtype, boundary_transforms, graph, onnx


def build(model: Model, dtype: str) -> Built:
    """The port's graph (exactly what `write` saves, native_layout False) in an InferenceSession. to_native and
    to_numpy transpose between the canonical layout and the port's boundary; vjp and step are None (an
    InferenceSession has no gradients: limits.GRADIENT_REFUSALS)."""
    proto, notes = _graph(model, dtype, False)
    sess = ort_impl.session(proto)
    into, back = boundary_transforms(model)
    dt = np.dtype(dtype)
    in_dt = _input_dtype(model, dt)

    def to_native(x: np.ndarray) -> np.ndarray:
        return into(np.asarray(x, dtype=in_dt))

    def call(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {INPUT: x})[0]

    notes = [f"no gradients: {limits.GRADIENT_REFUSALS[VOICE]}", *notes]
    return Built(VOICE, dt.name, to_native, call, back, vjp=None, step=None, mode=ort_impl.MODE, notes=notes)


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


__all__ = ["build", "port_dtype", "write"]
