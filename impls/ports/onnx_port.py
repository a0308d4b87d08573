"""The ONNX port (voice "onnxruntime"): one ONNX graph for a whole model description, run by ONNX Runtime.

    proto = graph(model, "float32")                  # a ModelProto, weights as initializers, batch symbolic
    write(model, Path("net.onnx"))                    # what `nnparity port MODEL --to onnx -o net.onnx` saves
    built = build(model, "float32")                   # an InferenceSession on the same graph: canonical in and out

The graph computes in ONNX's own layouts, NCHW images and time-major (T, B, F) GRU sequences; each layer's weights
go through impls/convert.py (gru_to_onnx, hwio_to_oihw, depthwise_to_grouped, pads_to_onnx,
flatten_rows_nhwc_to_nchw), the GRU's nodes are impls/runtime/onnx_graphs.gru_nodes. At the boundary the port keeps
the source's layout (model.boundary: NHWC for "channels_last", NCHW for "channels_first"; sequences (B, T, F); a
Flatten of a map that the model returns in the source's element order, model.flattened_output), with the Transposes
inside the graph; native_layout=True drops them (NCHW images, (T, B, F) sequences in and out) and the
graph's doc_string says so. Dropout is left out (the identity at inference), and so is a linear Activation layer.

Nodes are named as torch.onnx.export names them, "/<layer name>/<op>", so impls/importers/onnx_import.py reads the
description's layer names (and which activation belongs to which layer) back. ONNX Runtime's CPU GRU, Conv and
AveragePool kernels are float32 only, and an InferenceSession has no gradients: both declared in
impls/contract/limits.py and refused with that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import GRU_VARIANTS, convert, frameworks
from ..contract import limits, spec
from ..model.description import Model
from ..model.layers import conv2d as conv2d_layer
from ..model.layers import gru as gru_layer
from ..model.layers import pool2d as pool2d_layer
from ..model.layers import spec_of
from ..model.voices import Built
from ..runtime import onnx_graphs, ort_impl

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

VOICE = "onnxruntime"
DTYPES = ("float32", "float64")
INPUT, OUTPUT = "input", "output"
BATCH = "batch"  # the symbolic batch dimension's name
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax"}
_ELEMENTWISE = ("dropout", "activation")  # layers that keep a flattened vector's element order meaningless
_DTYPE_OPS = {"gru": "gru", "conv2d": "conv2d", "depthwise_conv2d": "conv2d", "avg_pool2d": "avg_pool2d"}
"""Layer kind -> the op whose ONNX Runtime kernel limits.DTYPE_REFUSALS declares (depthwise is a grouped Conv)."""

# Physical layouts of the value flowing through the graph (the description's value is always canonical):
CANON, NCHW, TBF = "canonical", "nchw", "tbf"


def refusal(model: Model, dtype: str) -> str | None:
    """Why the ONNX port cannot express `model` in `dtype` in ONNX Runtime, naming the layer; None when it can."""
    if dtype not in DTYPES:
        return f"the ONNX port is built in {' or '.join(DTYPES)}; got dtype {dtype!r}"
    for i, layer in enumerate(model.layers):
        opts = spec_of(layer.kind, layer.label(i)).options(layer.options)
        if layer.kind == "gru" and opts["variant"] not in GRU_VARIANTS[VOICE]:
            return (f"{layer.label(i)}: the ONNX GRU operator computes {' and '.join(GRU_VARIANTS[VOICE])} only "
                    f"(linear_before_reset 0 and 1), not the variant {opts['variant']!r}")  # fmt: skip
        op = _DTYPE_OPS.get(layer.kind)
        why = limits.refusal(VOICE, op, dtype) if op else None
        if why:
            return f"{layer.label(i)}: {why}"
    return None


# --------------------------------------------------------------------------- the graph


class _Graph:
    """The nodes and initializers of one port, with the physical layout of the value being built."""

    def __init__(self, model: Model, dtype: str, native_layout: bool):
        self.model, self.dtype, self.native = model, np.dtype(dtype), native_layout
        self.nodes: list[Any] = []
        self.init: dict[str, np.ndarray] = {}
        self.value, self.layout, self.rows_nchw = INPUT, _boundary_layout(model, native_layout, len(model.input_shape) + 1), None
        self.scope = "input"
        self.notes: list[str] = []

    def weight(self, name: str, a: np.ndarray) -> str:
        key = f"{self.scope}.{name}"
        self.init[key] = np.ascontiguousarray(np.asarray(a, dtype=self.dtype))
        return key

    def const(self, name: str, values: Any) -> str:
        key = f"{self.scope}.{name}"
        self.init[key] = np.asarray(values, dtype=np.int64)
        return key

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        k = sum(n.name.startswith(f"/{self.scope}/{op}") for n in self.nodes)
        name = f"/{self.scope}/{op}" + (f"_{k}" if k else "")
        outs = [f"{name}_output_{j}" for j in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def apply(self, op: str, *inputs: str, **attrs: Any) -> None:
        self.value = self.node(op, [self.value, *inputs], **attrs)[0]

    def to(self, layout: str) -> None:
        """Transpose the value to `layout` (images: NHWC <-> NCHW; sequences: (B, T, F) <-> (T, B, F))."""
        if layout == self.layout:
            return
        perm = {(CANON, NCHW): onnx_graphs.NHWC_TO_NCHW, (NCHW, CANON): onnx_graphs.NCHW_TO_NHWC,
                (CANON, TBF): onnx_graphs.BTF_TO_TBF, (TBF, CANON): onnx_graphs.BTF_TO_TBF}[(self.layout, layout)]  # fmt: skip
        self.apply("Transpose", perm=list(perm))
        self.layout = layout

    def activation(self, name: str, rank: int) -> None:
        if name == "linear":
            return
        attrs = {}
        if name == "softmax":  # the canonical last axis: the channels, axis 1 of an NCHW image
            attrs["axis"] = 1 if (rank == 4 and self.layout == NCHW) else -1
        self.apply(_ACTIVATION_OPS[name], **attrs)


def _boundary_layout(model: Model, native_layout: bool, rank: int) -> str:
    """The layout a rank-`rank` tensor has at the port's boundary."""
    if rank == 4:
        return NCHW if native_layout or model.boundary == "channels_first" else CANON
    return TBF if rank == 3 and native_layout else CANON


def _dense_follows(model: Model, i: int) -> bool:
    """Layer i is a Flatten whose output reaches a Dense through element-wise layers only."""
    for layer in model.layers[i + 1 :]:
        if layer.kind == "dense":
            return True
        if layer.kind not in _ELEMENTWISE:
            return False
    return False


def _gru(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(TBF)  # ONNX's GRU is layout 0: X (T, B, I)
    w = convert.gru_to_onnx(gru_layer.weights(layer.weights))
    names = [g.weight(k, w[k]) for k in ("W", "R", "B")]
    nodes, y, h = onnx_graphs.gru_nodes(g.value, f"/{layer.name}/", *names, None, opts["units"], opts["variant"])
    for k, n in enumerate(nodes):  # the torch.onnx.export naming, so the importer reads the layer name back
        n.name = f"/{layer.name}/{n.op_type}" + (f"_{k}" if n.op_type != "GRU" else "")
    g.nodes += nodes
    if opts["return_sequences"]:
        g.value, g.layout = y, TBF  # Y (T, 1, B, H) squeezed: (T, B, H)
    else:
        g.value, g.layout = h, CANON  # Y_h (1, B, H) squeezed: (B, H), the last state


def _conv(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(NCHW)
    w = spec_of(layer.kind).op_weights(opts, dict(layer.weights))  # depthwise: the grouped HWIO kernel; a zero bias if none
    kernel = np.asarray(w["kernel"])
    groups = shape[3] if layer.kind == "depthwise_conv2d" else opts["groups"]
    geo = spec.check_conv2d(shape, kernel.shape, (kernel.shape[3],), **conv2d_layer.geometry_kwargs({**opts, "groups": groups}))
    inputs = [g.weight("weight", convert.hwio_to_oihw(kernel))]
    if opts["use_bias"]:
        inputs.append(g.weight("bias", w["bias"]))
    g.apply("Conv", *inputs, kernel_shape=[geo.KH, geo.KW], strides=list(geo.stride), dilations=list(geo.dilation),
            group=int(groups), pads=convert.pads_to_onnx(geo.pads))  # 'same' as its explicit pads  # fmt: skip
    g.activation(opts["activation"], 4)


def _pool(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(NCHW)
    geo = spec.check_pool2d(shape, **pool2d_layer.pool_kwargs(opts), op=layer.kind)
    attrs = {"kernel_shape": list(geo.pool), "strides": list(geo.stride), "pads": convert.pads_to_onnx(geo.pads)}
    if layer.kind == "avg_pool2d":
        g.apply("AveragePool", count_include_pad=int(opts["count_include_pad"]), **attrs)
    else:
        g.apply("MaxPool", **attrs)  # ONNX's MaxPool never lets a pad win, as the contract's


def _pad(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Zeros around H and W, in the value's own layout (no Transpose is added for it). Two ONNX Runtime 1.31 graph
    optimisations decide the form (each measured in tests/test_port_onnx.py):
    - PadFusion folds a plain Pad into a following MaxPool's or AveragePool's pads, where a padded cell never wins a
      max (zeros that should win are lost: -1 where 0 is right) and where the count differs; a Pad that names its
      `axes` is left alone, so before a pool the Pad gives axes (H and W);
    - the transpose optimizer pushes a Transpose through a Pad with `axes` and rebuilds its pads with an 8-element
      gather of a 4-element list (it fails: 'idx=4 must be within [-4,3]'), so everywhere else the Pad lists all
      four axes and no `axes` input; a following Conv may fold it in, correctly (a Conv pads with zeros)."""
    (t, b), (l, r) = opts["padding"]
    nchw = g.layout == NCHW
    zero = g.weight("value", np.zeros((), g.dtype))
    following = g.model.layers[i + 1].kind if i + 1 < len(g.model.layers) else None
    if following in ("max_pool2d", "avg_pool2d"):
        axes = [2, 3] if nchw else [1, 2]
        g.apply("Pad", g.const("pads", [t, l, b, r]), zero, g.const("axes", axes), mode="constant")  # begins, ends
        return
    pads = [0, 0, t, l, 0, 0, b, r] if nchw else [0, t, l, 0, 0, b, r, 0]
    g.apply("Pad", g.const("pads", pads), zero, mode="constant")


def _flatten(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    # An NCHW image flattens (c, h, w): where a Dense follows (through element-wise layers only) the graph flattens
    # NCHW as torch does and that Dense's rows are permuted (convert.flatten_rows_nhwc_to_nchw); anywhere else it
    # transposes back to NHWC first, so the flattened vector is the description's (h, w, c) one; except where the
    # model returns it to a channels_first source, whose order is (c, h, w) (model.flattened_output).
    if len(shape) == 4 and g.layout == NCHW and _dense_follows(g.model, i):
        g.rows_nchw = tuple(shape[1:])
    elif len(shape) == 4 and not g.native and g.model.flattened_output() is not None:
        g.to(NCHW)
    else:
        g.to(CANON)
    g.apply("Flatten", axis=1)
    g.layout = CANON  # (B, n): the element order is rows_nchw's business


def _dense(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    kernel = np.asarray(layer.weights["kernel"])
    if g.rows_nchw is not None:
        kernel, g.rows_nchw = convert.flatten_rows_nhwc_to_nchw(kernel, g.rows_nchw), None
        g.notes.append(f"{layer.name}: the kernel's rows permuted for the NCHW flatten before it (convert.flatten_rows_nhwc_to_nchw)")
    bias = [g.weight("bias", layer.weights["bias"])] if opts["use_bias"] else []
    if len(shape) == 2:
        g.apply("Gemm", g.weight("weight", kernel), *bias)  # transB 0: the canonical (in, out) kernel
    else:  # the last axis of (B, T, in) or (T, B, in): either layout
        g.apply("MatMul", g.weight("weight", kernel))
        if bias:
            g.apply("Add", *bias)
    g.activation(opts["activation"], len(shape))


def _activation(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.activation(opts["activation"], len(shape))


def _dropout(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """The identity at inference: no node."""
    g.notes.append(f"{layer.name}: dropout left out (the identity at inference)")


LAYERS = {"gru": _gru, "conv2d": _conv, "depthwise_conv2d": _conv, "max_pool2d": _pool, "avg_pool2d": _pool,
          "zero_pad2d": _pad, "flatten": _flatten, "dense": _dense, "activation": _activation, "dropout": _dropout}  # fmt: skip
"""Layer kind -> the function adding its nodes; every kind of impls.model.layers.KINDS."""


def _layout_words(rank: int, layout: str) -> str:
    return {(4, CANON): "NHWC images (B, H, W, C)", (4, NCHW): "NCHW images (B, C, H, W)",
            (3, CANON): "sequences (B, T, F)", (3, TBF): "time-major sequences (T, B, F)"}.get((rank, layout), f"rank-{rank} (B, ...)")  # fmt: skip


def graph(model: Model, dtype: str = "float32", native_layout: bool = False) -> Any:
    """The whole model as one ONNX ModelProto (opset onnx_graphs.OPSET), weights as initializers, input "input" and
    output "output" with a symbolic batch. Raises limits.Refused where `refusal` says why not."""
    return _graph(model, dtype, native_layout)[0]


def _graph(model: Model, dtype: str, native_layout: bool) -> tuple[Any, list[str]]:
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    shapes = model.check(3).shapes(3)
    g = _Graph(model, dtype, native_layout)
    in_layout = g.layout
    for i, layer in enumerate(model.layers):
        g.scope = layer.name
        LAYERS[layer.kind](g, i, layer, spec_of(layer.kind).options(layer.options), shapes[i])
    out_rank = len(shapes[-1])
    g.scope = "output"
    g.to(_boundary_layout(model, native_layout, out_rank))
    out_layout = g.layout
    if g.value == INPUT:  # nothing computed (dropout only): still a graph from input to output
        g.apply("Identity")
    g.nodes[-1].output[list(g.nodes[-1].output).index(g.value)] = OUTPUT

    g.nodes = live_nodes(g.nodes, [OUTPUT])  # gru_nodes squeezes both Y and Y_h: the unused one goes
    m = onnx_graphs.model(g.nodes, {INPUT: (g.dtype, _symbolic(shapes[0], in_layout))}, {OUTPUT: g.dtype}, model.name, g.init)
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info(
        OUTPUT, helper.np_dtype_to_tensor_dtype(g.dtype), list(_symbolic(shapes[-1], out_layout))))
    where = "native layout (ONNX's own)" if native_layout else f"the source's layout ({model.boundary})"
    m.doc_string = m.graph.doc_string = (
        f"nnparity port of {model.name!r} (source: {model.source}), {np.dtype(dtype).name}, {where}: takes "
        f"{_layout_words(len(shapes[0]), in_layout)}, returns {_layout_words(out_rank, out_layout)}; batch symbolic.")
    onnx.checker.check_model(m)
    return m, g.notes


def live_nodes(nodes: list, outputs: list[str]) -> list:
    """The nodes that `outputs` depend on, in their order (dead nodes dropped)."""
    need, keep = set(outputs), []
    for n in reversed(nodes):
        if need.intersection(n.output):
            keep.append(n)
            need.update(t for t in n.input if t)
    return keep[::-1]


def _symbolic(shape: tuple, layout: str) -> tuple:
    """A canonical (batch-first) shape as the graph's dims in `layout`, the batch symbolic."""
    dims: list[Any] = [BATCH, *shape[1:]]
    if layout == NCHW:
        return tuple(dims[i] for i in onnx_graphs.NHWC_TO_NCHW)
    if layout == TBF:
        return tuple(dims[i] for i in onnx_graphs.BTF_TO_TBF)
    return tuple(dims)


def boundary_transforms(model: Model, native_layout: bool = False) -> tuple[Any, Any]:
    """(canonical -> the port's input layout, the port's output layout -> canonical), NumPy."""
    rank_in, rank_out = len(model.input_shape) + 1, len(model.shapes(1)[-1])
    perm_in = {NCHW: onnx_graphs.NHWC_TO_NCHW, TBF: onnx_graphs.BTF_TO_TBF}.get(_boundary_layout(model, native_layout, rank_in))
    perm_out = {NCHW: onnx_graphs.NCHW_TO_NHWC, TBF: onnx_graphs.BTF_TO_TBF}.get(_boundary_layout(model, native_layout, rank_out))
    flat = None if native_layout else model.flattened_output()  # features out in the source's (c, h, w) order

    def into(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(x, perm_in)) if perm_in else x

    def back(y: np.ndarray) -> np.ndarray:
        if flat:
            return convert.features_nchw_to_nhwc(y, flat)
        return np.ascontiguousarray(np.transpose(y, perm_out)) if perm_out else y

    return into, back


# --------------------------------------------------------------------------- the voice and the port


def build(model: Model, dtype: str) -> Built:
    """The port's graph (exactly what `write` saves, native_layout False) in an InferenceSession. to_native and
    to_numpy transpose between the canonical layout and the port's boundary; vjp and step are None (an
    InferenceSession has no gradients: limits.GRADIENT_REFUSALS)."""
    proto, notes = _graph(model, dtype, False)
    sess = ort_impl.session(proto)
    into, back = boundary_transforms(model)
    dt = np.dtype(dtype)

    def to_native(x: np.ndarray) -> np.ndarray:
        return into(np.asarray(x, dtype=dt))

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


__all__ = ["DTYPES", "INPUT", "LAYERS", "OUTPUT", "boundary_transforms", "build", "graph", "live_nodes", "port_dtype", "refusal", "write"]
