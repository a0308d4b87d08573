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

Sequences: LSTM and GRU are ONNX's own operators (convert.lstm_to_onnx / gru_to_onnx), forward or bidirectional, the
halves merged from Y (T, D, B, H) / Y_h (D, B, H); an embedding is a Gather on int64/int32 ids (ONNX wraps a negative
id: the voice refuses ids outside the table at its boundary, Model.check_input, the written file cannot); masking and
take_step are a few nodes. Where a padding mask reaches a recurrent layer (Model.mask_sources) the graph computes its
sequence_lens from the mask source's input; ONNX's zeros at padded steps are padded_outputs "zero", "hold" is
gathered exactly. Post-padding cannot be checked inside the graph: the doc_string says so.

Graphs (issue 18): each layer's output is a named value (its tensor and physical layout); a layer reads its sources'
values; add and concatenate bring every input to the first one's layout and Concat's canonical axis is translated to
it (the channels are axis 1 of an NCHW / NCW value). conv1d is ONNX's Conv on NCW (kernel (F, C/groups, K); "same"
and "causal" as explicit pads); a 3-D input or output is NCW at a channels_first boundary where it is a feature map
(is_map: read by a conv1d, batch_norm or global pool, or made by one), else (B, T, F). batch_norm is
BatchNormalization (inference: the moving statistics; momentum written though only training mode reads it),
layer_norm is LayerNormalization(axis=-1) on a channels-last value (a channels-first map is transposed first),
global pools GlobalAveragePool / GlobalMaxPool + Flatten (float32) or ReduceMean / ReduceMax (float64: ONNX Runtime
1.31 has no float64 global pool kernel; BatchNormalization and LayerNormalization it has, measured), reshape and
permute on the canonical (channels-last) value.

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
from ..model.layers import conv1d as conv1d_layer
from ..model.layers import conv2d as conv2d_layer
from ..model.layers import gru as gru_layer
from ..model.layers import lstm as lstm_layer
from ..model.layers import pool2d as pool2d_layer
from ..model.layers import rnn, spec_of
from ..model.voices import Built
from ..runtime import onnx_graphs, ort_impl
from ..runtime.onnx_graphs import live_nodes

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

VOICE = "onnxruntime"
DTYPES = ("float32", "float64")
INPUT, OUTPUT = "input", "output"
BATCH = "batch"  # the symbolic batch dimension's name
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax"}
_ELEMENTWISE = ("dropout", "activation")  # layers that keep a flattened vector's element order meaningless
_DTYPE_OPS = {"gru": "gru", "lstm": "lstm", "conv2d": "conv2d", "depthwise_conv2d": "conv2d", "avg_pool2d": "avg_pool2d",
              "conv1d": "conv2d"}
"""Layer kind -> the op whose ONNX Runtime kernel limits.DTYPE_REFUSALS declares (depthwise is a grouped Conv, a 1-D
convolution the same Conv kernel: measured, ONNX Runtime 1.31 has no float64 Conv for 1-D inputs either).
BatchNormalization and LayerNormalization run in float64 (measured); GlobalAveragePool / GlobalMaxPool do not
('Could not find an implementation'), so in float64 a global pool is ReduceMean / ReduceMax over the spatial axes."""


# Physical layouts of the value flowing through the graph (the description's value is always canonical):
CANON, NCHW, TBF = "canonical", "nchw", "tbf"
"""NCHW is channels first at any rank: (B, C, H, W) images and (B, C, L) 1-D maps (ONNX's NCW)."""


def _perm(layout: str, rank: int) -> tuple[int, ...]:
    """Physical axis k of a value in `layout` holds canonical axis perm[k]."""
    if layout == NCHW and rank >= 3:
        return (0, rank - 1, *range(1, rank - 1))
    if layout == TBF and rank == 3:
        return (1, 0, 2)
    return tuple(range(rank))


def _physical_axis(layout: str, rank: int, axis: int) -> int:
    """The physical axis holding canonical `axis` (a Concat's axis in the value's layout)."""
    return _perm(layout, rank).index(axis % rank)


def is_map(model: Model, name: str) -> bool:
    """Model.is_map: the rule the torch and Flax ports, the importers and nnparity's --input-shape share."""
    return model.is_map(name)


def refusal(model: Model, dtype: str) -> str | None:
    """Why the ONNX port cannot express `model` in `dtype` in ONNX Runtime, naming the layer; None when it can."""
    if dtype not in DTYPES:
        return f"the ONNX port is built in {' or '.join(DTYPES)}; got dtype {dtype!r}"
    for i, layer in enumerate(model.layers):
        opts = spec_of(layer.kind, layer.label(i)).options(layer.options)
        if layer.kind == "gru" and opts["variant"] not in GRU_VARIANTS[VOICE]:
            return (f"{layer.label(i)}: the ONNX GRU operator computes {' and '.join(GRU_VARIANTS[VOICE])} only "
                    f"(linear_before_reset 0 and 1), not the variant {opts['variant']!r}")  # fmt: skip
        op = _DTYPE_OPS.get(layer.kind, layer.kind)  # a kind with no op of its own is declared by kind (limits.py)
        why = limits.refusal(VOICE, op, dtype)
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
        self.value, self.layout, self.rows_nchw = INPUT, _boundary_layout(model, native_layout, len(model.input_shape) + 1, INPUT), None
        self.values: dict[str, tuple[str, str, Any]] = {INPUT: (self.value, self.layout, None)}  # layer -> (tensor, layout, rows)
        self.scope = "input"
        self.notes: list[str] = []
        self.lens: dict[int, str] = {}  # mask source layer index -> its (B,) int32 valid-step counts (sequence_lens)
        self.sources = model.mask_sources()

    def weight(self, name: str, a: np.ndarray) -> str:
        key = f"{self.scope}.{name}"
        self.init[key] = np.ascontiguousarray(np.asarray(a, dtype=self.dtype))
        return key

    def const(self, name: str, values: Any, dtype: Any = np.int64) -> str:
        key = f"{self.scope}.{name}"
        self.init[key] = np.asarray(values, dtype=dtype)
        return key

    def node(self, op: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> list[str]:
        k = sum(n.name.startswith(f"/{self.scope}/{op}") for n in self.nodes)
        name = f"/{self.scope}/{op}" + (f"_{k}" if k else "")
        outs = [f"{name}_output_{j}" for j in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs

    def apply(self, op: str, *inputs: str, **attrs: Any) -> None:
        self.value = self.node(op, [self.value, *inputs], **attrs)[0]

    def to(self, layout: str, rank: int | None = None) -> None:
        """Transpose the value to `layout` (images: NHWC <-> NCHW; 1-D maps NWC <-> NCW; sequences (B, T, F) <->
        (T, B, F)). `rank`: the value's rank (4 where not given, or 3 for a sequence's TBF)."""
        if layout == self.layout:
            return
        rank = rank or (3 if TBF in (layout, self.layout) else 4)
        src, dst = _perm(self.layout, rank), _perm(layout, rank)
        perm = [src.index(c) for c in dst]
        if perm != list(range(rank)):
            self.apply("Transpose", perm=perm)
        self.layout = layout

    def read(self, name: str) -> None:
        """Make layer `name`'s output (or the input) the value being built."""
        self.value, self.layout, self.rows_nchw = self.values[name]

    def activation(self, name: str, rank: int) -> None:
        if name == "linear":
            return
        attrs = {}
        if name == "softmax":  # the canonical last axis: the channels, axis 1 of an NCHW image or NCW map
            attrs["axis"] = 1 if (rank >= 3 and self.layout == NCHW) else -1
        self.apply(_ACTIVATION_OPS[name], **attrs)


def _boundary_layout(model: Model, native_layout: bool, rank: int, name: str) -> str:
    """The layout the rank-`rank` tensor `name` (INPUT or the last layer) has at the port's boundary."""
    if rank == 4:
        return NCHW if native_layout or model.boundary == "channels_first" else CANON
    if rank == 3 and is_map(model, name):
        return NCHW if native_layout or model.boundary == "channels_first" else CANON
    return TBF if rank == 3 and native_layout else CANON


def _dense_follows(model: Model, i: int) -> bool:
    """Layer i is a Flatten whose output reaches one Dense through element-wise layers only (each read once)."""
    while True:
        readers = model.consumers(model.layers[i].name)
        if len(readers) != 1:
            return False
        i = readers[0]
        if model.layers[i].kind == "dense":
            return True
        if model.layers[i].kind not in _ELEMENTWISE:
            return False


def _recurrent(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """One ONNX LSTM or GRU node (layout 0, X (T, B, I)), direction "forward" or "bidirectional"; Y (T, D, B, H) and
    Y_h (D, B, H) merged as the description says. Where a padding mask reaches the layer (Model.mask_sources) its
    sequence_lens are the mask source's valid-step counts, computed in the graph: ONNX's LSTM and GRU then give zeros
    at padded steps (padded_outputs "zero"; the backward cell runs each row's valid steps last-first) and the last
    valid state in Y_h (measured in ONNX Runtime 1.31: a row of length 0 gives zeros in Y and Y_h, as the contract).
    padded_outputs "hold" is emulated exactly: the forward half's Y gathered at min(t, length - 1) (GatherElements)."""
    g.to(TBF, 3)
    H, dirs = opts["units"], rnn.directions(opts)
    cells = [rnn.cell_weights(layer.weights, s) for s in dirs]
    if layer.kind == "lstm":
        w = convert.lstm_to_onnx([lstm_layer.weights(c) for c in cells])
        attrs: dict = {}
    else:
        per = [convert.gru_to_onnx(gru_layer.weights(c)) for c in cells]
        w = {k: np.concatenate([d[k] for d in per]) for k in ("W", "R", "B")}
        attrs = {"linear_before_reset": onnx_graphs.LINEAR_BEFORE_RESET[opts["variant"]]}
    src = g.sources[i]
    lens = g.lens[src] if src is not None else ""
    op = "LSTM" if layer.kind == "lstm" else "GRU"
    y, y_h = g.node(op, [g.value, *(g.weight(k, w[k]) for k in ("W", "R", "B")), lens], n_out=2, hidden_size=H,
                    direction=opts["direction"], **attrs)[:2]
    D = len(dirs)
    concat = D == 2 and opts["merge_mode"] == "concat"
    if opts["return_sequences"]:  # Y (T, D, B, H)
        if concat and not (src is not None and opts["padded_outputs"] == "hold"):  # torch.onnx.export's own form
            both = g.node("Transpose", [y], perm=[0, 2, 1, 3])[0]  # (T, B, D, H)
            g.value, g.layout = g.node("Reshape", [both, g.const("shape_seq", [0, 0, D * H])])[0], TBF
            return
        parts = ([g.node("Squeeze", [y, g.const("ax1", [1])])[0]] if D == 1
                 else [g.node("Squeeze", [p_, g.const("ax1", [1])])[0]
                       for p_ in g.node("Split", [y], n_out=2, axis=1, num_outputs=2)])
        if src is not None and opts["padded_outputs"] == "hold":
            parts[0] = _hold(g, parts[0], lens, shape[1])
            g.notes.append(f"{layer.name}: padded_outputs 'hold' as the forward half's last valid step, gathered "
                           "(GatherElements at min(t, length - 1)) from ONNX's zero-padded Y")
        g.value, g.layout = _merged(g, parts, opts["merge_mode"]), TBF
    elif concat:  # Y_h (2, B, H) -> (B, 2, H) -> (B, 2H): forward final state, then the backward one (after position 0)
        both = g.node("Transpose", [y_h], perm=[1, 0, 2])[0]
        g.value, g.layout = g.node("Reshape", [both, g.const("shape_state", [0, D * H])])[0], CANON
    else:  # Y_h (D, B, H): the final states, the backward one after position 0
        parts = [g.node("Squeeze", [p_, g.const("ax0", [0])])[0]
                 for p_ in ([y_h] if D == 1 else g.node("Split", [y_h], n_out=2, axis=0, num_outputs=2))]
        g.value, g.layout = _merged(g, parts, opts["merge_mode"]), CANON


def _merged(g: _Graph, parts: list[str], mode: str) -> str:
    """Forward and backward halves ((T, B, H) or (B, H)) merged on the last axis: concat (forward first), sum, ave, mul."""
    if len(parts) == 1:
        return parts[0]
    a, b = parts
    if mode == "concat":
        return g.node("Concat", [a, b], axis=-1)[0]
    if mode == "mul":
        return g.node("Mul", [a, b])[0]
    total = g.node("Add", [a, b])[0]
    return total if mode == "sum" else g.node("Mul", [total, g.weight("half", np.asarray(0.5))])[0]


def _hold(g: _Graph, y: str, lens: str, T: int) -> str:
    """y (T, B, H) zero at padded steps -> y[min(t, length_b - 1), b] (a row of length 0 reads its step 0: zeros)."""
    last = g.node("Sub", [g.node("Cast", [lens], to=onnx.TensorProto.INT64)[0], g.const("one", 1)])[0]  # (B,)
    idx = g.node("Max", [g.node("Min", [g.const("steps", np.arange(T).reshape(T, 1)), last])[0], g.const("zero", 0)])[0]
    idx = g.node("Expand", [g.node("Unsqueeze", [idx, g.const("ax2", [2])])[0], g.node("Shape", [y])[0]])[0]
    return g.node("GatherElements", [y, idx], axis=0)[0]


def _embedding(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Gather on the table. ONNX's Gather wraps a negative id (-1 reads the last row) where the contract refuses it:
    the nnparity voice refuses such ids at the boundary (Model.check_input); the written file alone does not."""
    ids = g.value
    g.value = g.node("Gather", [g.weight("embeddings", layer.weights["embeddings"]), ids], axis=0)[0]
    g.layout = CANON
    if opts["mask_zero"]:  # sequence_lens: the ids != 0 on each row (post-padded: its first `length` steps)
        valid = g.node("Not", [g.node("Equal", [ids, g.const("pad_id", 0, np.dtype(g.model.input_dtype))])[0]])[0]
        g.lens[i] = g.node("ReduceSum", [g.node("Cast", [valid], to=onnx.TensorProto.INT32)[0], g.const("ax1", [1])],
                           keepdims=0)[0]
    g.notes.append(f"{layer.name}: ONNX's Gather wraps a negative id; nnparity refuses ids outside [0, "
                   f"{opts['input_dim']}) at the boundary (Model.check_input), the written file alone does not")


def _masking(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Steps whose features all equal mask_value are zeroed; their count per row is the sequence_lens of the
    recurrent layers the mask reaches (any(x != value) summed over time; post-padding is the caller's to keep)."""
    if g.layout == NCHW:
        g.to(CANON, 3)
    x = g.value
    differs = g.node("Not", [g.node("Equal", [x, g.weight("mask_value", np.asarray(opts["mask_value"]))])[0]])[0]
    keep = g.node("ReduceMax", [g.node("Cast", [differs], to=helper.np_dtype_to_tensor_dtype(g.dtype))[0],
                                g.const("ax_f", [-1])], keepdims=1)[0]  # (., ., 1): 1 on a valid step
    g.value = g.node("Mul", [x, keep])[0]
    time_axis = 0 if g.layout == TBF else 1
    g.lens[i] = g.node("Cast", [g.node("ReduceSum", [keep, g.const("ax_t", [time_axis, 2])], keepdims=0)[0]],
                       to=onnx.TensorProto.INT32)[0]


def _take_step(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """x[:, index] as a Gather of one step on the time axis (axis 0 time-major, 1 batch-first)."""
    # a scalar index as a Constant node, as torch.onnx.export writes out[:, -1] (an initializer would be stored 1-D)
    index = g.node("Constant", [], value=numpy_helper.from_array(np.asarray(opts["index"], np.int64)))[0]
    if g.layout == NCHW:
        g.to(CANON, 3)
    g.apply("Gather", index, axis=0 if g.layout == TBF else 1)
    g.layout = CANON


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
    readers = [g.model.layers[j].kind for j in g.model.consumers(layer.name)]
    if any(k in ("max_pool2d", "avg_pool2d") for k in readers):
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
        g.to(CANON, len(shape))
    g.apply("Flatten", axis=1)
    g.layout = CANON  # (B, n): the element order is rows_nchw's business


def _dense(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    kernel = np.asarray(layer.weights["kernel"])
    if g.rows_nchw is not None:
        kernel, g.rows_nchw = convert.flatten_rows_nhwc_to_nchw(kernel, g.rows_nchw), None
        g.notes.append(f"{layer.name}: the kernel's rows permuted for the NCHW flatten before it (convert.flatten_rows_nhwc_to_nchw)")
    bias = [g.weight("bias", layer.weights["bias"])] if opts["use_bias"] else []
    if len(shape) == 3 and g.layout == NCHW:  # a Dense reads the last axis: (B, L, C) of an NCW map
        g.to(CANON, 3)
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


def _conv1d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """ONNX's Conv on an NCW map: kernel (K, C/groups, F) -> (F, C/groups, K); 'same' (TensorFlow's: the odd pad
    after), 'causal' ((K - 1) * dilation before) and [left, right] as explicit pads (conv1d_layer.pads)."""
    g.to(NCHW, 3)
    B, L, C = shape
    kernel = np.asarray(layer.weights["kernel"])
    geo = spec.check_conv2d((B, 1, L, C), (1, *kernel.shape), (kernel.shape[2],), **conv1d_layer.conv2d_kwargs(opts, L))
    _, _, left, right = geo.pads  # (top, bottom, left, right) of the (1, L) map
    inputs = [g.weight("weight", np.transpose(kernel, (2, 1, 0)))]
    if opts["use_bias"]:
        inputs.append(g.weight("bias", layer.weights["bias"]))
    g.apply("Conv", *inputs, kernel_shape=[int(kernel.shape[0])], strides=[opts["strides"]], dilations=[opts["dilation"]],
            group=int(opts["groups"]), pads=[int(left), int(right)])  # fmt: skip
    g.activation(opts["activation"], 3)


def _batch_norm(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """BatchNormalization (training_mode 0: the moving statistics) on the channel axis, axis 1: an NCHW / NCW map, or
    (B, C). ONNX's momentum is the description's (the fraction of the old statistics kept); it matters only in
    training mode, which ONNX Runtime's inference never runs; it is written so that the file states it."""
    if len(shape) >= 3:
        g.to(NCHW, len(shape))
    w = spec_of("batch_norm").op_weights(opts, dict(layer.weights))  # gamma ones, beta zeros where the layer has none
    names = [g.weight(k, w[k]) for k in ("gamma", "beta", "moving_mean", "moving_var")]
    g.apply("BatchNormalization", *names, epsilon=float(opts["epsilon"]), momentum=float(opts["momentum"]))


def _layer_norm(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """LayerNormalization(axis=-1) on the canonical last axis (the channels): a channels-first map is transposed to
    channels last first (ONNX's axis=1 on NCW would normalise C and L together)."""
    if g.layout == NCHW:
        g.to(CANON, len(shape))
    C = shape[-1]
    scale = layer.weights.get("gamma", np.ones(C))
    inputs = [g.weight("gamma", scale)] + ([g.weight("beta", layer.weights["beta"])] if "beta" in layer.weights else [])
    g.apply("LayerNormalization", *inputs, axis=-1, epsilon=float(opts["epsilon"]))


def _global_pool(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """float32 on a channels-first map: GlobalAveragePool / GlobalMaxPool then Flatten, as torch.onnx.export writes
    AdaptiveAvgPool(1) + flatten. Otherwise (float64, which ONNX Runtime 1.31 has no global pool kernel for, or a
    channels-last value) ReduceMean / ReduceMax over the spatial axes, keepdims 0."""
    mean = layer.kind == "global_avg_pool"
    rank = len(shape)
    if g.dtype == np.float32:
        g.to(NCHW, rank)
        g.apply("GlobalAveragePool" if mean else "GlobalMaxPool")
        g.apply("Flatten", axis=1)
    else:
        if g.layout == TBF:
            g.to(CANON, rank)
        spatial = [k for k, c in enumerate(_perm(g.layout, rank)) if c not in (0, rank - 1)]
        g.apply("ReduceMean" if mean else "ReduceMax", g.const("axes", spatial), keepdims=0)
    g.layout = CANON


def _reshape(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """The canonical row-major reshape: a channels-first value goes channels last first; the batch is kept (0)."""
    g.to(CANON, len(shape))
    g.apply("Reshape", g.const("shape", [0, *opts["target_shape"]]))
    g.layout = CANON


def _permute(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(CANON, len(shape))
    g.apply("Transpose", perm=[0, *opts["dims"]])
    g.layout = CANON


def _merge(g: _Graph, i: int, layer: Any, opts: dict, shapes: tuple) -> None:
    """Add / Concat of the inputs, each brought to the first input's layout (a Transpose where one differs); Concat's
    canonical axis translated to that layout (_physical_axis: channels are axis 1 of an NCHW / NCW value)."""
    names = g.model.sources(i)
    tensors, layout = [], None
    rank = len(shapes[0])
    for n in names:
        g.read(n)
        if g.rows_nchw is not None:  # never: a flatten awaiting its Dense's permuted rows has that Dense as sole reader
            raise limits.Refused(f"{VOICE}: {layer.label(i)} reads an NCHW flatten awaiting a Dense")
        if layout is None:
            layout = g.layout if not (g.layout == TBF and layer.kind == "concatenate") else CANON
        g.to(layout, rank)
        tensors.append(g.value)
    g.layout = layout
    if layer.kind == "add":
        y = tensors[0]
        for t in tensors[1:]:
            y = g.node("Add", [y, t])[0]
    else:
        y = g.node("Concat", tensors, axis=_physical_axis(layout, rank, opts["axis"]))[0]
    g.value = y


LAYERS = {"conv1d": _conv1d, "batch_norm": _batch_norm, "layer_norm": _layer_norm, "global_avg_pool": _global_pool,
          "global_max_pool": _global_pool, "reshape": _reshape, "permute": _permute, "add": _merge,
          "concatenate": _merge,
          "gru": _recurrent, "lstm": _recurrent, "embedding": _embedding, "masking": _masking, "take_step": _take_step,
          "conv2d": _conv, "depthwise_conv2d": _conv, "max_pool2d": _pool, "avg_pool2d": _pool,
          "zero_pad2d": _pad, "flatten": _flatten, "dense": _dense, "activation": _activation, "dropout": _dropout}  # fmt: skip
"""Layer kind -> the function adding its nodes; every kind of impls.model.layers.KINDS."""


def _layout_words(rank: int, layout: str) -> str:
    return {(4, CANON): "NHWC images (B, H, W, C)", (4, NCHW): "NCHW images (B, C, H, W)",
            (3, CANON): "sequences (B, T, F)", (3, TBF): "time-major sequences (T, B, F)",
            (3, NCHW): "NCW maps (B, C, L)"}.get((rank, layout), f"rank-{rank} (B, ...)")  # fmt: skip


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
    in_shapes = model.input_shapes(3)
    for i, layer in enumerate(model.layers):
        g.scope = layer.name
        if spec_of(layer.kind).ARITY == 1:
            g.read(model.sources(i)[0])
        LAYERS[layer.kind](g, i, layer, spec_of(layer.kind).options(layer.options), in_shapes[i])
        g.values[layer.name] = (g.value, g.layout, g.rows_nchw)
    out_rank = len(shapes[-1])
    g.scope = "output"
    g.to(_boundary_layout(model, native_layout, out_rank, model.layers[-1].name), out_rank)
    out_layout = g.layout
    if g.value == INPUT:  # nothing computed (dropout only): still a graph from input to output
        g.apply("Identity")
    last = next(n for n in reversed(g.nodes) if g.value in n.output)  # a masking layer's lengths may come after it
    last.output[list(last.output).index(g.value)] = OUTPUT

    g.nodes = live_nodes(g.nodes, [OUTPUT])  # gru_nodes squeezes both Y and Y_h: the unused one goes
    in_dtype = _input_dtype(model, g.dtype)
    m = onnx_graphs.model(g.nodes, {INPUT: (in_dtype, _symbolic(shapes[0], in_layout))}, {OUTPUT: g.dtype}, model.name, g.init)
    m.graph.output[0].CopyFrom(helper.make_tensor_value_info(
        OUTPUT, helper.np_dtype_to_tensor_dtype(g.dtype), list(_symbolic(shapes[-1], out_layout))))
    where = "native layout (ONNX's own)" if native_layout else f"the source's layout ({model.boundary})"
    m.doc_string = m.graph.doc_string = (
        f"nnparity port of {model.name!r} (source: {model.source}), {np.dtype(dtype).name}, {where}: takes "
        f"{_layout_words(len(shapes[0]), in_layout)}, returns {_layout_words(out_rank, out_layout)}; batch symbolic."
        + _sequence_words(model))
    onnx.checker.check_model(m)
    return m, g.notes


def _input_dtype(model: Model, dtype: np.dtype) -> np.dtype:
    """Token ids keep their integer dtype (int64 or int32); anything else enters in the port's dtype."""
    d = np.dtype(model.input_dtype)
    return d if np.issubdtype(d, np.integer) else dtype


def _sequence_words(model: Model) -> str:
    """What the doc_string says of ids and padding masks: what the graph cannot check."""
    words = []
    if model.layers[0].kind == "embedding":
        words.append(" Token ids must lie in [0, input_dim): ONNX's Gather wraps a negative id (and fails on one too "
                     "large) where nnparity's contract refuses both.")
    if any(s is not None for s in model.mask_sources()):
        words.append(" Padded sequences must be post-padded (each row's valid steps first): the graph counts each "
                     "row's valid steps as the recurrent layers' sequence_lens and cannot check where they lie.")
    return "".join(words)


def _symbolic(shape: tuple, layout: str) -> tuple:
    """A canonical (batch-first) shape as the graph's dims in `layout`, the batch symbolic."""
    dims: list[Any] = [BATCH, *shape[1:]]
    return tuple(dims[i] for i in _perm(layout, len(dims)))


def boundary_transforms(model: Model, native_layout: bool = False) -> tuple[Any, Any]:
    """(canonical -> the port's input layout, the port's output layout -> canonical), NumPy."""
    rank_in, rank_out = len(model.input_shape) + 1, len(model.shapes(1)[-1])
    lay_in = _boundary_layout(model, native_layout, rank_in, INPUT)
    lay_out = _boundary_layout(model, native_layout, rank_out, model.layers[-1].name)
    perm_in = _perm(lay_in, rank_in) if lay_in != CANON else None
    perm_out = tuple(np.argsort(_perm(lay_out, rank_out))) if lay_out != CANON else None
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


__all__ = ["DTYPES", "INPUT", "LAYERS", "OUTPUT", "boundary_transforms", "build", "graph", "live_nodes", "port_dtype", "refusal", "write"]
