"""The user's own model: the original .onnx file in ONNX Runtime, canonical in and out, and every description layer's
output read off the same graph (each layer's end tensor added to the graph's outputs)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ... import frameworks
from ...contract.spec import ShapeError
from .values import Value

helper = frameworks.load("onnx").helper


class Runner:
    """The original file in ONNX Runtime: canonical in (transposed to the graph's layout), canonical out.
    layer_call is None: a layer of an ONNX graph is not a unit ONNX Runtime can call alone (its nodes share the
    graph with folded constants and layout Transposes); the certificate's isolated check of an ONNX source runs
    the description's own onnxruntime voice (impls/ports/onnx_port.py) instead."""

    def __init__(self, model: Any, inp: Value, out: Value, ends: list[Value], dtype: str, batch: int | None = None):
        self.model, self.inp, self.out, self.ends, self.dtype, self.batch = model, inp, out, ends, dtype, batch
        self._session = self._probe = None

    def _run(self, session: Any, x: np.ndarray, values: list[Value]) -> list[np.ndarray]:
        """The graph on x; where its batch is fixed (a graph exported from one sample), fed that many samples at a
        time, each output's pieces joined along its batch axis."""
        x = np.asarray(x, self.dtype)
        n = x.shape[0]
        if self.batch is None or n == self.batch:
            return session.run(None, {self.inp.name: self.inp.from_canonical(x)})
        if n % self.batch:
            raise ShapeError(f"the graph's batch is fixed at {self.batch}: {n} inputs do not split into it")
        parts = [session.run(None, {self.inp.name: self.inp.from_canonical(c)}) for c in np.split(x, n // self.batch)]
        return [np.concatenate(outs, axis=v.axes.index(0)) for outs, v in zip(zip(*parts), values, strict=True)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        from ...runtime import ort_impl

        if self._session is None:
            self._session = ort_impl.session(self.model)
        return self.out.to_canonical(self._run(self._session, x, [self.out])[0])

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every description layer's output for one input, in one run: each layer's end tensor added to the
        graph's outputs."""
        from ...runtime import ort_impl

        if self._probe is None:
            m = copy.deepcopy(self.model)
            names, values = [o.name for o in m.graph.output], [self.out]
            elem = m.graph.input[0].type.tensor_type.elem_type
            if elem in (6, 7):  # token ids in: every layer's output is the graph output's float (an embedding's on)
                elem = m.graph.output[0].type.tensor_type.elem_type
            for e in self.ends:
                if e.name not in names:
                    m.graph.output.append(helper.make_tensor_value_info(e.name, elem, None))
                    names.append(e.name)
                    values.append(e)
            self._probe = (ort_impl.session(m), names, values)
        session, names, values = self._probe
        outs = dict(zip(names, self._run(session, x, values), strict=True))
        return [e.to_canonical(outs[e.name]) for e in self.ends]


__all__ = ["Runner"]
