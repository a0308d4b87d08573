"""An ONNX model computing in float64, for the zoo: ONNX Runtime's CPU Conv is float32 only, so ONNX's float64 run is
the same graph with every float32 tensor made float64 (initializers, Constant values, Cast and dtype attributes,
the graph's declared types), run by the onnx package's reference evaluator (`onnx.reference.ReferenceEvaluator`:
NumPy, op by op, as the ONNX specification defines each op; a second implementation, not ONNX Runtime's). Float
attributes, float32 by the format, are read as the decimals their writer gave (`_decimal`), and four of the
evaluator's ops, which onnx 1.23 gets wrong, are replaced by the specification's (`_corrected`; each class says
what was measured).

reports/zoo_models.py runs it on each ONNX source, reports/zoo.py's loader on each ONNX port in the port's own
interpreter, where nnparity is not importable: this file imports only numpy and onnx, and is loaded there by its
path. It refuses (ValueError) what it cannot make float64 (a sparse or external float32 initializer left unloaded,
a float16 or bfloat16 tensor), and checks that every floating value the evaluator computed is float64: an op
that computed in float32 inside the float64 run would make it float32 evidence, so it is an error, not a result.
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun

F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE
NARROW = {TensorProto.FLOAT16: "float16", TensorProto.BFLOAT16: "bfloat16"}
TYPE_ATTRS = ("to", "dtype")
"""Attributes naming an element type (Cast's `to`; EyeLike's, RandomNormal's... `dtype`): float32 -> float64."""


def _tensor(t: TensorProto, where: str) -> TensorProto:
    if t.data_type in NARROW:
        raise ValueError(f"{where}: a {NARROW[t.data_type]} tensor; only float32 is made float64")
    if t.data_type != F32:
        return t
    if t.data_location == TensorProto.EXTERNAL:
        raise ValueError(f"{where}: its data is external and not loaded (onnx.load with load_external_data)")
    return numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name)


def _node(n: onnx.NodeProto) -> None:
    where = f"node {n.name or n.op_type!r} ({n.op_type})"
    for k, a in enumerate(n.attribute):
        if a.type == AttributeProto.TENSOR:
            a.t.CopyFrom(_tensor(a.t, where))
        elif a.type == AttributeProto.GRAPH:
            _graph(a.g)
        elif a.type == AttributeProto.GRAPHS:
            for g in a.graphs:
                _graph(g)
        elif a.type == AttributeProto.INT and a.name in TYPE_ATTRS and a.i == F32:
            a.i = F64
        elif a.type == AttributeProto.INT and a.name in TYPE_ATTRS and a.i in NARROW:
            raise ValueError(f"{where}: {a.name}={NARROW[a.i]}; only float32 is made float64")
        elif n.op_type == "Constant" and a.name in ("value_float", "value_floats"):  # float32 by definition
            v = np.float64(a.f) if a.name == "value_float" else np.asarray(a.floats, np.float64)
            n.attribute[k].CopyFrom(onnx.helper.make_attribute("value", numpy_helper.from_array(v)))


def _graph(g: onnx.GraphProto) -> None:
    if any(s.values.data_type in (F32, *NARROW) for s in g.sparse_initializer):
        raise ValueError(f"graph {g.name!r}: a floating sparse initializer; not made float64")
    for t in g.initializer:
        t.CopyFrom(_tensor(t, f"initializer {t.name!r}"))
    for vi in (*g.input, *g.output, *g.value_info):
        tt = vi.type.tensor_type
        if tt.elem_type == F32:
            tt.elem_type = F64
        elif tt.elem_type in NARROW:
            raise ValueError(f"value {vi.name!r}: {NARROW[tt.elem_type]}; only float32 is made float64")
    for n in g.node:
        _node(n)


def to_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose float32 tensors, types and casts are float64 (the model itself is not changed)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    _graph(m.graph)
    for f in m.functions:
        for n in f.node:
            _node(n)
    return m


def _attr(op: OpRun, name: str, default):
    """The node's attribute as `evaluator` set it, else the specification's default (read here: the evaluator fills
    a class given in `new_ops` with the newest schema's defaults, not the model's opset's)."""
    return getattr(op, name) if any(a.name == name for a in op.onnx_node.attribute) else default


def _decimal(v: float) -> float:
    """An ONNX float attribute (float32 by the format: 1e-5 reads 1.0000000656873453e-05) as the shortest decimal
    that is the same float32 (1e-05): the number its writer was given, as nnparity's ONNX importer reads it."""
    return float(str(np.float32(v)))


class BatchNormalization(OpRun):
    """As the specification has it for every opset: one output is inference, normalised by the running mean and
    variance. onnx 1.23's BatchNormalization_9 (opsets 9 to 13) normalises by the batch's own statistics whenever
    `momentum` is set, and its schema default sets it: measured on the onnx wheel's resnet50 (opset 9, the zoo's
    weights), the evaluator's float32 output 0.54 (relative) away from ONNX Runtime's; with this class 3.4e-5,
    float32's rounding (ONNX Runtime's float32 output is 2.3e-5 from the float64 run)."""

    op_domain = ""

    def _run(self, x, scale, bias, mean, var, **_):
        node = self.onnx_node
        if len(node.output) != 1 or _attr(self, "training_mode", 0):
            raise ValueError(f"BatchNormalization {node.name!r} in training mode: not an inference graph")
        shape = (-1,) + (1,) * (x.ndim - 2)
        scale, bias, mean, var = (np.reshape(v, shape) for v in (scale, bias, mean, var))
        return ((scale * (x - mean) / np.sqrt(var + _attr(self, "epsilon", 1e-5)) + bias).astype(x.dtype),)


class LRN(OpRun):
    """The specification's sum over the channels c - floor((size-1)/2) .. c + ceil((size-1)/2). onnx 1.23's LRN
    loops `for c in range(x.shape[0])`, the batch, so every channel from the batch size on is divided by bias**beta
    alone: measured on the onnx wheel's bvlc_alexnet (batch 3, the zoo's weights), its float64 output 9.5e-4
    (relative) from ONNX Runtime's float32 one."""

    op_domain = ""

    def _run(self, x, **_):
        size = _attr(self, "size", None)
        alpha, beta, bias = (_attr(self, k, d) for k, d in (("alpha", 1e-4), ("beta", 0.75), ("bias", 1.0)))
        lo, hi = (size - 1) // 2, size // 2  # size // 2 == ceil((size - 1) / 2)
        squares = np.pad(x * x, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
        square_sum = sum(squares[:, i : i + x.shape[1]] for i in range(size))
        return ((x / (bias + (alpha / size) * square_sum) ** beta).astype(x.dtype),)


class MaxPool(OpRun):
    """Output size floor((in + pads - dilation (k - 1) - 1) / stride) + 1, or with ceil_mode the ceiling, less one
    where the last window would start past the input and its left pad (the specification's rule, and ONNX Runtime's
    and torch's); the pad never wins a max. onnx 1.23's MaxPool with ceil_mode gives a 3x3, stride-1, pad-1 pool of
    an 8x8 map a 10x10 output (ONNX Runtime: 8x8), which broke torchvision googlenet's ONNX port (a Concat of 8 and
    10 wide maps)."""

    op_domain = ""

    def _run(self, x, **_):
        name = self.onnx_node.name
        if len(self.onnx_node.output) > 1:
            raise ValueError(f"MaxPool {name!r}: its Indices output is not computed here")
        kernel = list(_attr(self, "kernel_shape", None))
        nd, spatial = len(kernel), x.shape[2:]
        strides, dil = (list(_attr(self, k, None) or [1] * nd) for k in ("strides", "dilations"))
        pads = list(_attr(self, "pads", None) or [0] * (2 * nd))
        auto = _attr(self, "auto_pad", "NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else auto
        span = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max(0, (-(-n // s) - 1) * s + e - n) for n, s, e in zip(spatial, strides, span)]
            head = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
            pads = head + [t - h for t, h in zip(total, head)]
        elif auto == "VALID":
            pads = [0] * (2 * nd)
        out = []
        for i, (n, s, e) in enumerate(zip(spatial, strides, span)):
            room = n + pads[i] + pads[i + nd] - e
            o = (-(-room // s) if _attr(self, "ceil_mode", 0) else room // s) + 1
            out.append(o - 1 if (o - 1) * s >= n + pads[i] else o)
        extra = [max(0, (o - 1) * s + e - (n + pads[i] + pads[i + nd]))
                 for i, (o, s, e, n) in enumerate(zip(out, strides, span, spatial))]  # fmt: skip
        xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[i + nd] + extra[i]) for i in range(nd)],
                    constant_values=-np.inf)  # fmt: skip
        y = np.full((*x.shape[:2], *out), -np.inf, x.dtype)
        for offset in itertools.product(*(range(k) for k in kernel)):
            window = tuple(slice(j * d, j * d + s * (o - 1) + 1, s) for j, d, s, o in zip(offset, dil, strides, out))
            y = np.maximum(y, xp[(slice(None), slice(None), *window)])
        return (y,)


class _Coerced(OpRun):
    """Softmax and LogSoftmax before opset 13: the input seen as 2-D, (prod(shape[:axis]), prod(shape[axis:])),
    axis 1 by default, normalised along the second. onnx 1.23's evaluator uses opset 13's definition (one axis,
    default -1) at every opset: on the onnx wheel's squeezenet (opset 9, a Softmax of an (N, C, 1, 1) map) every
    output was 1.0."""

    op_domain = ""
    log = False

    def _run(self, x, **_):
        axis = _attr(self, "axis", 1) % x.ndim
        flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
        shifted = flat - flat.max(axis=1, keepdims=True)
        logsum = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        y = shifted - logsum if self.log else np.exp(shifted - logsum)
        return (y.reshape(x.shape).astype(x.dtype),)


class Softmax(_Coerced):
    pass


class LogSoftmax(_Coerced):
    log = True


def _corrected(opset: int) -> list[type[OpRun]]:
    """The evaluator's ops this file replaces for a model of this default-domain opset (each class says why)."""
    return [BatchNormalization, LRN, MaxPool, *((Softmax, LogSoftmax) if opset < 13 else ())]


def evaluator(model: onnx.ModelProto) -> ReferenceEvaluator:
    """onnx's reference evaluator for `model`, with this file's ops in place of the evaluator's own."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    ev = ReferenceEvaluator(model, new_ops=_corrected(opset))
    for op in ev.rt_nodes_:  # float attributes as decimals (_decimal): the top graph's nodes, where the zoo has them
        for a in op.onnx_node.attribute:
            if a.type == AttributeProto.FLOAT:
                setattr(op, a.name, _decimal(a.f))
            elif a.type == AttributeProto.FLOATS:
                setattr(op, a.name, [_decimal(v) for v in a.floats])
    return ev


def run_float64(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    """The model's first output on `x` (its first input), computed in float64 by onnx's reference evaluator."""
    model = onnx.load(model) if isinstance(model, str) else model
    m = to_float64(model)
    name = m.graph.input[0].name
    every = evaluator(m).run(None, {name: np.asarray(x, np.float64)}, intermediate=True)
    narrow = sorted(k for k, v in every.items()
                    if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype != np.float64)  # fmt: skip
    if narrow:
        raise ValueError(f"the float64 run computed {every[narrow[0]].dtype} at {narrow[0]!r} "
                         f"({len(narrow)} values not float64)")  # fmt: skip
    return every[m.graph.output[0].name]


__all__ = ["evaluator", "run_float64", "to_float64"]
