"""The ONNX importer: an .onnx file whose nodes are in the supported set -> a model description, and the file itself
run by ONNX Runtime as the user's own model.

    imported = load_file(Path("net.onnx"), None)       # or (3, 1, 28, 28): the graph's own layout, batch first

Three steps. (1) onnx.load and onnx.checker (a missing, truncated or corrupt file is one BadInput line). (2) Constant
subgraphs are folded, as the exporters emit them (Shape -> Gather -> Concat -> Reshape, ConstantOfShape for a GRU's
zero state, Transposes of initializers): every node whose inputs are all initializers or constants, and every Shape of
a tensor whose shape is static once the input's shape is, is evaluated once (onnx.reference.ReferenceEvaluator)
and becomes an initializer. (3) What is left is walked in node order by a registry of small converters keyed by
op_type (onnx2torch's @add_converter style). A miss is UnsupportedLayer naming the node, its op_type, its position
and the supported list. The walk is a graph's (issue 18): every computed tensor is known as a `_Value` and by the
description layer whose output it is, so a layer's `inputs` name its sources; Add and Concat of computed tensors are
add / concatenate layers (Concat's axis translated to the canonical one). Where a node reads its input in an order
the value's canonical axes do not have (torch's LayerNorm over an NCW map's length, a MatMul after a permuting
Transpose) a permute layer makes the graph's order the description's first. BatchNormalization imports in inference
form only (training_mode=1 refused), with ONNX's momentum (the description's convention) and epsilon; an
eval-mode torch.onnx.export folds BatchNorm into the Conv before it, so such a file has none to import.

The graph computes in its own layouts; the description is canonical. The chain's value is tracked as a `_Value`:
which canonical axis each of the tensor's axes holds (None for an inserted size-1 axis), so Transposes, Squeezes and
Unsqueezes are bookkeeping, not layers. Images enter NCHW (boundary channels_first) unless the graph opens with a
Transpose from NHWC, as tf2onnx writes Keras models (boundary channels_last). A Flatten of an NCHW map flattens
(c, h, w): the next Dense's rows are permuted to the canonical (h, w, c) order (convert.flatten_rows_nchw_to_nhwc);
where the graph returns it, the source's outputs are read back in (h, w, c) order and the ports return (c, h, w)
again (Model.flattened_output).
A Conv whose group is its input channels, one input channel per group, is a depthwise_conv2d.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError  # what onnx.load raises on a truncated or corrupt file

from .. import convert, frameworks
from ..contract import spec
from ..contract.spec import ShapeError
from ..model.description import INPUT, Layer, Model
from ..runtime.onnx_graphs import live_nodes
from . import BadInput, Imported, UnsupportedLayer

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

ANALYSIS_BATCH = 3  # the batch the folding assumes where the graph's batch is symbolic (no --input-shape)
_NEVER_FOLD = (  # random ops, and (below) nodes with subgraphs (Loop, Scan, If), whose bodies read outer tensors
"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")
_LOOP_REASON = ("is a loop: this is how Keras' ONNX export (tf2onnx) writes a GRU; import the Keras model itself "
                "(its .keras file) instead")  # fmt: skip


# --------------------------------------------------------------------------- the chain's value


@dataclass(frozen=True)
class _Value:
    """The chain's value as the graph holds it: tensor `name`, whose axis k holds canonical axis axes[k] (None for an
    inserted size-1 axis). `rows`: (h, w, c) where the value is an NCHW map flattened in (c, h, w) order."""

    name: str
    axes: tuple[int | None, ...]
    rows: tuple[int, int, int] | None = None

    @property
    def rank(self) -> int:  # the canonical rank
        return sum(a is not None for a in self.axes)

    def to_canonical(self, a: np.ndarray) -> np.ndarray:
        real = [k for k, ax in enumerate(self.axes) if ax is not None]
        a = np.asarray(a).reshape([a.shape[k] for k in real])
        a = np.transpose(a, np.argsort([self.axes[k] for k in real]))
        if self.rows is not None:  # (c, h, w) columns -> (h, w, c): the rows' converter on the transpose
            a = convert.flatten_rows_nchw_to_nhwc(a.T, self.rows).T
        return np.ascontiguousarray(a)

    def from_canonical(self, x: np.ndarray) -> np.ndarray:
        """A canonical input in this value's layout (for the graph's input: no singleton axes, no rows)."""
        return np.ascontiguousarray(np.transpose(x, [a for a in self.axes if a is not None]))


class _Context:
    """The walk over the folded graph: the nodes left, the constants, the concrete shapes, the layers so far."""

    def __init__(self, path: Path, nodes: list, consts: dict, shapes: dict, opset: int, value: _Value, output: str):
        self.path, self.nodes, self.consts, self.shapes, self.opset = path, nodes, consts, shapes, opset
        self.value, self.output = value, output
        self.values: dict[str, _Value] = {value.name: value}  # every computed tensor read so far, as the graph holds it
        self.owner: dict[str, str] = {value.name: INPUT}  # tensor -> the description layer whose output it is
        self.current = INPUT  # the layer whose output the node being read takes
        self.layers: list[Layer] = []
        self.scopes: list[str] = []  # the scope of the node each layer came from (fusing activations into it)
        self.ends: list[_Value] = []  # the tensor that ends each layer, as the graph holds it
        self.i = 0
        self.notes: list[str] = []

    # ---- reading nodes

    def refuse(self, pos: int, node: Any, why: str) -> UnsupportedLayer:
        return UnsupportedLayer(f"{self.path}: node {pos} {node.name or '(unnamed)'!r} ({node.op_type}) {why}; "
                                f"supported ops: {supported()}")  # fmt: skip

    def const(self, pos: int, node: Any, k: int, default: Any = None) -> Any:
        """Input k of the node as a constant array (default where it is absent)."""
        if k >= len(node.input) or not node.input[k]:
            return default
        if node.input[k] not in self.consts:
            raise self.refuse(pos, node, f"takes its input {k} ({node.input[k]!r}) from a computed tensor, not a constant")
        return self.consts[node.input[k]]

    def consumers(self, tensor: str) -> list[tuple[int, Any]]:
        return [(p, n) for p, n in self.nodes[self.i :] if tensor in n.input]

    def used(self, tensor: str) -> bool:
        return tensor == self.output or bool(self.consumers(tensor))

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.shapes[tensor]

    # ---- writing the description

    def read(self, tensor: str) -> None:
        """The node being read takes `tensor`: it becomes the value, its layer the one the next layer reads."""
        self.value, self.current = self.values[tensor], self.owner[tensor]

    def emit(self, kind: str, node: Any, options: dict, weights: dict | None = None, inputs: tuple | None = None,
             name: str | None = None) -> None:  # fmt: skip
        taken = {la.name for la in self.layers}
        name = _layer_name(node, len(self.layers), taken) if name is None else _unique(name, taken)
        self.layers.append(Layer(kind, name, options, weights or {}, (self.current,) if inputs is None else inputs))
        self.scopes.append(_scope(node))
        self.ends.append(self.value)
        self.current = name

    def set(self, value: _Value) -> None:
        self.value = value
        self.values[value.name], self.owner[value.name] = value, self.current
        if self.current != INPUT:
            self.ends[self.layer_index(self.current)] = value

    def layer_index(self, name: str) -> int:
        return next(k for k, la in enumerate(self.layers) if la.name == name)

    def reinterpret(self, pos: int, node: Any, want: tuple[int, ...], why: str) -> None:
        """Make the value's axes `want` by a permute layer (Keras' Permute: the description's canonical axes become the
        graph's own order), where the node reads its input in another arrangement than the value's canonical one (a
        LayerNormalization over an NCW map's length, a Conv on a (B, T, F) sequence). The tensor is unchanged."""
        v = self.value
        if v.axes == want:
            return
        if None in v.axes or v.rows is not None or len(want) != len(v.axes):
            raise self.refuse(pos, node, f"{why} (axes {v.axes} of the canonical layout)")
        p = [0] * len(want)
        for k, w in enumerate(want):
            p[w] = v.axes[k]
        if p[0] != 0:
            raise self.refuse(pos, node, f"{why}: it would move the batch axis (axes {v.axes})")
        self.emit("permute", node, {"dims": p[1:]}, name=f"{_scope(node) or node.op_type.lower()}_permute")
        self.set(_Value(v.name, tuple(want)))
        self.notes.append(f"node {pos} {node.name!r}: reads axes {v.axes} of the description's layout as {tuple(want)}: "
                          f"a permute layer (dims {p[1:]}) before it")

    def amend(self, **options: Any) -> None:
        last = self.layers[-1]
        self.layers[-1] = replace(last, options={**last.options, **options})


def supported() -> str:
    """The registry's ops as a refusal lists them (an Add only as a MatMul's bias)."""
    return ", ".join("MatMul (+ Add of a bias)" if op == "MatMul" else op for op in sorted(CONVERTERS) if op != "Add")


def _scope(node: Any) -> str:
    """The module or layer a node came from: torch.onnx.export's "/fc/Gemm" -> "fc", tf2onnx's
    "sequential/conv2d_1/BiasAdd" -> "conv2d_1"; "" for a top-level or unnamed node."""
    parts = node.name.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def _layer_name(node: Any, position: int, taken: set[str]) -> str:
    return _unique(_scope(node) or f"{node.op_type.lower()}_{position}", taken)


def _unique(base: str, taken: set[str]) -> str:
    base = "input_" if base == INPUT else base
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _attrs(node: Any) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# --------------------------------------------------------------------------- the converters

CONVERTERS: dict[str, Callable[[_Context, int, Any], None]] = {}
"""op_type -> converter(ctx, position, node): reads the node (and any it fuses), emits layers, moves the value."""


def converter(*op_types: str) -> Callable:
    def register(fn: Callable) -> Callable:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return register


_NCHW = (0, 3, 1, 2)
_NCW = (0, 2, 1)
_CHANNELS_FIRST = {3: _NCW, 4: _NCHW}


def _spatial(ctx: _Context, pos: int, node: Any) -> None:
    if ctx.value.axes != _NCHW:
        raise ctx.refuse(pos, node, f"takes an image in another layout than NCHW (axes {ctx.value.axes} of NHWC)")


def _padding(ctx: _Context, pos: int, node: Any, a: dict, window: tuple[int, int], strides: tuple[int, int]) -> Any:
    """The node's pads or auto_pad as the description's padding: 'valid', 'same' or [[t, b], [l, r]]."""
    auto = a.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "VALID":
        return "valid"
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if auto == "SAME_UPPER":
            return "same"  # TensorFlow's 'same': the odd pixel after
        _, _, h, w = ctx.shape(node.input[0])
        (t, b), (l, r) = (spec.same_pads(n, k, s) for n, k, s in zip((h, w), window, strides))
        return [[b, t], [r, l]]  # SAME_LOWER: the odd pixel before
    pads = a.get("pads", [0, 0, 0, 0])
    if len(pads) != 4 or min(pads) < 0:
        raise ctx.refuse(pos, node, f"has pads {list(pads)}: 2-D non-negative pads only")
    if not any(pads):
        return "valid"
    (t, b), (l, r) = convert.pads_from_onnx(pads)
    return [[t, b], [l, r]]


def _conv1d(ctx: _Context, pos: int, node: Any, W: np.ndarray) -> None:
    """Conv on (B, C, L): conv1d, kernel (F, C/groups, K) -> (K, C/groups, F); pads [left, right] (or 'valid'),
    auto_pad SAME_UPPER as 'same' (TensorFlow's), SAME_LOWER and VALID as their pads."""
    ctx.reinterpret(pos, node, _NCW, "is a 1-D Conv reading channels on an axis that is not the channels")
    a = _attrs(node)
    bias = ctx.const(pos, node, 2)
    F, _, K = W.shape
    (s,), (d,) = a.get("strides", [1]), a.get("dilations", [1])
    auto = _str(a.get("auto_pad", b"NOTSET"))
    L = ctx.shape(node.input[0])[2]
    if auto == "SAME_UPPER":
        padding: Any = "same"
    elif auto == "SAME_LOWER":
        lo, hi = spec.same_pads(L, (K - 1) * d + 1, s)
        padding = [hi, lo]
    else:
        pads = [0, 0] if auto == "VALID" else list(a.get("pads", [0, 0]))
        if len(pads) != 2 or min(pads) < 0:
            raise ctx.refuse(pos, node, f"has pads {pads}: 1-D non-negative pads only")
        padding = [int(pads[0]), int(pads[1])] if any(pads) else "valid"
    opts = {"filters": int(F), "kernel_size": int(K), "strides": int(s), "dilation": int(d), "padding": padding,
            "groups": int(a.get("group", 1)), "use_bias": bias is not None}  # fmt: skip
    weights = {"kernel": np.ascontiguousarray(np.transpose(W, (2, 1, 0)))}
    if bias is not None:
        weights["bias"] = np.asarray(bias)
    ctx.emit("conv1d", node, opts, weights)
    ctx.set(_Value(node.output[0], _NCW))


@converter("Conv")
def _conv(ctx: _Context, pos: int, node: Any) -> None:
    W = ctx.const(pos, node, 1)
    if W.ndim == 3:
        return _conv1d(ctx, pos, node, W)
    _spatial(ctx, pos, node)
    a = _attrs(node)
    if W.ndim != 4:
        raise ctx.refuse(pos, node, f"is a {W.ndim - 2}-D convolution (W.shape={W.shape}): 1-D and 2-D only")
    bias = ctx.const(pos, node, 2)
    O, Ig, KH, KW = W.shape
    groups, C = int(a.get("group", 1)), ctx.shape(node.input[0])[1]
    strides, dil = tuple(a.get("strides", [1, 1])), tuple(a.get("dilations", [1, 1]))
    window = ((KH - 1) * dil[0] + 1, (KW - 1) * dil[1] + 1)
    opts = {"kernel_size": [KH, KW], "strides": list(strides), "dilation": list(dil),
            "padding": _padding(ctx, pos, node, a, window, strides), "use_bias": bias is not None}  # fmt: skip
    hwio = convert.oihw_to_hwio(W)
    weights = {"bias": np.asarray(bias)} if bias is not None else {}
    if groups == C and groups > 1 and Ig == 1:  # one input channel per group: Keras' DepthwiseConv2D
        ctx.emit("depthwise_conv2d", node, {**opts, "depth_multiplier": O // C},
                 {"kernel": convert.grouped_to_depthwise(hwio, C), **weights})  # fmt: skip
    else:
        ctx.emit("conv2d", node, {**opts, "filters": int(O), "groups": groups}, {"kernel": hwio, **weights})
    ctx.set(_Value(node.output[0], _NCHW))


@converter("MaxPool", "AveragePool")
def _pool(ctx: _Context, pos: int, node: Any) -> None:
    _spatial(ctx, pos, node)
    a = _attrs(node)
    if a.get("ceil_mode", 0):
        raise ctx.refuse(pos, node, "has ceil_mode=1: the description's pools floor their output size (ceil_mode=0)")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise ctx.refuse(pos, node, f"has dilations {a['dilations']}: pools without dilation only")
    if len(node.output) > 1 and node.output[1] and ctx.used(node.output[1]):
        raise ctx.refuse(pos, node, "uses its Indices output: a chain takes the pooled values only")
    window = tuple(a["kernel_shape"])
    if len(window) != 2:
        raise ctx.refuse(pos, node, f"pools {len(window)}-D (kernel_shape {list(window)}): 2-D only")
    strides = tuple(a.get("strides", [1, 1]))  # ONNX's default stride is 1, not the window
    opts = {"pool_size": list(window), "strides": list(strides), "padding": _padding(ctx, pos, node, a, window, strides)}
    if node.op_type == "AveragePool":
        ctx.emit("avg_pool2d", node, {**opts, "count_include_pad": bool(a.get("count_include_pad", 0))})
    else:
        ctx.emit("max_pool2d", node, opts)
    ctx.set(_Value(node.output[0], _NCHW))


@converter("Pad")
def _pad(ctx: _Context, pos: int, node: Any) -> None:
    a = _attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = a["pads"] if ctx.opset < 11 else ctx.const(pos, node, 1)
    value = a.get("value", 0.0) if ctx.opset < 11 else ctx.const(pos, node, 2, np.zeros(()))
    rank = len(ctx.value.axes)
    axes = ctx.const(pos, node, 3, np.arange(rank))
    if mode != "constant" or np.any(np.asarray(value) != 0):
        raise ctx.refuse(pos, node, f"pads in mode {mode!r} with value {np.asarray(value).tolist()}: zero padding only")
    per_axis = {int(ax) % rank: (int(pads[k]), int(pads[k + len(axes)])) for k, ax in enumerate(np.asarray(axes).ravel())}
    canon = {ctx.value.axes[k]: p for k, p in per_axis.items() if any(p)}
    if ctx.value.rank != 4 or set(canon) - {1, 2} or any(min(p) < 0 for p in canon.values()):
        raise ctx.refuse(pos, node, f"pads {np.asarray(pads).tolist()} on axes {np.asarray(axes).tolist()}: "
                         "zeros on an image's H and W only")  # fmt: skip
    ctx.emit("zero_pad2d", node, {"padding": [list(canon.get(1, (0, 0))), list(canon.get(2, (0, 0)))]})
    ctx.set(replace(ctx.value, name=node.output[0]))


def _flatten_value(ctx: _Context, pos: int, node: Any) -> None:
    v = ctx.value
    real = [ax for ax in v.axes if ax is not None]
    if not real or real[0] != 0 or v.rows is not None:
        raise ctx.refuse(pos, node, f"flattens a tensor whose first axis is not the batch (axes {v.axes})")
    if real == [0, 1]:  # (B, C) with size-1 axes (a global pool's): nothing to flatten, no layer
        return ctx.set(_Value(node.output[0], (0, 1)))
    rows = None
    if real[1:] == [3, 1, 2]:  # NCHW flattens (c, h, w): the next Dense's rows are permuted back
        rows = tuple(ctx.shape(v.name)[k] for k, ax in enumerate(v.axes) if ax in (1, 2, 3))
        rows = (rows[1], rows[2], rows[0])
    elif real[1:] == [2, 1]:  # NCW flattens (c, l): the rows of a (1, L, C) map
        if node.output[0] == ctx.output:
            raise ctx.refuse(pos, node, "returns an NCW map flattened (c, l) with no Dense after it: the description "
                             "flattens (l, c), and a drop-in port of it would keep neither order")  # fmt: skip
        c, length = (ctx.shape(v.name)[k] for k, ax in enumerate(v.axes) if ax in (2, 1))
        rows = (1, length, c)
    elif real[1:] != sorted(real[1:]):
        raise ctx.refuse(pos, node, f"flattens axes in the order {real} of the canonical layout: (h, w, c) or (c, h, w) only")
    ctx.emit("flatten", node, {})
    ctx.set(_Value(node.output[0], (0, 1), rows))


@converter("Flatten")
def _flatten(ctx: _Context, pos: int, node: Any) -> None:
    if _attrs(node).get("axis", 1) != 1:
        raise ctx.refuse(pos, node, f"flattens from axis {_attrs(node)['axis']}: Flatten(axis=1) only")
    _flatten_value(ctx, pos, node)


@converter("Reshape")
def _reshape(ctx: _Context, pos: int, node: Any) -> None:
    v, src, out = ctx.value, ctx.shape(ctx.value.name), ctx.shape(node.output[0])
    if len(out) == 2 and v.axes and v.axes[0] == 0 and out[0] == src[0]:  # (B, -1): a Flatten
        return _flatten_value(ctx, pos, node)
    axes = _singletons_only(v.axes, src, out)
    if axes is not None:
        return ctx.set(replace(v, name=node.output[0], axes=axes))
    if v.axes != tuple(range(len(v.axes))) or v.rows is not None or out[0] != src[0]:
        raise ctx.refuse(pos, node, f"reshapes {src} to {out} from axes {v.axes} of the canonical layout: a reshape of a "
                         "channels-first map is not the description's row-major channels-last one; only a flatten to "
                         "(batch, -1), size-1 axes, or a reshape of a value in the canonical order keeping the batch")  # fmt: skip
    ctx.emit("reshape", node, {"target_shape": [int(n) for n in out[1:]]})
    ctx.set(_Value(node.output[0], tuple(range(len(out)))))


_KNOWN_ORDERS = ((0, 3, 1, 2), (0, 1, 2, 3), (0, 1, 2), (1, 0, 2), (0, 1))


def _singletons_only(axes: tuple, src: tuple, out: tuple) -> tuple | None:
    """The axes after a reshape from `src` to `out` that only adds, removes or moves size-1 axes (tf2onnx writes
    NHWC -> NCHW of a one-channel image as a Reshape); None if it does more. A size-1 axis holds no order, so
    where it goes is free: the placement that gives a known layout is chosen."""
    big = [(ax, n) for ax, n in zip(axes, src, strict=True) if ax is not None and n != 1]
    ones = [ax for ax, n in zip(axes, src, strict=True) if ax is not None and n == 1]
    slots = [k for k, n in enumerate(out) if n == 1]
    if [n for n in out if n != 1] != [n for _, n in big] or len(slots) < len(ones):
        return None
    candidates = []
    for chosen in itertools.permutations(slots, len(ones)):
        new: list[int | None] = [None] * len(out)
        it = iter(big)
        for k, n in enumerate(out):
            if n != 1:
                new[k] = next(it)[0]
        for ax, k in zip(ones, chosen, strict=True):
            new[k] = ax
        candidates.append(tuple(new))
    known = [c for c in candidates if tuple(a for a in c if a is not None) in _KNOWN_ORDERS]
    return (known or candidates)[0]


@converter("Transpose")
def _transpose(ctx: _Context, pos: int, node: Any) -> None:
    v = ctx.value
    perm = _attrs(node).get("perm", list(range(len(v.axes)))[::-1])
    if v.rows is not None:
        raise ctx.refuse(pos, node, "transposes a flattened vector")
    ctx.set(replace(v, name=node.output[0], axes=tuple(v.axes[p] for p in perm)))


def _axes_arg(ctx: _Context, pos: int, node: Any) -> list[int] | None:
    if ctx.opset < 13:
        return _attrs(node).get("axes")
    a = ctx.const(pos, node, 1)
    return None if a is None else [int(x) for x in np.asarray(a).ravel()]


@converter("Squeeze")
def _squeeze(ctx: _Context, pos: int, node: Any) -> None:
    v, src = ctx.value, ctx.shape(ctx.value.name)
    axes = _axes_arg(ctx, pos, node)
    drop = {a % len(src) for a in axes} if axes is not None else {k for k, n in enumerate(src) if n == 1}
    if any(v.axes[k] is not None for k in drop):
        raise ctx.refuse(pos, node, f"squeezes axes {sorted(drop)} of {src}, which hold data axes, not inserted ones")
    ctx.set(replace(v, name=node.output[0], axes=tuple(ax for k, ax in enumerate(v.axes) if k not in drop)))


@converter("Unsqueeze")
def _unsqueeze(ctx: _Context, pos: int, node: Any) -> None:
    v = ctx.value
    axes = _axes_arg(ctx, pos, node) or []
    rank = len(v.axes) + len(axes)
    new, it = [], iter(v.axes)
    for k in range(rank):
        new.append(None if k in {a % rank for a in axes} else next(it))
    ctx.set(replace(v, name=node.output[0], axes=tuple(new)))


def _last_step(ctx: _Context, pos: int, node: Any, axis: int, index: int, keep: bool) -> None:
    """One time step of a recurrent layer's sequence (torch's out[:, k]). The last step of a forward layer is its
    final state: the layer returns that instead (return_sequences=False). Any other step, or any step of a
    bidirectional layer (whose backward half at the last step is the backward cell's FIRST step, not its final
    state), is a take_step layer."""
    v = ctx.value
    T = ctx.shape(v.name)[axis]
    rnn = ctx.layers[-1] if ctx.layers else None
    if v.axes[axis] != 1 or v.rank != 3 or not -T <= index < T:
        raise ctx.refuse(pos, node, f"selects index {index} of axis {axis} (axes {v.axes}): one time step of a sequence only")
    if (rnn is not None and rnn.kind in ("gru", "lstm") and rnn.options.get("return_sequences")
            and rnn.options.get("direction", "forward") == "forward" and index in (-1, T - 1) and ctx.ends[-1] is v):  # fmt: skip
        ctx.amend(return_sequences=False)
    else:
        ctx.emit("take_step", node, {"index": index})
    axes = [None if k == axis else ax for k, ax in enumerate(v.axes)] if keep else [ax for k, ax in enumerate(v.axes) if k != axis]
    ctx.set(_Value(node.output[0], tuple(ax if ax is None or ax < 1 else ax - 1 for ax in axes)))


@converter("Gather")
def _gather(ctx: _Context, pos: int, node: Any) -> None:
    if node.input[0] in ctx.consts:  # Gather(table, ids): an embedding (nn.Embedding, Keras' Embedding)
        return _embedding(ctx, pos, node)
    idx = np.asarray(ctx.const(pos, node, 1))
    if idx.ndim != 0:
        raise ctx.refuse(pos, node, f"gathers indices of shape {idx.shape}: a scalar index (out[:, -1]) only")
    axis = _attrs(node).get("axis", 0) % len(ctx.value.axes)
    if ctx.value.axes[axis] is None and int(idx) in (0, -1):  # h[-1] of Y_h (1, B, H): the one layer's state
        v = ctx.value
        return ctx.set(replace(v, name=node.output[0], axes=tuple(ax for k, ax in enumerate(v.axes) if k != axis)))
    _last_step(ctx, pos, node, axis, int(idx), keep=False)


def _embedding(ctx: _Context, pos: int, node: Any) -> None:
    table = np.asarray(ctx.consts[node.input[0]])
    v = ctx.value
    if _attrs(node).get("axis", 0) != 0 or table.ndim != 2 or ctx.layers or v.axes != (0, 1):
        raise ctx.refuse(pos, node, f"gathers axis {_attrs(node).get('axis', 0)} of a {table.ndim}-D constant from "
                         f"axes {v.axes}: an embedding (rows of a 2-D table by the graph's (batch, time) ids, first) only")  # fmt: skip
    ctx.emit("embedding", node, {"input_dim": int(table.shape[0]), "output_dim": int(table.shape[1])},
             {"embeddings": table})  # fmt: skip
    ctx.notes.append(f"node {pos} {node.name!r}: ONNX's Gather wraps a negative id; the description refuses ids "
                     f"outside [0, {table.shape[0]}) (Model.check_input)")
    ctx.set(_Value(node.output[0], (0, 1, 2)))


@converter("Slice")
def _slice(ctx: _Context, pos: int, node: Any) -> None:
    src = ctx.shape(ctx.value.name)
    starts, ends = (np.asarray(ctx.const(pos, node, k)).ravel() for k in (1, 2))
    axes = np.asarray(ctx.const(pos, node, 3, np.arange(len(starts)))).ravel()
    steps = np.asarray(ctx.const(pos, node, 4, np.ones(len(starts)))).ravel()
    cut = [(int(ax) % len(src), int(s), int(e)) for ax, s, e, st in zip(axes, starts, ends, steps)
           if not (s == 0 and e >= src[int(ax)] and st == 1)]  # fmt: skip
    if not cut:
        return ctx.set(replace(ctx.value, name=node.output[0]))
    if len(cut) != 1 or np.any(steps != 1) or cut[0][2] < src[cut[0][0]]:
        raise ctx.refuse(pos, node, "slices something other than one step of a recurrent layer's sequence (out[:, -1:])")
    _last_step(ctx, pos, node, cut[0][0], cut[0][1], keep=True)


_DEFAULT_ACTS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"]}


def _str(a: Any) -> Any:
    return a.decode() if isinstance(a, bytes) else a


@converter("GRU", "LSTM")
def _rnn(ctx: _Context, pos: int, node: Any) -> None:
    """ONNX's GRU or LSTM (forward or bidirectional, layout 0 or 1) as the description's gru / lstm. Refused with the
    reason: direction 'reverse', clip, other activations, LSTM's input_forget and peepholes P, a non-zero initial
    state, sequence_lens, and the LSTM's cell output Y_c."""
    a, op = _attrs(node), node.op_type
    direction = _str(a.get("direction", b"forward"))
    acts = [_str(x) for x in a.get("activations", [])]
    D = 2 if direction == "bidirectional" else 1
    if direction not in ("forward", "bidirectional"):
        raise ctx.refuse(pos, node, f"runs direction={direction!r}: forward or bidirectional {op}s only")
    if "clip" in a:
        raise ctx.refuse(pos, node, f"has clip={a['clip']}: the description's cells do not clip")
    if acts not in ([], _DEFAULT_ACTS[op] * D):
        raise ctx.refuse(pos, node, f"has activations {acts}: the {op}'s defaults ({', '.join(_DEFAULT_ACTS[op])}) only")
    if a.get("input_forget", 0):
        raise ctx.refuse(pos, node, "has input_forget=1 (coupled input and forget gates): not in the contract")
    if len(node.input) > 4 and node.input[4]:
        raise ctx.refuse(pos, node, "has sequence_lens: the description takes one input, and every sequence runs its "
                         "full length in an imported graph (padded sequences come from an embedding's mask_zero or a "
                         "masking layer, which ONNX has not)")  # fmt: skip
    for k, what in ((5, "initial_h"), (6, "initial_c")):
        if k == 6 and op != "LSTM":
            continue
        h0 = ctx.const(pos, node, k)
        if h0 is not None and np.any(h0 != 0):
            raise ctx.refuse(pos, node, f"starts from a non-zero {what}: the description's cells start from zeros")
    if op == "LSTM":
        P = ctx.const(pos, node, 7)
        if P is not None and np.any(P != 0):
            raise ctx.refuse(pos, node, "has peepholes (a non-zero P): the contract's LSTM has none")
        if P is not None:
            ctx.notes.append(f"node {pos} {node.name!r}: an all-zero peephole input P, the same as none")
    layout = int(a.get("layout", 0))
    want = (1, 0, 2) if layout == 0 else (0, 1, 2)
    if ctx.value.axes != want:
        raise ctx.refuse(pos, node, f"(layout {layout}) takes its input in axes {ctx.value.axes} of (B, T, F), not {want}")
    if layout == 1:
        ctx.notes.append(f"node {pos} {node.name!r}: layout=1 (batch-first) imports, but ONNX Runtime 1.31's CPU {op} "
                         "refuses it ('Batchwise recurrent operations (layout == 1) are not supported'): the file itself "
                         "does not run there")  # fmt: skip
    W, R = ctx.const(pos, node, 1), ctx.const(pos, node, 2)
    G = 4 if op == "LSTM" else 3
    H = int(a.get("hidden_size", R.shape[-1]))
    Bias = ctx.const(pos, node, 3, np.zeros((D, 2 * G * H), W.dtype))
    if op == "LSTM":
        cells = convert.lstm_from_onnx(W, R, Bias)
    else:
        cells = [convert.gru_from_onnx(W[d : d + 1], R[d : d + 1], Bias[d : d + 1]) for d in range(D)]
    weights = {k + s: v for s, c in zip(("", "_rev"), cells) for k, v in zip(("W", "U", "b_x", "b_h"), (c.W, c.U, c.b_x, c.b_h))}
    outs = [*node.output, "", ""]
    y, y_h, y_c = outs[0], outs[1], outs[2] if op == "LSTM" else ""
    if y_c and ctx.used(y_c):
        raise ctx.refuse(pos, node, "uses its cell state Y_c: a chain returns the hidden states only")
    seq, last = bool(y) and ctx.used(y), bool(y_h) and ctx.used(y_h)
    if seq == last:
        raise ctx.refuse(pos, node, "uses both Y and Y_h (a branch), or neither: a chain takes one of them")
    opts: dict[str, Any] = {"units": H}
    if op == "GRU":
        opts["variant"] = "reset_after" if a.get("linear_before_reset", 0) else "reset_before"
    opts["return_sequences"] = seq
    if D == 2:
        opts["direction"] = direction
    ctx.emit(op.lower(), node, opts, weights)
    if D == 1:
        if seq:  # Y (T, 1, B, H) in layout 0, (B, T, 1, H) in layout 1
            ctx.set(_Value(y, (1, None, 0, 2) if layout == 0 else (0, 1, None, 2)))
        else:  # Y_h (1, B, H) / (B, 1, H)
            ctx.set(_Value(y_h, (None, 0, 1) if layout == 0 else (0, None, 1)))
        return
    ctx.set(_merge_directions(ctx, pos, node, y if seq else y_h, seq, layout, H))


def _next_only(ctx: _Context, tensor: str, op: str) -> Any:
    """The one node that takes `tensor`, where it is an `op`; else None."""
    users = ctx.consumers(tensor)
    return users[0][1] if len(users) == 1 and users[0][1].op_type == op else None


def _take(ctx: _Context, node: Any) -> None:
    """A node the converter read as part of its layer: it leaves the walk."""
    ctx.nodes[ctx.i :] = [(p, n) for p, n in ctx.nodes[ctx.i :] if n is not node]


def _merge_directions(ctx: _Context, pos: int, node: Any, out: str, seq: bool, layout: int, H: int) -> _Value:
    """A bidirectional layer's two halves joined on the features (merge_mode concat), as the exporters write it:
    Y (T, 2, B, H) -> Transpose(0, 2, 1, 3) -> Reshape (T, B, 2H) (torch.onnx.export, nnparity's port); layout 1's
    Y (B, T, 2, H) -> Reshape (B, T, 2H); Y_h (2, B, H) -> Transpose(1, 0, 2) -> Reshape (B, 2H) (nnparity's port), or
    Gather 0 and 1 (h_n[-2], h_n[-1]) -> Concat on the features (torch.cat([h_n[-2], h_n[-1]], 1))."""
    why = ("is bidirectional and uses its two directions other than joined forward-then-backward on the features (a Transpose and a Reshape, "
           "or torch.cat([h_n[-2], h_n[-1]], 1)): merge_mode concat only")  # fmt: skip
    tr = _next_only(ctx, out, "Transpose")
    perm = list(_attrs(tr).get("perm", [])) if tr is not None else None
    if seq and layout == 0 and perm == [0, 2, 1, 3] or not seq and layout == 0 and perm == [1, 0, 2]:
        rs = _next_only(ctx, tr.output[0], "Reshape")
        if rs is not None and len(ctx.shape(rs.output[0])) == (3 if seq else 2) and ctx.shape(rs.output[0])[-1] == 2 * H:
            _take(ctx, tr)
            _take(ctx, rs)
            return _Value(rs.output[0], (1, 0, 2) if seq else (0, 1))
    if seq and layout == 1:
        rs = _next_only(ctx, out, "Reshape")
        if rs is not None and len(ctx.shape(rs.output[0])) == 3 and ctx.shape(rs.output[0])[-1] == 2 * H:
            _take(ctx, rs)
            return _Value(rs.output[0], (0, 1, 2))
    if not seq:  # torch.cat([h_n[-2], h_n[-1]], 1): the two Gathers of Y_h (2, B, H), joined on the features
        users = ctx.consumers(out)
        idx = [int(np.asarray(ctx.consts.get(n.input[1], 99))) % 2 if n.op_type == "Gather" and n.input[1] in ctx.consts
               and np.ndim(ctx.consts[n.input[1]]) == 0 and _attrs(n).get("axis", 0) == 0 else None for _, n in users]
        if len(users) == 2 and sorted(i for i in idx if i is not None) == [0, 1]:
            g = {i: n for i, (_, n) in zip(idx, users)}
            cat = _next_only(ctx, g[0].output[0], "Concat")
            if (cat is not None and list(cat.input) == [g[0].output[0], g[1].output[0]]
                    and _attrs(cat).get("axis") in (1, -1)):  # fmt: skip
                for n in (g[0], g[1], cat):
                    _take(ctx, n)
                return _Value(cat.output[0], (0, 1))
    raise ctx.refuse(pos, node, why)


def _dense(ctx: _Context, pos: int, node: Any, kernel: np.ndarray, bias: np.ndarray | None, out: str) -> None:
    v = ctx.value
    if v.rows is not None:
        kernel = convert.flatten_rows_nchw_to_nhwc(kernel, v.rows)
    opts = {"units": int(kernel.shape[1]), "use_bias": bias is not None}
    ctx.emit("dense", node, opts, {"kernel": kernel, **({"bias": bias} if bias is not None else {})})
    ctx.set(replace(v, name=out, rows=None))


@converter("Gemm")
def _gemm(ctx: _Context, pos: int, node: Any) -> None:
    a = _attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or ctx.value.axes != (0, 1):
        raise ctx.refuse(pos, node, f"has transA/alpha/beta {a} or a transposed input: x @ B + C on (batch, in) only")
    B = ctx.const(pos, node, 1)
    C = ctx.const(pos, node, 2)
    kernel = np.ascontiguousarray(B.T if a.get("transB", 0) else B)
    if C is not None and np.size(C) != kernel.shape[1]:
        raise ctx.refuse(pos, node, f"adds C of shape {np.shape(C)}: a bias of one value per output only")
    _dense(ctx, pos, node, kernel, None if C is None else np.asarray(C).reshape(-1), node.output[0])


@converter("MatMul")
def _matmul(ctx: _Context, pos: int, node: Any) -> None:
    if None not in ctx.value.axes and ctx.value.rows is None and ctx.value.axes[-1] != len(ctx.value.axes) - 1:
        ctx.reinterpret(pos, node, tuple(range(len(ctx.value.axes))), "multiplies a last axis that is not the features")
    v = ctx.value
    kernel = ctx.const(pos, node, 1)
    if kernel.ndim != 2 or v.rank not in (2, 3) or [ax for ax in v.axes if ax is not None][-1] != v.rank - 1 \
            or v.axes[-1] is None:  # fmt: skip
        raise ctx.refuse(pos, node, f"multiplies axes {v.axes} by {kernel.shape}: a Dense on the last axis only")
    out, bias = node.output[0], None
    nxt = ctx.consumers(out)
    if len(nxt) == 1 and nxt[0][1].op_type == "Add" and ctx.i < len(ctx.nodes) and ctx.nodes[ctx.i][1] is nxt[0][1]:
        add = nxt[0][1]
        other = [t for t in add.input if t != out]
        if len(other) == 1 and other[0] in ctx.consts and np.size(ctx.consts[other[0]]) == kernel.shape[1]:
            bias, out = np.asarray(ctx.consts[other[0]]).reshape(-1), add.output[0]
            ctx.i += 1  # the Add is this Dense's bias
    _dense(ctx, pos, node, kernel, bias, out)


def _merged(ctx: _Context, pos: int, node: Any) -> list[_Value]:
    if any(t in ctx.consts for t in node.input):
        raise ctx.refuse(pos, node, "merges a constant with a computed tensor: a bias only as a Dense's (MatMul + Add)")
    vals = [ctx.values[t] for t in node.input]
    same_shape = len({ctx.shape(v.name) for v in vals}) == 1
    if len({(v.axes, v.rows) for v in vals}) != 1 or (node.op_type == "Add" and not same_shape):
        raise ctx.refuse(pos, node, f"merges tensors held in different layouts ({[v.axes for v in vals]}) or shapes: "
                         "the description's add takes one shape, broadcasting is not a layer")  # fmt: skip
    return vals


@converter("Add")
def _add(ctx: _Context, pos: int, node: Any) -> None:
    """Two or more computed tensors of one shape and layout: an add layer (a residual connection)."""
    vals = _merged(ctx, pos, node)
    ctx.emit("add", node, {}, inputs=tuple(ctx.owner[v.name] for v in vals))
    ctx.set(replace(vals[0], name=node.output[0]))


@converter("Concat")
def _concat(ctx: _Context, pos: int, node: Any) -> None:
    """Concat of computed tensors in one layout: the axis translated to the canonical one (axis 1 of an NCHW map is
    the channels, canonical -1)."""
    vals = _merged(ctx, pos, node)
    v = vals[0]
    axis = int(_attrs(node).get("axis", 0)) % len(v.axes)
    canon = v.axes[axis]
    if canon is None or canon == 0 or v.rows is not None:
        raise ctx.refuse(pos, node, f"concatenates axis {axis} of axes {v.axes}: a data axis past the batch of "
                         "unflattened values only")  # fmt: skip
    ctx.emit("concatenate", node, {"axis": -1 if canon == v.rank - 1 else int(canon)},
             inputs=tuple(ctx.owner[x.name] for x in vals))  # fmt: skip
    ctx.set(replace(v, name=node.output[0]))


def _f32(v: float) -> float:
    """An ONNX float attribute (stored float32: 1e-3 reads 0.0010000000474974513) as the shortest decimal that is the
    same float32 (0.001): what the exporting framework was given, and what its ports write back."""
    return float(str(np.float32(v)))


@converter("BatchNormalization")
def _batch_norm(ctx: _Context, pos: int, node: Any) -> None:
    """Inference-form BatchNormalization on the channel axis (axis 1: NCHW, NCW, or (B, C)): scale, B, input_mean,
    input_var -> gamma, beta, moving_mean, moving_var; epsilon (1e-5) and momentum (0.9) as ONNX states them, its
    momentum being the description's (running = running * momentum + batch * (1 - momentum)). variance_update
    'biased': ONNX's training-mode formula updates with the variance it normalises by (a torch export was trained
    with the unbiased one: the file does not say so). training_mode=1 and the running-statistics outputs are refused."""
    a = _attrs(node)
    if a.get("training_mode", 0):
        raise ctx.refuse(pos, node, "has training_mode=1 (normalises by the batch's statistics): inference form only")
    if any(o and ctx.used(o) for o in node.output[1:]):
        raise ctx.refuse(pos, node, "uses its running mean / variance outputs: training mode, not a layer's output")
    if not a.get("spatial", 1):
        raise ctx.refuse(pos, node, "has spatial=0 (statistics per position): per channel only")
    rank = len(ctx.value.axes)
    ctx.reinterpret(pos, node, _CHANNELS_FIRST.get(rank, tuple(range(rank))),
                    "normalises axis 1, which holds no channel axis of the description")  # fmt: skip
    if ctx.value.rows is not None or rank not in (2, 3, 4):
        raise ctx.refuse(pos, node, f"normalises a rank-{rank} tensor (axes {ctx.value.axes}): (B, C), NCW or NCHW only")
    gamma, beta, mean, var = (np.asarray(ctx.const(pos, node, k)) for k in (1, 2, 3, 4))
    momentum = _f32(a.get("momentum", 0.9))
    ctx.emit("batch_norm", node, {"epsilon": _f32(a.get("epsilon", 1e-5)), "momentum": momentum,
                                  "variance_update": "biased"},
             {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_var": var})  # fmt: skip
    ctx.set(replace(ctx.value, name=node.output[0]))


@converter("LayerNormalization")
def _layer_norm(ctx: _Context, pos: int, node: Any) -> None:
    """LayerNormalization over the last axis only. Where that axis is not the description's channels (torch's
    LayerNorm on an NCW map normalises the length) a permute layer first makes the graph's order canonical."""
    a = _attrs(node)
    rank = len(ctx.value.axes)
    axis = int(a.get("axis", -1)) % rank
    if axis != rank - 1:
        raise ctx.refuse(pos, node, f"normalises axes {list(range(axis, rank))} together: over the last axis only")
    if any(o and ctx.used(o) for o in node.output[1:]):
        raise ctx.refuse(pos, node, "uses its Mean / InvStdDev outputs: not a layer's output")
    v = ctx.value
    if v.axes[-1] != v.rank - 1:
        ctx.reinterpret(pos, node, tuple(range(rank)), "normalises a last axis that is not the channels")
    scale, bias = ctx.const(pos, node, 1), ctx.const(pos, node, 2)
    weights = {"gamma": np.asarray(scale).reshape(-1), **({"beta": np.asarray(bias).reshape(-1)} if bias is not None else {})}
    ctx.emit("layer_norm", node, {"epsilon": _f32(a.get("epsilon", 1e-5)), "center": bias is not None}, weights)
    ctx.set(replace(ctx.value, name=node.output[0]))


@converter("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx: _Context, pos: int, node: Any) -> None:
    rank = len(ctx.value.axes)
    if rank not in (3, 4):
        raise ctx.refuse(pos, node, f"pools a rank-{rank} tensor: NCW or NCHW only")
    ctx.reinterpret(pos, node, _CHANNELS_FIRST[rank], "pools a tensor whose axis 1 is not the channels")
    ctx.emit("global_avg_pool" if node.op_type == "GlobalAveragePool" else "global_max_pool", node, {})
    ctx.set(_Value(node.output[0], (0, 1, *[None] * (rank - 2))))


@converter("ReduceMean", "ReduceMax")
def _reduce(ctx: _Context, pos: int, node: Any) -> None:
    """A mean / max over exactly the spatial axes (tf2onnx's GlobalAveragePooling, torch's x.mean((2, 3))): a global
    pool."""
    a, v = _attrs(node), ctx.value
    rank = len(v.axes)
    axes = a.get("axes") if ctx.opset < 18 else ctx.const(pos, node, 1)
    reduced = {int(k) % rank for k in np.asarray(axes).ravel()} if axes is not None else set(range(rank))
    canon = {v.axes[k] for k in reduced}
    if v.rows is not None or None in v.axes or v.rank not in (3, 4) or canon != set(range(1, v.rank - 1)):
        raise ctx.refuse(pos, node, f"reduces axes {sorted(reduced)} of axes {v.axes}: over the spatial axes only "
                         "(a global pool)")  # fmt: skip
    ctx.emit("global_avg_pool" if node.op_type == "ReduceMean" else "global_max_pool", node, {})
    keep = int(a.get("keepdims", 1))
    out = [None if k in reduced else (0 if v.axes[k] == 0 else 1) for k in range(rank) if keep or k not in reduced]
    ctx.set(_Value(node.output[0], tuple(out)))


_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softmax": "softmax"}


@converter(*_ACTIVATIONS)
def _activation(ctx: _Context, pos: int, node: Any) -> None:
    v, act = ctx.value, _ACTIVATIONS[node.op_type]
    if act == "softmax":
        axis = _attrs(node).get("axis", -1 if ctx.opset >= 13 else 1) % len(v.axes)
        last_only = ctx.opset >= 13 or axis == len(v.axes) - 1  # before opset 13 Softmax flattens from `axis`
        if v.axes[axis] != v.rank - 1 or not last_only:
            raise ctx.refuse(pos, node, f"normalises axis {axis} of axes {v.axes}: softmax over the last (feature) axis only")
    last = ctx.layers[-1] if ctx.layers else None
    alone = last is not None and ctx.current == last.name and not ctx.consumers(v.name) and v.name != ctx.output
    if (alone and last.kind in ("conv2d", "depthwise_conv2d", "dense", "conv1d") and ctx.scopes[-1]
            and ctx.scopes[-1] == _scope(node) and last.options.get("activation", "linear") == "linear"):  # fmt: skip
        ctx.amend(activation=act)  # the same module's activation: Keras' Dense(activation=...)
    else:
        ctx.emit("activation", node, {"activation": act})
    ctx.set(replace(v, name=node.output[0]))


@converter("Dropout")
def _dropout(ctx: _Context, pos: int, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] and ctx.used(node.output[1]):
        raise ctx.refuse(pos, node, "uses its mask output")
    ratio = _attrs(node).get("ratio", 0.5) if ctx.opset < 12 else float(np.asarray(ctx.const(pos, node, 1, 0.5)))
    ctx.emit("dropout", node, {"rate": float(ratio)})
    ctx.set(replace(ctx.value, name=node.output[0]))


@converter("Identity")
def _identity(ctx: _Context, pos: int, node: Any) -> None:
    ctx.set(replace(ctx.value, name=node.output[0]))


REFUSED: dict[str, str] = {
    "Loop": _LOOP_REASON, "Scan": _LOOP_REASON,
    "RNN": "is a plain RNN: the description's recurrent layers are the GRU and the LSTM",
}  # fmt: skip
"""Ops users meet that are refused with their own reason (a lookup miss gives the supported list alone)."""


# --------------------------------------------------------------------------- loading and folding


def _read(path: Path) -> Any:
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as e:  # a truncated or corrupt file: protobuf's DecodeError
        raise BadInput(f"{path}: not a readable ONNX file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'corrupt'})") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise BadInput(f"{path}: not a valid ONNX model ({str(e).strip().splitlines()[0]})") from None
    if not model.graph.node:
        raise BadInput(f"{path}: the ONNX graph has no nodes")
    return model


def _dims(vi: Any) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]


def _concrete(model: Any, dims: tuple[int, ...]) -> Any:
    m = copy.deepcopy(model)
    for d, n in zip(m.graph.input[0].type.tensor_type.shape.dim, dims, strict=True):
        d.Clear()
        d.dim_value = int(n)
    return m


def _rebuild(model: Any, nodes: list, consts: dict) -> Any:
    used = {t for _, n in nodes for t in n.input}
    g = helper.make_graph([n for _, n in nodes], model.graph.name, list(model.graph.input), list(model.graph.output),
                          [numpy_helper.from_array(np.asarray(a), k) for k, a in consts.items() if k in used])  # fmt: skip
    m = helper.make_model(g, opset_imports=list(model.opset_import))
    m.ir_version = model.ir_version
    return m


def _shapes(model: Any) -> dict[str, tuple[int, ...]]:
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 -- best effort: a graph inference cannot follow leaves shapes unknown, and the converters refuse what they cannot see
        inferred = model
    g = inferred.graph
    out = {}
    for vi in (*g.input, *g.value_info, *g.output):
        d = _dims(vi)
        if d and all(isinstance(n, int) and n > 0 for n in d) or (vi.type.tensor_type.HasField("shape") and not d):
            out[vi.name] = tuple(d)
    return out


def _evaluate(evaluator: Any, node: Any, feeds: dict, opset: int) -> list:
    """One node on constant inputs, at the graph's own opset: as a one-node model, since ReferenceEvaluator given a
    bare NodeProto runs the newest version of its op whatever `opsets` says (an opset-11 Unsqueeze's axes
    attribute raised TypeError in Unsqueeze_13: every GRU torch.onnx.export writes at opset 11)."""
    inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
    g = helper.make_graph([node], "fold", inputs, [helper.make_empty_tensor_value_info(o) for o in node.output if o])
    return evaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])).run(None, feeds)


def _fold(model: Any, opset: int) -> tuple[list, dict, dict]:
    """(nodes left as (position, node), constants, concrete shapes): every node computable from constants (and every
    Shape of a static shape) evaluated once, until nothing more folds."""
    from onnx.reference import ReferenceEvaluator

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = list(enumerate(model.graph.node))
    for _ in range(len(nodes) + 1):
        shapes = _shapes(_rebuild(model, nodes, consts))
        left, folded = [], False
        for pos, n in nodes:
            value = None
            if n.domain not in ("", "ai.onnx") or n.op_type in _NEVER_FOLD or any(a.type in (5, 10) for a in n.attribute):
                pass
            elif n.op_type == "Shape" and n.input[0] in shapes and n.input[0] not in consts:
                a = _attrs(n)
                full = np.asarray(shapes[n.input[0]], np.int64)
                value = [full[a.get("start", 0) : a.get("end", len(full))]]
            elif all(not t or t in consts for t in n.input):
                feeds = {t: consts[t] for t in n.input if t}
                value = _evaluate(ReferenceEvaluator, n, feeds, opset)
            if value is None:
                left.append((pos, n))
                continue
            consts |= {o: np.asarray(v) for o, v in zip([o for o in n.output if o], value, strict=False)}
            folded = True
        nodes = left
        if not folded:
            break
    live = {id(n) for n in live_nodes([n for _, n in nodes], [o.name for o in model.graph.output])}
    nodes = [(p, n) for p, n in nodes if id(n) in live]  # dead ends (an unused Squeeze of a GRU's Y_h) go
    return nodes, consts, _shapes(_rebuild(model, nodes, consts))


def _last_layer_states(nodes: list, consts: dict) -> list:
    """torch.onnx.export's h_n of a multi-layer nn.LSTM / nn.GRU is a Concat (axis 0) of every layer's Y_h; a head
    that reads only the last layer's entries (h_n[-1], h_n[-2] and h_n[-1] of a bidirectional one) reads the last
    layer's Y_h itself: the Gathers are pointed at it (their index shifted) and the Concat goes, so the lower layers'
    Y_h is unused, as in a chain. Any other use of the Concat is left for the walk to refuse."""
    producer = {o: n for _, n in nodes for o in n.output}
    out = list(nodes)
    for pos, cat in nodes:
        if cat.op_type != "Concat" or _attrs(cat).get("axis") != 0 or len(cat.input) < 2:
            continue
        rnns = [producer.get(t) for t in cat.input]
        if any(r is None or r.op_type not in ("GRU", "LSTM") or len(r.output) < 2 or r.output[1] != t
               for r, t in zip(rnns, cat.input)):  # fmt: skip
            continue
        D = [2 if _str(_attrs(r).get("direction", b"forward")) == "bidirectional" else 1 for r in rnns]
        total, last = sum(D), rnns[-1]
        users = [(p, n) for p, n in out if cat.output[0] in n.input]
        picks = []
        for p, n in users:
            k = n.input[1] if n.op_type == "Gather" and len(n.input) > 1 else None
            if k not in consts or np.ndim(consts[k]) != 0 or _attrs(n).get("axis", 0) != 0:
                break
            j = int(consts[k]) % total - (total - D[-1])
            if j < 0:
                break
            picks.append((p, n, j))
        else:
            if not picks:
                continue
            for p, n, j in picks:
                new = copy.deepcopy(n)
                name = f"{n.input[1]}.last_layer"
                consts[name] = np.asarray(j, np.int64)
                new.input[0], new.input[1] = last.output[1], name
                out[[id(m) for _, m in out].index(id(n))] = (p, new)
            out = [(p, n) for p, n in out if n is not cat]
    return out


def _input(path: Path, model: Any, input_shape: tuple | None) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    lens_fed = sorted({n.name or n.op_type for n in model.graph.node if n.op_type in ("GRU", "LSTM") and len(n.input) > 4
                       and n.input[4] in {i.name for i in inputs[1:]}})  # fmt: skip
    if len(inputs) > 1 and lens_fed:
        raise UnsupportedLayer(f"{path}: the graph's inputs {[i.name for i in inputs]} feed sequence_lens of {lens_fed}: "
                               "the description takes one input (padded sequences come from an embedding's mask_zero "
                               "or a masking layer, computed from it)")  # fmt: skip
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise UnsupportedLayer(f"{path}: the graph has {len(inputs)} inputs and {len(model.graph.output)} outputs "
                               f"({[i.name for i in inputs]} -> {[o.name for o in model.graph.output]}): a chain takes "
                               "one input and returns one output")  # fmt: skip
    vi = inputs[0]
    dims = _dims(vi)
    axes = _input_axes([n for n in model.graph.node if n.op_type != "Shape"], vi.name, len(dims), dims,
                       tuple(model.graph.initializer))  # fmt: skip
    batch = axes.index(0) if axes else 0
    if input_shape is not None:
        given = tuple(int(n) for n in input_shape)
        if len(given) != len(dims) or any(isinstance(d, int) and d > 0 and d != n for d, n in zip(dims, given)):
            raise ShapeError(f"{path}: --input-shape {given} does not fit the graph's input {vi.name!r} of shape "
                             f"{tuple(d if isinstance(d, int) and d > 0 else d or '?' for d in dims)}")  # fmt: skip
        return vi, given, axes
    symbolic = [k for k, d in enumerate(dims) if not (isinstance(d, int) and d > 0)]
    if not dims or set(symbolic) - {batch}:
        raise BadInput(f"{path}: input {vi.name!r} has shape {dims} with symbolic dimensions beyond the batch: give "
                       "--input-shape (in the graph's own layout, the batch first, for example 3,1,28,28)")  # fmt: skip
    return vi, tuple(ANALYSIS_BATCH if k in symbolic else d for k, d in enumerate(dims)), axes


_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32"}  # integers: token ids into an embedding


def _input_axes(nodes: list, name: str, rank: int, dims: list | None = None, inits: tuple = ()) -> tuple[int, ...]:
    """Which canonical axis each of the graph input's axes holds: images NCHW unless the first consumer
    transposes from NHWC (tf2onnx); sequences (B, T, F) unless a layout-0 GRU takes the input itself (time-major,
    as a native-layout port). A graph that feeds (T, B, F) to a Dense first cannot say so: it reads as (B, T, F)."""
    first = next((n for n in nodes if name in n.input), None)
    if rank == 4:
        nhwc = first is not None and first.op_type == "Transpose" and list(_attrs(first).get("perm", [])) == list(_NCHW)
        if first is not None and first.op_type == "Reshape" and dims is not None:  # tf2onnx's NHWC -> NCHW of C = 1
            target = next((numpy_helper.to_array(i) for i in inits if i.name == first.input[1]), None)
            nhwc = target is not None and dims[3] == 1 and [int(t) for t in target[1:]] == [1, dims[1], dims[2]]
        return (0, 1, 2, 3) if nhwc else _NCHW
    if rank == 3 and first is not None and first.op_type in ("GRU", "LSTM") and not _attrs(first).get("layout", 0):
        return (1, 0, 2)
    if rank == 3 and any(n.op_type in _MAP_OPS and n.input[0] == name for n in nodes):  # (B, C, L): a 1-D map
        return _NCW
    return tuple(range(rank))


def load_file(path: Path, input_shape: tuple | None) -> Imported:
    """The .onnx file at `path` as a description and as ONNX Runtime runs it. `input_shape` is the graph input's
    shape in its own layout, the batch first (needed only where a dimension past the batch is symbolic). Raises
    BadInput (unreadable file, symbolic shape), ShapeError (a shape that does not fit) or UnsupportedLayer."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    model = _read(path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    vi, dims, axes = _input(path, model, input_shape)
    elem = vi.type.tensor_type.elem_type
    if elem not in _DTYPES:
        raise UnsupportedLayer(f"{path}: input {vi.name!r} is {onnx.TensorProto.DataType.Name(elem)}: the supported "
                               "layers take float32 or float64 inputs, or int64 / int32 token ids")  # fmt: skip
    nodes, consts, shapes = _fold(_concrete(model, dims), opset)
    nodes = _last_layer_states(nodes, consts)
    out_name = model.graph.output[0].name
    ctx = _Context(path, nodes, consts, shapes, opset, _Value(vi.name, axes), out_name)
    while ctx.i < len(ctx.nodes):
        pos, node = ctx.nodes[ctx.i]
        ctx.i += 1
        if node.op_type in REFUSED:
            raise ctx.refuse(pos, node, REFUSED[node.op_type])
        computed = [t for t in node.input if t and t not in consts]
        unknown = [t for t in computed if t not in ctx.values]
        if unknown or not computed:
            raise ctx.refuse(pos, node, f"takes {unknown or node.input}, which no node read so far computes from the "
                             "graph's input: a side input that does not fold to a constant")  # fmt: skip
        if len(computed) > 1 and node.op_type not in _MERGES:
            raise ctx.refuse(pos, node, f"takes two computed tensors {computed}: only Add and Concat merge tensors")
        ctx.read(computed[0])
        conv = CONVERTERS.get(node.op_type)
        if conv is None:
            raise ctx.refuse(pos, node, "is not supported")
        conv(ctx, pos, node)
    if out_name not in ctx.values or not ctx.layers or ctx.owner[out_name] != ctx.layers[-1].name:
        raise UnsupportedLayer(f"{path}: the graph's output {out_name!r} is not the last of the supported layers read "
                               f"from {vi.name!r}")  # fmt: skip
    ctx.read(out_name)
    canon_in = tuple(dims[axes.index(j)] for j in range(len(axes)) if j != 0)
    out = _drop_in_output(ctx, canon_in, axes)
    if out.rows is not None and axes != _NCHW:  # an NCHW source's flattened output: its ports keep (c, h, w)
        raise UnsupportedLayer(f"{path}: the graph takes images in axes {axes} and returns an NCHW map flattened "
                               "(c, h, w) with no Dense after it: a drop-in port of it would keep neither order")  # fmt: skip
    if 4 in (len(axes), len(out.axes)) and len(axes) == len(out.axes) == 4 and axes != out.axes:
        raise UnsupportedLayer(f"{path}: the graph takes images in axes {axes} and returns them in {out.axes}: "
                               "a drop-in port keeps one layout")  # fmt: skip
    dtype = _DTYPES[elem]
    batch_axis = axes.index(0)
    described = _model(ctx, path.stem, canon_in, dtype, axes)
    described.check(dims[batch_axis])
    if len(out.axes) == 3 and None not in out.axes and (out.axes == _NCW) != (
            described.boundary == "channels_first" and described.is_map(described.layers[-1].name)):  # fmt: skip
        raise UnsupportedLayer(f"{path}: the graph returns a 1-D map in axes {out.axes} where the description's ports "
                               "return the other layout: a drop-in port would not keep it")  # fmt: skip
    declared = _dims(vi)[batch_axis]
    static = declared if isinstance(declared, int) and declared > 0 else None  # torch.onnx.export's fixed batch
    runner = _Runner(model, _Value(vi.name, axes), out, ctx.ends, dtype, static)
    notes = ctx.notes + [f"{n} folded constant nodes" for n in [len(model.graph.node) - len(nodes)] if n]
    notes += [f"the graph's batch is fixed at {static}: the source runs {static} sample(s) at a time"] if static else []
    out_elem = model.graph.output[0].type.tensor_type.elem_type
    computes = dtype if dtype.startswith("float") else _DTYPES.get(out_elem, "float32")  # ids in, the table's floats out
    return Imported(described, "onnx", str(path), runner.forward, runner.layer_outputs, None, computes, notes)


_MERGES = ("Add", "Concat")
_MAP_OPS = ("Conv", "BatchNormalization", "GlobalAveragePool", "GlobalMaxPool")
"""Ops that read a 3-D graph input as a channels-first map (B, C, L): the ports' is_map reads the same kinds."""


def _model(ctx: _Context, name: str, canon_in: tuple, dtype: str, axes: tuple) -> Model:
    """The description: a layer reading the one before it (the input, for the first) keeps inputs () (a chain)."""
    layers = []
    for k, la in enumerate(ctx.layers):
        prev = ctx.layers[k - 1].name if k else INPUT
        layers.append(replace(la, inputs=()) if la.inputs == (prev,) else la)
    return Model(name, canon_in, tuple(layers), input_dtype=dtype, source="onnx",
                 boundary="channels_first" if axes in (_NCHW, _NCW) else "channels_last")  # maps channels first or not  # fmt: skip


def _drop_in_output(ctx: _Context, canon_in: tuple, axes: tuple) -> _Value:
    """The output as the description returns it: a (B, C, L) value the ports would not return channels first (an NCW
    map to a channels-last source, a sequence transposed) gets a permute layer making the graph's order the
    description's. 4-D layouts are checked by the caller."""
    out = ctx.value
    if out.axes != _NCW or out.rows is not None:  # (T, B, F) out of a time-major graph: as before, its own layout
        return out
    trial = _model(ctx, "trial", canon_in, "float32", axes)
    if out.axes == _NCW and axes in (_NCHW, _NCW) and trial.is_map(trial.layers[-1].name):
        return out
    producer = next((n for _, n in reversed(ctx.nodes) if out.name in n.output), None)
    ctx.reinterpret(-1, producer or helper.make_node("Identity", [], [], name="output"), (0, 1, 2),
                    "returns the value in an order the description cannot name")  # fmt: skip
    return ctx.value


class _Runner:
    """The original file in ONNX Runtime: canonical in (transposed to the graph's layout), canonical out.
    layer_call is None: a layer of an ONNX graph is not a unit ONNX Runtime can call alone (its nodes share the
    graph with folded constants and layout Transposes); the certificate's isolated check of an ONNX source runs
    the description's own onnxruntime voice (impls/ports/onnx_port.py) instead."""

    def __init__(self, model: Any, inp: _Value, out: _Value, ends: list[_Value], dtype: str, batch: int | None = None):
        self.model, self.inp, self.out, self.ends, self.dtype, self.batch = model, inp, out, ends, dtype, batch
        self._session = self._probe = None

    def _run(self, session: Any, x: np.ndarray, values: list[_Value]) -> list[np.ndarray]:
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
        from ..runtime import ort_impl

        if self._session is None:
            self._session = ort_impl.session(self.model)
        return self.out.to_canonical(self._run(self._session, x, [self.out])[0])

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Every description layer's output for one input, in one run: each layer's end tensor added to the
        graph's outputs."""
        from ..runtime import ort_impl

        if self._probe is None:
            m = copy.deepcopy(self.model)
            names, values = [o.name for o in m.graph.output], [self.out]
            elem = m.graph.input[0].type.tensor_type.elem_type
            for e in self.ends:
                if e.name not in names:
                    m.graph.output.append(helper.make_tensor_value_info(e.name, elem, None))
                    names.append(e.name)
                    values.append(e)
            self._probe = (ort_impl.session(m), names, values)
        session, names, values = self._probe
        outs = dict(zip(names, self._run(session, x, values), strict=True))
        return [e.to_canonical(outs[e.name]) for e in self.ends]


__all__ = ["CONVERTERS", "REFUSED", "load_file", "supported"]
