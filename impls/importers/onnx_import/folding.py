"""The file, read and folded: onnx.load and onnx.checker (a missing, truncated or corrupt file is one BadInput line),
the graph input's shape and layout, and the constant subgraphs folded away.

Constant subgraphs are folded as the exporters emit them (Shape -> Gather -> Concat -> Reshape, ConstantOfShape for a
GRU's zero state, Transposes of initializers): every node whose inputs are all initializers or constants, and every
Shape of a tensor whose shape is static once the input's shape is, is evaluated once
(onnx.reference.ReferenceEvaluator) and becomes an initializer; dead nodes are dropped. Images enter NCHW (boundary
channels_first) unless the graph opens with a Transpose from NHWC, as tf2onnx writes Keras models (boundary
channels_last).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.message import DecodeError  # what onnx.load raises on a truncated or corrupt file

from ... import frameworks
from ...contract.spec import ShapeError
from ...runtime.onnx_graphs import live_nodes
from .. import BadInput, UnsupportedLayer
from .context import as_str, attrs
from .values import NCHW, NCW

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

ANALYSIS_BATCH = 3  # the batch the folding assumes where the graph's batch is symbolic (no --input-shape)
_NEVER_FOLD = (  # random ops, and (below) nodes with subgraphs (Loop, Scan, If), whose bodies read outer tensors
"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli")
MAP_OPS = ("Conv", "BatchNormalization", "GlobalAveragePool", "GlobalMaxPool")
"""Ops that read a 3-D graph input as a channels-first map (B, C, L): the ports' is_map reads the same kinds."""


def read(path: Path) -> Any:
    try:
        model = onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as e:  # a truncated or corrupt file: protobuf's DecodeError
        raise BadInput(f"{path}: not a readable ONNX file ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'corrupt'})") from None
    except onnx.checker.ValidationError as e:  # its external data: outside the model's folder, or missing
        raise BadInput(f"{path}: {_external_data_problem(str(e))}") from None
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        raise BadInput(f"{path}: not a valid ONNX model ({str(e).strip().splitlines()[0]})") from None
    if not model.graph.node:
        raise BadInput(f"{path}: the ONNX graph has no nodes")
    return model


def _external_data_problem(text: str) -> str:
    """onnx.load's ValidationError about a weight kept in an external data file, as one line: a reference outside the
    model's folder is refused (onnx will not read it, and a model file should not reach elsewhere on the disk)."""
    line = " ".join(text.split())
    if "outside the directory" in line:
        return f"an external data reference points outside the model's folder, refused ({line})"
    return f"its external data cannot be read ({line})"


def declared_dims(vi: Any) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in vi.type.tensor_type.shape.dim]


def concrete(model: Any, dims: tuple[int, ...]) -> Any:
    m = copy.deepcopy(model)
    for d, n in zip(m.graph.input[0].type.tensor_type.shape.dim, dims, strict=True):
        d.Clear()
        d.dim_value = int(n)
    return m


def rebuild(model: Any, nodes: list, consts: dict) -> Any:
    used = {t for _, n in nodes for t in n.input}
    g = helper.make_graph([n for _, n in nodes], model.graph.name, list(model.graph.input), list(model.graph.output),
                          [numpy_helper.from_array(np.asarray(a), k) for k, a in consts.items() if k in used])  # fmt: skip
    m = helper.make_model(g, opset_imports=list(model.opset_import))
    m.ir_version = max(model.ir_version, 4)  # IR 3 wants every initializer a graph input: a folded one is not
    return m


def _infer(model: Any) -> Any:
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 -- best effort: a graph inference cannot follow leaves shapes unknown, and the converters refuse what they cannot see
        return model


def _ceil_pool_dropping(model: Any, inferred: Any) -> tuple[int, list[int]] | None:
    """The first ceil_mode=1 MaxPool / AveragePool whose last window torch's rule (ONNX's "windows that start in
    the trailing pad are ignored", which ONNX Runtime computes) drops but onnx's shape inference keeps (it infers
    ceil((n + pads - k) / s) + 1): (its position, floor pads giving the kept size), or None."""
    dims = {vi.name: declared_dims(vi) for vi in (*inferred.graph.input, *inferred.graph.value_info)}
    for pos, n in enumerate(model.graph.node):
        a = attrs(n)
        if n.op_type not in ("MaxPool", "AveragePool") or not a.get("ceil_mode", 0) or "auto_pad" in a \
                and as_str(a["auto_pad"]) not in ("NOTSET", ""):  # fmt: skip
            continue
        d = dims.get(n.input[0])
        k, pads = list(a.get("kernel_shape", [])), list(a.get("pads", [0] * 2 * len(a.get("kernel_shape", []))))
        s = list(a.get("strides", [1] * len(k)))
        if not d or len(d) != len(k) + 2 or not all(isinstance(v, int) for v in d[2:]):
            continue
        floor_pads, dropped = list(pads), False
        for i, (size, kk, ss) in enumerate(zip(d[2:], k, s, strict=True)):
            lo, hi = pads[i], pads[i + len(k)]
            out = -(-(size + lo + hi - kk) // ss) + 1
            if (out - 1) * ss >= size + lo:
                out, dropped = out - 1, True
            floor_pads[i + len(k)] = max(hi, (out - 1) * ss + kk - size - lo)
        if dropped:
            return pos, floor_pads
    return None


def static_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    inferred = _infer(model)
    for _ in range(len(model.graph.node)):  # onnx's inference of a ceil_mode pool that drops its last window is one
        found = _ceil_pool_dropping(model, inferred)  # too large: infer on a copy whose pool floors to the kept size
        if found is None:
            break
        model = copy.deepcopy(model)
        pos, pads = found
        node = model.graph.node[pos]
        kept = [att for att in node.attribute if att.name not in ("ceil_mode", "pads")]
        del node.attribute[:]
        node.attribute.extend([*kept, helper.make_attribute("pads", pads)])
        del model.graph.value_info[:]
        inferred = _infer(model)
    g = inferred.graph
    out = {}
    for vi in (*g.input, *g.value_info, *g.output):
        d = declared_dims(vi)
        if d and all(isinstance(n, int) and n > 0 for n in d) or (vi.type.tensor_type.HasField("shape") and not d):
            out[vi.name] = tuple(d)
    return out


def evaluate(evaluator: Any, node: Any, feeds: dict, opset: int) -> list:
    """One node on constant inputs, at the graph's own opset: as a one-node model, since ReferenceEvaluator given a
    bare NodeProto runs the newest version of its op whatever `opsets` says (an opset-11 Unsqueeze's axes
    attribute raised TypeError in Unsqueeze_13: every GRU torch.onnx.export writes at opset 11)."""
    inputs = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in feeds.items()]
    g = helper.make_graph([node], "fold", inputs, [helper.make_empty_tensor_value_info(o) for o in node.output if o])
    return evaluator(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])).run(None, feeds)


def fold(model: Any, opset: int) -> tuple[list, dict, dict]:
    """(nodes left as (position, node), constants, concrete shapes): every node computable from constants (and every
    Shape of a static shape) evaluated once, until nothing more folds."""
    from onnx.reference import ReferenceEvaluator

    consts = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = list(enumerate(model.graph.node))
    for _ in range(len(nodes) + 1):
        shapes = static_shapes(rebuild(model, nodes, consts))
        left, folded = [], False
        for pos, n in nodes:
            value = None
            if n.domain not in ("", "ai.onnx") or n.op_type in _NEVER_FOLD or any(a.type in (5, 10) for a in n.attribute):
                pass
            elif n.op_type == "Shape" and n.input[0] in shapes and n.input[0] not in consts:
                a = attrs(n)
                full = np.asarray(shapes[n.input[0]], np.int64)
                value = [full[a.get("start", 0) : a.get("end", len(full))]]
            elif all(not t or t in consts for t in n.input):
                feeds = {t: consts[t] for t in n.input if t}
                value = evaluate(ReferenceEvaluator, n, feeds, opset)
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
    return nodes, consts, static_shapes(rebuild(model, nodes, consts))


def last_layer_states(nodes: list, consts: dict) -> list:
    """torch.onnx.export's h_n of a multi-layer nn.LSTM / nn.GRU is a Concat (axis 0) of every layer's Y_h; a head
    that reads only the last layer's entries (h_n[-1], h_n[-2] and h_n[-1] of a bidirectional one) reads the last
    layer's Y_h itself: the Gathers are pointed at it (their index shifted) and the Concat goes, so the lower layers'
    Y_h is unused, as in a chain. Any other use of the Concat is left for the walk to refuse."""
    producer = {o: n for _, n in nodes for o in n.output}
    out = list(nodes)
    for pos, cat in nodes:
        if cat.op_type != "Concat" or attrs(cat).get("axis") != 0 or len(cat.input) < 2:
            continue
        rnns = [producer.get(t) for t in cat.input]
        if any(r is None or r.op_type not in ("GRU", "LSTM") or len(r.output) < 2 or r.output[1] != t
               for r, t in zip(rnns, cat.input)):  # fmt: skip
            continue
        D = [2 if as_str(attrs(r).get("direction", b"forward")) == "bidirectional" else 1 for r in rnns]
        total, last = sum(D), rnns[-1]
        users = [(p, n) for p, n in out if cat.output[0] in n.input]
        picks = []
        for p, n in users:
            k = n.input[1] if n.op_type == "Gather" and len(n.input) > 1 else None
            if k not in consts or np.ndim(consts[k]) != 0 or attrs(n).get("axis", 0) != 0:
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


def graph_input(path: Path, model: Any, input_shape: tuple | None) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
    """The graph's one input: its ValueInfo, its concrete shape (the given one, or the declared one with a symbolic
    batch of ANALYSIS_BATCH) and which canonical axis each of its axes holds."""
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
    dims = declared_dims(vi)
    axes = input_axes([n for n in model.graph.node if n.op_type != "Shape"], vi.name, len(dims), dims,
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


def input_axes(nodes: list, name: str, rank: int, dims: list | None = None, inits: tuple = ()) -> tuple[int, ...]:
    """Which canonical axis each of the graph input's axes holds: images NCHW unless the first consumer
    transposes from NHWC (tf2onnx); sequences (B, T, F) unless a layout-0 GRU takes the input itself (time-major,
    as a native-layout port). A graph that feeds (T, B, F) to a Dense first cannot say so: it reads as (B, T, F)."""
    first = next((n for n in nodes if name in n.input), None)
    if rank == 4:
        nhwc = first is not None and first.op_type == "Transpose" and list(attrs(first).get("perm", [])) == list(NCHW)
        if first is not None and first.op_type == "Reshape" and dims is not None:  # tf2onnx's NHWC -> NCHW of C = 1
            target = next((numpy_helper.to_array(i) for i in inits if i.name == first.input[1]), None)
            nhwc = target is not None and dims[3] == 1 and [int(t) for t in target[1:]] == [1, dims[1], dims[2]]
        return (0, 1, 2, 3) if nhwc else NCHW
    if rank == 3 and first is not None and first.op_type in ("GRU", "LSTM") and not attrs(first).get("layout", 0):
        return (1, 0, 2)
    if rank == 3 and any(n.op_type in MAP_OPS and n.input[0] == name for n in nodes):  # (B, C, L): a 1-D map
        return NCW
    return tuple(range(rank))


__all__ = ["ANALYSIS_BATCH", "MAP_OPS", "concrete", "declared_dims", "evaluate", "fold", "graph_input", "input_axes",
           "last_layer_states", "read", "rebuild", "static_shapes"]
