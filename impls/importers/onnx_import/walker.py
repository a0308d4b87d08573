"""The walk: an .onnx file -> the description. The file is read and its constants folded (folding.py), then what is
left is walked in node order, each node handed to the converter REGISTRY holds for its op type (the family modules);
a miss is UnsupportedLayer naming the node, its op_type, its position and the supported list. Afterwards the output
is checked to be one a drop-in port can keep, and the user's own file is wrapped to run in ONNX Runtime (runner.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ... import frameworks
from ...model.description import INPUT, Model
from .. import BadInput, Imported, UnsupportedLayer
from .context import PATTERNS, REGISTRY, Context
from .folding import concrete, declared_dims, fold, graph_input, last_layer_states, read
from .runner import Runner
from .values import NCHW, NCW, Value

onnx = frameworks.load("onnx")
helper = onnx.helper

_DTYPES = {1: "float32", 11: "float64", 7: "int64", 6: "int32"}  # integers: token ids into an embedding
_MERGES = ("Add", "Concat", "Mul", "Sum")  # the ops that take two or more computed tensors (add, concatenate, multiply)


def load_file(path: Path, input_shape: tuple | None) -> Imported:
    """The .onnx file at `path` as a description and as ONNX Runtime runs it. `input_shape` is the graph input's
    shape in its own layout, the batch first (needed only where a dimension past the batch is symbolic). Raises
    BadInput (unreadable file, symbolic shape), ShapeError (a shape that does not fit) or UnsupportedLayer."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    model = read(path)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    vi, dims, axes = graph_input(path, model, input_shape)
    elem = vi.type.tensor_type.elem_type
    if elem not in _DTYPES:
        raise UnsupportedLayer(f"{path}: input {vi.name!r} is {onnx.TensorProto.DataType.Name(elem)}: the supported "
                               "layers take float32 or float64 inputs, or int64 / int32 token ids")  # fmt: skip
    nodes, consts, shapes = fold(concrete(model, dims), opset)
    nodes = last_layer_states(nodes, consts)
    out_name = model.graph.output[0].name
    ctx = Context(path, nodes, consts, shapes, opset, Value(vi.name, axes), out_name)
    while ctx.i < len(ctx.nodes):
        pos, node = ctx.nodes[ctx.i]
        ctx.i += 1
        why = REGISTRY.refusal(node.op_type)
        if why:
            raise ctx.refuse(pos, node, why)
        computed = [t for t in node.input if t and t not in consts]
        unknown = [t for t in computed if t not in ctx.values]
        if unknown or not computed:
            raise ctx.refuse(pos, node, f"takes {unknown or node.input}, which no node read so far computes from the "
                             "graph's input: a side input that does not fold to a constant")  # fmt: skip
        ctx.read(computed[0])
        if any(read(ctx, pos, node) for read in PATTERNS):  # a pattern of several nodes (attention.py)
            continue
        if len(computed) > 1 and node.op_type not in _MERGES:
            raise ctx.refuse(pos, node, f"takes two computed tensors {computed}: only Add, Mul, Sum and Concat merge "
                                        "tensors")  # fmt: skip
        entry = REGISTRY.get(node.op_type)
        if entry is None:
            raise ctx.refuse(pos, node, "is not supported")
        entry.fn(ctx, pos, node)
    if out_name not in ctx.values or not ctx.layers or ctx.owner[out_name] != ctx.layers[-1].name:
        raise UnsupportedLayer(f"{path}: the graph's output {out_name!r} is not the last of the supported layers read "
                               f"from {vi.name!r}")  # fmt: skip
    ctx.read(out_name)
    canon_in = tuple(dims[axes.index(j)] for j in range(len(axes)) if j != 0)
    out = _drop_in_output(ctx, canon_in, axes)
    if out.rows is not None and axes != NCHW:  # an NCHW source's flattened output: its ports keep (c, h, w)
        raise UnsupportedLayer(f"{path}: the graph takes images in axes {axes} and returns an NCHW map flattened "
                               "(c, h, w) with no Dense after it: a drop-in port of it would keep neither order")  # fmt: skip
    if 4 in (len(axes), len(out.axes)) and len(axes) == len(out.axes) == 4 and axes != out.axes:
        raise UnsupportedLayer(f"{path}: the graph takes images in axes {axes} and returns them in {out.axes}: "
                               "a drop-in port keeps one layout")  # fmt: skip
    dtype = _DTYPES[elem]
    batch_axis = axes.index(0)
    described = _model(ctx, path.stem, canon_in, dtype, axes)
    described.check(dims[batch_axis])
    if len(out.axes) == 3 and None not in out.axes and (out.axes == NCW) != (
            described.boundary == "channels_first" and described.is_map(described.layers[-1].name)):  # fmt: skip
        raise UnsupportedLayer(f"{path}: the graph returns a 1-D map in axes {out.axes} where the description's ports "
                               "return the other layout: a drop-in port would not keep it")  # fmt: skip
    declared = declared_dims(vi)[batch_axis]
    static = declared if isinstance(declared, int) and declared > 0 else None  # torch.onnx.export's fixed batch
    runner = Runner(model, Value(vi.name, axes), out, ctx.ends, dtype, static)
    notes = ctx.notes + [f"{n} folded constant nodes" for n in [len(model.graph.node) - len(nodes)] if n]
    notes += [f"the graph's batch is fixed at {static}: the source runs {static} sample(s) at a time"] if static else []
    out_elem = model.graph.output[0].type.tensor_type.elem_type
    computes = dtype if dtype.startswith("float") else _DTYPES.get(out_elem, "float32")  # ids in, the table's floats out
    return Imported(described, "onnx", str(path), runner.forward, runner.layer_outputs, None, computes, notes)


def _model(ctx: Context, name: str, canon_in: tuple, dtype: str, axes: tuple) -> Model:
    """The description: a layer reading the one before it (the input, for the first) keeps inputs () (a chain)."""
    layers = []
    for k, la in enumerate(ctx.layers):
        prev = ctx.layers[k - 1].name if k else INPUT
        layers.append(replace(la, inputs=()) if la.inputs == (prev,) else la)
    return Model(name, canon_in, tuple(layers), input_dtype=dtype, source="onnx",
                 boundary="channels_first" if axes in (NCHW, NCW) else "channels_last")  # maps channels first or not  # fmt: skip


def _drop_in_output(ctx: Context, canon_in: tuple, axes: tuple) -> Value:
    """The output as the description returns it: a (B, C, L) value the ports would not return channels first (an NCW
    map to a channels-last source, a sequence transposed) gets a permute layer making the graph's order the
    description's. 4-D layouts are checked by the caller."""
    out = ctx.value
    if axes == NCHW and len(out.axes) == 4 and out.axes[:2] == (0, 1) and out.axes[2:] == (None, None):
        return _pooled_map(ctx, out)
    if out.axes != NCW or out.rows is not None:  # (T, B, F) out of a time-major graph: as before, its own layout
        return out
    trial = _model(ctx, "trial", canon_in, "float32", axes)
    if out.axes == NCW and axes in (NCHW, NCW) and trial.is_map(trial.layers[-1].name):
        return out
    producer = next((n for _, n in reversed(ctx.nodes) if out.name in n.output), None)
    ctx.reinterpret(-1, producer or helper.make_node("Identity", [], [], name="output"), (0, 1, 2),
                    "returns the value in an order the description cannot name")  # fmt: skip
    return ctx.value


def _pooled_map(ctx: Context, out: Value) -> Value:
    """An NCHW graph that returns an (N, C, 1, 1) value of the description's (B, C) (ONNX's squeezenet: GlobalAveragePool
    then Softmax): a reshape layer makes it the (B, 1, 1, C) map the graph returns, so a drop-in port returns it too."""
    producer = next((n for _, n in reversed(ctx.nodes) if out.name in n.output), None)
    c = int(ctx.shape(out.name)[1])
    ctx.emit("reshape", producer or helper.make_node("Identity", [], [], name="output"), {"target_shape": [1, 1, c]},
             name="output_map")  # fmt: skip
    ctx.set(Value(out.name, NCHW))
    ctx.notes.append(f"the graph returns (N, {c}, 1, 1): the description's (B, {c}) reshaped to the (B, 1, 1, {c}) map")
    return ctx.value


__all__ = ["load_file"]
