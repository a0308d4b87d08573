"""The ONNX port's graph builder: `_Graph` (the nodes, initializers and each value's physical layout), the layouts,
the emitter registry and the per-kind refusals it holds, the whole-graph assembly and the boundary transforms.

The graph computes in ONNX's own layouts, NCHW images and time-major (T, B, F) sequences. At the boundary the port
keeps the source's layout (model.boundary: NHWC for "channels_last", NCHW for "channels_first"; sequences (B, T, F); a
Flatten of a map that the model returns in the source's element order, model.flattened_output), with the Transposes
inside the graph; native_layout=True drops them (NCHW images, (T, B, F) sequences in and out) and the graph's
doc_string says so. A 3-D input or output is NCW at a channels_first boundary where it is a feature map (is_map: read
by a conv1d, batch_norm or global pool, or made by one), else (B, T, F).

Graphs (issue 18): each layer's output is a named value (its tensor and physical layout); a layer reads its sources'
values. Nodes are named as torch.onnx.export names them, "/<layer name>/<op>", so impls/importers/onnx_import.py
reads the description's layer names (and which activation belongs to which layer) back. A kind's emitter is
registered in EMITTERS by the module of its family, with the `check` that refuses what ONNX Runtime cannot run (ONNX
Runtime's CPU GRU, LSTM, Conv and AveragePool kernels are float32 only: impls/contract/limits.py, refused with that
reason); an InferenceSession has no gradients, declared there too.

Taps (issue 27): `_graph` also returns each layer's value as the graph holds it (its tensor, physical layout, and where
it is a flattened NCHW map the (H, W, C) whose (c, h, w) feature order it keeps), and `to_canonical` reads one back in
the description's layout: what the voice's Built.outputs marks as graph outputs (impls/ports/onnx_port/voice.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import convert, frameworks
from ...contract import limits
from ...model.description import Model
from ...model.layers import spec_of
from ...registry import Registry
from ...runtime import onnx_graphs
from ...runtime.onnx_graphs import live_nodes

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

VOICE = "onnxruntime"
DTYPES = ("float32", "float64")
INPUT, OUTPUT = "input", "output"
BATCH = "batch"  # the symbolic batch dimension's name
_ACTIVATION_OPS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid", "softmax": "Softmax"}
ELEMENTWISE = ("dropout", "activation")  # layers that keep a flattened vector's element order

EMITTERS = Registry("the ONNX port", "layer kind")
"""Layer kind -> the function adding its nodes, fn(g, i, layer, opts, shape) (shape: the layer's input shape, or the
inputs' shapes of a merge); its `check` meta, (opts, dtype) -> why not or None, refuses what ONNX Runtime cannot run."""


def ort_kernel(op: str) -> Callable[[dict, str], str | None]:
    """A check: limits' refusal of ONNX Runtime's kernel for `op` in the dtype (the CPU kernels registered for float32
    only). A kind registered without a check is asked by its own name: a kind with no op of its own is declared by
    kind (limits.py)."""

    def check(opts: dict, dtype: str) -> str | None:
        return limits.refusal(VOICE, op, dtype)

    return check


def activation_refusal(opts: dict, dtype: str) -> str | None:
    """A layer's activation (its own or its activation=) ONNX Runtime cannot run in `dtype`: the erf GELU in float64
    (measured: Gelu and Erf raise 'Could not find an implementation' for double; the tanh one runs)."""
    if opts.get("activation") == "gelu" and dtype == "float64":
        return ("ONNX Runtime 1.31's CPU kernels for Gelu and Erf are registered for float32 only (measured: 'Could not "
                "find an implementation for Erf(13)' in float64): the erf GELU has no float64 graph ONNX Runtime runs")
    return None


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


def is_map(model: Model, name: str) -> bool:
    """Model.is_map: the rule the torch and Flax ports, the importers and nnparity's --input-shape share."""
    return model.is_map(name)


def refusal(model: Model, dtype: str) -> str | None:
    """Why the ONNX port cannot express `model` in `dtype` in ONNX Runtime, naming the layer; None when it can."""
    if dtype not in DTYPES:
        return f"the ONNX port is built in {' or '.join(DTYPES)}; got dtype {dtype!r}"
    for i, layer in enumerate(model.layers):
        opts = spec_of(layer.kind, layer.label(i)).options(layer.options)
        entry = EMITTERS.get(layer.kind)
        if entry is None:
            return f"{layer.label(i)}: {EMITTERS.refusal(layer.kind) or EMITTERS.missing(layer.kind)}"
        why = entry.meta.get("check", ort_kernel(layer.kind))(opts, dtype) or activation_refusal(opts, dtype)
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
        self.chw: dict[str, tuple] = {}  # layer -> (H, W, C): its value is that map flattened in (c, h, w) order, no Dense took the order in

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

    def activation(self, name: str, rank: int, opts: dict | None = None) -> None:
        """The activation's operator, or its exact decomposition where ONNX Runtime's CPU kernel is float32 only
        (HardSigmoid, HardSwish, LeakyRelu: measured 'Could not find an implementation' in float64)."""
        if name == "linear":
            return
        opts, f64 = opts or {}, self.dtype == np.float64
        if name == "relu6":
            return self.apply("Clip", self.const("relu6_min", 0.0, self.dtype), self.const("relu6_max", 6.0, self.dtype))
        if name == "clip":
            lo, hi = opts["min"], opts["max"]
            return self.apply("Clip", "" if lo is None else self.const("clip_min", lo, self.dtype),
                              *([] if hi is None else [self.const("clip_max", hi, self.dtype)]))
        if name in ("hard_sigmoid", "hard_swish"):
            alpha, beta = (opts.get("alpha", 1 / 6), opts.get("beta", 0.5)) if name == "hard_sigmoid" else (1 / 6, 0.5)
            if not f64:
                return self.apply("HardSigmoid", alpha=alpha, beta=beta) if name == "hard_sigmoid" else self.apply("HardSwish")
            x = self.value  # ONNX's own definition, max(0, min(1, alpha x + beta)) (times x), in float64 nodes
            self.apply("Mul", self.const(f"{name}_alpha", alpha, self.dtype))
            self.apply("Add", self.const(f"{name}_beta", beta, self.dtype))
            self.apply("Clip", self.const(f"{name}_0", 0.0, self.dtype), self.const(f"{name}_1", 1.0, self.dtype))
            if name == "hard_swish":
                self.value = self.node("Mul", [x, self.value])[0]
            return None
        if name == "silu":  # Sigmoid then Mul, as torch.onnx writes nn.SiLU
            x = self.value
            self.apply("Sigmoid")
            self.value = self.node("Mul", [x, self.value])[0]
            return None
        if name == "gelu_tanh" and f64:  # ONNX's Gelu function body casts float32 constants (0.044715): 9.8e-10 off
            x = self.value
            cube = self.node("Mul", [x, self.node("Mul", [x, x])[0]])[0]
            inner = self.node("Add", [x, self.node("Mul", [cube, self.const("gelu_cubic", 0.044715, self.dtype)])[0]])[0]
            t = self.node("Tanh", [self.node("Mul", [inner, self.const("gelu_scale", math.sqrt(2 / math.pi), self.dtype)])[0]])[0]
            half = self.node("Mul", [x, self.const("gelu_half", 0.5, self.dtype)])[0]
            self.value = self.node("Mul", [half, self.node("Add", [t, self.const("gelu_one", 1.0, self.dtype)])[0]])[0]
            return None
        if name in ("gelu", "gelu_tanh"):
            return self.apply("Gelu", approximate="none" if name == "gelu" else "tanh")
        if name == "leaky_relu":
            if not f64:
                return self.apply("LeakyRelu", alpha=opts["negative_slope"])
            x = self.value
            positive = self.node("Greater", [x, self.const("leaky_relu_0", 0.0, self.dtype)])[0]
            scaled = self.node("Mul", [x, self.const("leaky_relu_slope", opts["negative_slope"], self.dtype)])[0]
            self.value = self.node("Where", [positive, x, scaled])[0]
            return None
        attrs = {}
        if name == "softmax":  # the canonical last axis: the channels, axis 1 of an NCHW image or NCW map
            attrs["axis"] = 1 if (rank >= 3 and self.layout == NCHW) else -1
        self.apply(_ACTIVATION_OPS[name], **attrs)
        return None


def _boundary_layout(model: Model, native_layout: bool, rank: int, name: str) -> str:
    """The layout the rank-`rank` tensor `name` (INPUT or the last layer) has at the port's boundary."""
    if rank == 4:
        return NCHW if native_layout or model.boundary == "channels_first" else CANON
    if rank == 3 and is_map(model, name):
        return NCHW if native_layout or model.boundary == "channels_first" else CANON
    return TBF if rank == 3 and native_layout else CANON


def _layout_words(rank: int, layout: str) -> str:
    return {(4, CANON): "NHWC images (B, H, W, C)", (4, NCHW): "NCHW images (B, C, H, W)",
            (3, CANON): "sequences (B, T, F)", (3, TBF): "time-major sequences (T, B, F)",
            (3, NCHW): "NCW maps (B, C, L)"}.get((rank, layout), f"rank-{rank} (B, ...)")  # fmt: skip


def graph(model: Model, dtype: str = "float32", native_layout: bool = False) -> Any:
    """The whole model as one ONNX ModelProto (opset onnx_graphs.OPSET), weights as initializers, input "input" and
    output "output" with a symbolic batch. Raises limits.Refused where `refusal` says why not."""
    return _graph(model, dtype, native_layout)[0]


Tap = tuple[str, str, Any]
"""A layer's value in the graph: (tensor name, physical layout, (H, W, C) of the map it holds flattened in (c, h, w)
order, or None)."""


def _assemble(model: Model, dtype: str, native_layout: bool) -> _Graph:
    """Every layer's nodes and converted weights, in order (the emitters' pass): g.values holds each layer's value."""
    g = _Graph(model, dtype, native_layout)
    in_shapes = model.input_shapes(3)
    for i, layer in enumerate(model.layers):
        g.scope = layer.name
        if spec_of(layer.kind).ARITY == 1:
            g.read(model.sources(i)[0])
        EMITTERS.get(layer.kind).fn(g, i, layer, spec_of(layer.kind).options(layer.options), in_shapes[i])
        g.values[layer.name] = (g.value, g.layout, g.rows_nchw)
        if layer.kind in ELEMENTWISE and model.sources(i)[0] in g.chw:
            g.chw[layer.name] = g.chw[model.sources(i)[0]]
    return g


def _graph(model: Model, dtype: str, native_layout: bool) -> tuple[Any, list[str], list[Tap]]:
    """(the ModelProto, the build's notes, every layer's Tap, in layer order)."""
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    shapes = model.check(3).shapes(3)
    g = _assemble(model, dtype, native_layout)
    in_layout = g.values[INPUT][1]
    out_rank = len(shapes[-1])
    g.scope = "output"
    g.to(_boundary_layout(model, native_layout, out_rank, model.layers[-1].name), out_rank)
    out_layout = g.layout
    if g.value == INPUT:  # nothing computed (dropout only): still a graph from input to output
        g.apply("Identity")
    last = next(n for n in reversed(g.nodes) if g.value in n.output)  # a masking layer's lengths may come after it
    last.output[list(last.output).index(g.value)] = OUTPUT
    renamed = {g.value: OUTPUT}  # the last layer's value, where no Transpose follows it
    taps = [(renamed.get(t, t), layout, rows or g.chw.get(layer.name))
            for layer, (t, layout, rows) in zip(model.layers, (g.values[la.name] for la in model.layers), strict=True)]

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
    return m, g.notes, taps


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
    flat = None if native_layout else model.flattened_output()  # features out in the source's (c, h, w) order

    def into(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(x, perm_in)) if perm_in else x

    def back(y: np.ndarray) -> np.ndarray:
        return to_canonical(y, lay_out, flat)

    return into, back


def to_canonical(y: np.ndarray, layout: str, chw: tuple | None = None) -> np.ndarray:
    """A value as the graph holds it (physical `layout`; `chw`: the (H, W, C) of a map flattened in (c, h, w) order)
    in the description's layout, NumPy."""
    if chw:
        return convert.features_nchw_to_nhwc(y, chw)
    perm = _perm(layout, y.ndim)
    return np.ascontiguousarray(np.transpose(y, np.argsort(perm))) if layout != CANON and perm != tuple(range(y.ndim)) else y


__all__ = ["BATCH", "CANON", "DTYPES", "ELEMENTWISE", "EMITTERS", "INPUT", "NCHW", "OUTPUT", "TBF", "VOICE", "Tap",
           "boundary_transforms", "graph", "helper", "is_map", "numpy_helper", "onnx", "ort_kernel", "refusal",
           "to_canonical"]
