"""The walk: a traced torch.fx graph -> description layers in its own (topological) order, with the layout
bookkeeping (how torch holds each tensor: impls/layouts.py); and from_module's assembly of the Imported (the module's
own forward, its per-layer outputs through an fx Interpreter, and one layer's own nodes run alone).

Each node is read by the converter registered for its module class, function or Tensor method (context.REGISTRY);
a layer may read any earlier layer's output (or the input), and a merge (add, multiply, concatenate) reads several;
a tensor the module holds (get_attr) is read by the converter of the node using it. A miss, another join (x / y), a
module with weights called twice (shared weights), or a second path beside the chain is UnsupportedLayer naming the
node, its class or function and its position. A 4-D input is an NCHW map; a 3-D input
a Conv1d, BatchNorm1d or 1-D adaptive pool reads (a converter registered with reads="ncw") is a (B, C, L) map (the
description's (B, L, C)). Images are NHWC in the description (input_shape (H, W, C)), with boundary
"channels_first".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ...contract.spec import ShapeError
from ...layouts import PLAIN, Layout
from ...model.description import INPUT, Model, ModelError
from ...registry import Entry
from .. import BadInput, Imported, UnsupportedLayer
from . import padding
from .context import (
    REGISTRY,
    Node,
    Step,
    _canonical_shape,
    _cls_name,
    _Ctx,
    _is_shape_node,
    _tensor_args,
    _tensor_users,
    by_name,
    fetch,
    held_expand,
    fx,
    supported,
    torch,
)
from .recurrent import feeds_a_state
from .trace import _id_table, _shapes


def _entry(node: Node) -> Entry | None:
    """The converter registered for a function or Tensor-method node (a module's is its class's: _lookup)."""
    if node.op == "call_function" and not isinstance(node.target, type):
        return REGISTRY.get(node.target) or REGISTRY.get(by_name(node.target))
    if node.op == "call_method":
        return REGISTRY.get(node.target)
    return None


def _lookup(ctx: _Ctx, node: Node) -> tuple[Callable, Any]:
    """The node's converter and what it reads the options from: the module, or the function / method name."""
    if node.op == "call_module":
        m = ctx.gm.get_submodule(node.target)
        entry = REGISTRY.get(type(m)) or REGISTRY.get(by_name(type(m)))
        if entry is not None:
            return entry.fn, m
        raise ctx.refuse(node, f"{_cls_name(type(m))} is not supported", listed=True)
    entry = _entry(node)
    if entry is not None:
        return entry.fn, node.target
    raise ctx.refuse(node, "not supported", listed=True)


def _paths(node: Node, distinct: bool = True) -> list:
    """The tensors a node reads that are paths of the graph: its tensor arguments less the tensors the module holds
    (get_attr nodes: a parameter, a buffer), which the node's converter reads as constants or weights. distinct=False
    keeps a tensor read twice twice (z * z is a product of two paths)."""
    if distinct:
        return [a for a in _tensor_args(node) if a.op != "get_attr" and not held_expand(a)]
    found: list = []
    fx.node.map_arg((node.args, node.kwargs), lambda a: found.append(a) or a)
    return [a for a in found if not _is_shape_node(a) and a.op != "get_attr" and not held_expand(a)]


def _reads_time_major(ctx: _Ctx, node: Node) -> bool:
    """Whether the node's converter takes a (T, B, F) tensor: the transposes, and converters registered with
    time_major=True (batch_first=False attention)."""
    if node.target in ("transpose", "permute", torch.transpose, torch.permute):
        return True
    if node.op == "call_module":
        m = ctx.gm.get_submodule(node.target)
        entry = REGISTRY.get(type(m)) or REGISTRY.get(by_name(type(m)))
    else:
        entry = _entry(node)
    return entry is not None and bool(entry.meta.get("time_major"))


def _is_merge(node: Node) -> bool:
    """A node whose converter joins several layers' outputs (registered with joins=True: add, multiply,
    concatenate); one registered with constants=True too is a merge only where it reads two paths or more (x + y,
    not x + 3)."""
    entry = _entry(node)
    if entry is None or not entry.meta.get("joins"):
        return False
    return len(_paths(node, distinct=False)) >= 2 or not entry.meta.get("constants")


def _map_readers() -> tuple[type, ...]:
    """The module classes that take a 3-D input as a (B, C, L) map (registered with reads="ncw")."""
    keys = REGISTRY.keys()
    return tuple(k for k in keys if isinstance(k, type) and REGISTRY.get(k).meta.get("reads") == "ncw")


def _input_layout(ctx: _Ctx, x: Node) -> Layout:
    """A 4-D input is NCHW; a 3-D one is a feature map (B, C, L) where a Conv1d, a BatchNorm1d or a 1-D adaptive pool
    reads it (the description holds it (B, L, C)), else a sequence (B, T, F) as it is."""
    rank = len(ctx.shapes[x])
    if rank == 4:
        return Layout("nchw")
    readers = _map_readers()
    if rank == 3 and any(u.op == "call_module" and isinstance(ctx.gm.get_submodule(u.target), readers)
                         for u in _tensor_users(x)):
        return Layout("ncw")
    return PLAIN


def _shared_modules(ctx: _Ctx) -> None:
    """A module holding weights called twice shares them between two places: the description's layers own theirs."""
    seen: dict = {}
    for n in ctx.gm.graph.nodes:
        if n.op != "call_module":
            continue
        m = ctx.gm.get_submodule(n.target)
        if not any(True for _ in m.parameters()) and not any(True for _ in m.buffers()):
            continue
        if n.target in seen:
            raise ctx.refuse(n, f"module {n.target!r} is called a second time (first as node {seen[n.target].name!r}): "
                                "its weights are shared between two places, which the description's layers (each "
                                "owning its weights) cannot express; use two modules")  # fmt: skip
        seen[n.target] = n


def _walk(ctx: _Ctx) -> list[Step]:
    """The traced graph as description layers in its own (topological) order: each step reads one earlier layer's
    output (or the input); add and cat read several."""
    nodes = list(ctx.gm.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise UnsupportedLayer(f"{ctx.where}: forward takes {len(inputs)} inputs {[n.name for n in inputs]}; a model takes one")
    _shared_modules(ctx)
    x = inputs[0]
    ctx.in_layout = _input_layout(ctx, x)
    ctx.tensors = tensors = {x: (INPUT, ctx.in_layout)}  # node -> (the description tensor it is, how torch holds it)
    ctx.masks = padding.find_masks(ctx, x)  # the padding mask's nodes (ids == 0 and what follows): no layer
    done, steps = set(inputs), []
    last_name = None
    for node in nodes:
        if node in done or node in ctx.masks or _is_shape_node(node) or node.op == "get_attr" or held_expand(node) \
                or feeds_a_state(ctx, node):  # fmt: skip
            continue  # a get_attr (a tensor the module holds, maybe expanded: a class token, a recurrence's initial
            # state) is read by the converter of the node that uses it
        if node.op == "output":
            result = node.args[0]
            if not isinstance(result, Node) or result not in tensors:
                raise UnsupportedLayer(f"{ctx.where}: forward returns {result!r}, not one tensor a layer computes")
            name, ctx.out_layout = tensors[result]
            if name != last_name:
                raise UnsupportedLayer(f"{ctx.where}: forward returns {result.name!r} ({name!r}), not the last layer's "
                                       f"output {last_name!r}")  # fmt: skip
            break
        args = [a for a in _paths(node) if not feeds_a_state(ctx, a) and a not in ctx.masks]  # a recurrence's held
        # initial state, a padding mask: no path
        if node.op != "call_module" and any(a in ctx.masks for a in _tensor_args(node)):
            if len(args) != 1 or args[0] not in tensors:
                raise ctx.refuse(node, "it reads a padding mask and no single layer's output")
            ctx.layout = tensors[args[0]][1]
            step = padding.masked_mean(ctx, node)  # (h * keep).sum(1) / keep.sum(1)
            step.input, step.in_layout = args[0], ctx.layout
            srcs = [tensors[args[0]][0]]
        elif _is_merge(node):
            if len(_paths(node, distinct=False)) < 2 and not _entry(node).meta.get("alone"):  # cat([x]): x
                raise ctx.refuse(node, "it adds a constant to a tensor (or concatenates one tensor); the description's "
                                       "add and concatenate join two or more layers' outputs")  # fmt: skip
            step = _entry(node).fn(ctx, node, node.target)
            step.input, step.in_layout = args[0], step.layout
            srcs = [tensors[a][0] for a in step.joined]
        else:
            if len(args) > 1:
                raise ctx.refuse(node, f"it joins {len(args)} paths ({', '.join(a.name for a in args)}); the "
                                       "description joins paths by add (x + y), multiply (x * y) and concatenate "
                                       "(torch.cat) only")  # fmt: skip
            if not args:
                raise ctx.refuse(node, "it makes a tensor from no input: a second path beside the chain; the description "
                                       "is a chain whose layers hold every weight")  # fmt: skip
            if args[0] not in tensors:
                raise ctx.refuse(node, f"it reads {args[0].name!r}, which is no layer's output (a part of a layer's "
                                       "tuple, or a value the description does not hold)")  # fmt: skip
            fn, obj = _lookup(ctx, node)
            ctx.layout = tensors[args[0]][1]
            if ctx.layout.kind == "tbf" and not _reads_time_major(ctx, node):
                raise ctx.refuse(node, "it reads a time-major (T, B, F) tensor (a transpose(0, 1) before it): only "
                                       "batch_first=False attention and the transpose back read one")  # fmt: skip
            step = fn(ctx, node, obj)  # a converter may name the tensor its nodes start from (a chunk's piece: x)
            step.input, step.in_layout = args[0] if step.input is None else step.input, ctx.layout
            srcs = [tensors[args[0]][0]]
        done.update(step.nodes)
        layers = step.layers()
        if not layers:  # an identity: the same tensor, perhaps held in another layout
            tensors[step.nodes[-1]] = (srcs[0], step.layout)
            continue
        prev = last_name or INPUT
        first = layers[0]
        if list(srcs) != [prev] and not first.inputs:  # a converter that names its inputs (attention) keeps them
            first = dataclasses.replace(first, inputs=tuple(srcs))
            if step.parts:
                step.parts[0] = (first, step.parts[0][1])
            else:
                step.layer = first
        steps.append(step)
        last_name = layers[-1].name
        tensors[step.nodes[-1]] = (last_name, step.layout)
    return steps


class _Recorder(fx.Interpreter):
    """The module's own chain, run node by node; the node that ends each description layer is copied the moment it
    is computed (a later in-place op, nn.ReLU(inplace=True), would otherwise overwrite it)."""

    def __init__(self, gm: Any, ends: dict, starts: set | None = None):
        super().__init__(gm)
        self.ends, self.recorded = ends, {}
        self.starts, self.inputs = starts or set(), {}  # the inputs of steps that hold several layers

    def run_node(self, n: Node) -> Any:
        out = super().run_node(n)
        if n in self.ends:
            self.recorded[self.ends[n]] = out.detach().clone().numpy()
        if n in self.starts:
            self.inputs[n] = out.detach().clone()
        return out


def _run_step(gm: Any, step: Step, t: Any, shapes: dict) -> Any:
    """The step's own modules / functions on t (fed where the chain fed step.input). A size read off a tensor
    outside the step (`b = x.size(0)` at the top of forward) comes from a stand-in of that tensor's shape, t's batch."""
    env = {step.input: t}

    def value(n: Node) -> Any:
        if n not in env:
            if n.op == "get_attr":  # a tensor the module holds: itself
                env[n] = fetch(gm, n)
            elif _is_shape_node(n):
                env[n] = run(n)
            else:
                shape = shapes[n]
                env[n] = torch.empty((t.shape[0], *shape[1:]), dtype=t.dtype)
        return env[n]

    def run(n: Node) -> Any:
        args, kwargs = fx.node.map_arg(n.args, value), fx.node.map_arg(n.kwargs, value)
        if n.op == "call_module":
            return gm.get_submodule(n.target)(*args, **kwargs)
        if n.op == "call_function":
            return n.target(*args, **kwargs)
        return getattr(args[0], n.target)(*args[1:], **kwargs)

    for n in step.nodes:
        env[n] = run(n)
    return env[step.nodes[-1]]


def _dtype_of(module: Any) -> str:
    for p in module.parameters():
        return str(p.dtype).removeprefix("torch.")
    return str(torch.get_default_dtype()).removeprefix("torch.")


def from_module(module: Any, input_shape: tuple | None, where: str) -> Imported:
    """A torch.nn.Module -> Imported. input_shape: batch first in torch's layout ((3, 1, 28, 28), (3, 100, 64))."""
    if input_shape is None:
        raise BadInput(f"{where}: a torch model needs --input-shape (for example --input-shape 3,1,28,28)")
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) < 2 or min(input_shape) < 1:
        raise BadInput(f"{where}: --input-shape {input_shape} needs the batch and at least one more dimension, all >= 1")
    dtype = _dtype_of(module)
    if dtype not in ("float32", "float64"):
        raise BadInput(f"{where}: the module's parameters are {dtype}; nnparity imports float32 or float64 modules")
    module.eval()  # inference: dropout off, as every description computes
    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # noqa: BLE001 - the user's forward failed under tracing (control flow on a tensor, ...)
        raise BadInput(f"{where}: torch.fx cannot trace the module ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    shapes = _shapes(gm, module, input_shape, dtype, where)
    ctx = _Ctx(gm, where, shapes, dtype, {n: i for i, n in enumerate(gm.graph.nodes)},
               notes=["the module was put in eval mode (dropout off)"])  # fmt: skip
    steps = _walk(ctx)
    # one row per description layer: (its step, its position in that step, that layer alone or None: the step's nodes)
    rows = [(s, j, s.parts[j][1] if s.parts else None) for s in steps for j in range(len(s.layers()))]
    if not rows:
        raise UnsupportedLayer(f"{where}: the module computes no layer the description holds; supported: {supported()}")
    in_layout = ctx.in_layout
    canon_in = _canonical_shape(input_shape, in_layout)
    in_dtype = "int64" if _id_table(gm) else dtype  # an embedding first: integer token ids
    if in_dtype == "int64":
        ctx.notes.append("the module's input is integer token ids (its first layer an nn.Embedding)")
    model = Model(type(module).__name__, canon_in[1:], tuple(s.layers()[j] for s, j, _ in rows), in_dtype, "torch",
                  "channels_first")  # fmt: skip
    try:
        model = padding.finish(ctx, model)
        model.check(input_shape[0])
    except ModelError as e:
        raise UnsupportedLayer(f"{where}: {e}") from None
    want = model.shapes(input_shape[0])
    for i, (s, j, _) in enumerate(rows):
        if j < len(s.layers()) - 1:
            continue  # inside a step: its output is no node of the traced graph
        got = _canonical_shape(shapes[s.nodes[-1]], s.layout)
        if tuple(got) != tuple(want[i + 1]):
            raise ShapeError(f"{where}: {model.layers[i].label(i)} gives {shapes[s.nodes[-1]]} in torch (canonically "
                             f"{got}) but the description computes {want[i + 1]}")  # fmt: skip
    layouts = [s.in_layout if j == 0 else s.layout for s, j, _ in rows]  # how torch holds what each layer reads
    out_layout = ctx.out_layout

    def tensor(x: np.ndarray, layout: Layout, i: int = -1) -> Any:
        reads_input = i < 0 or model.source_indices(i) == (-1,)
        return torch.from_numpy(layout.to_torch(np.asarray(x, in_dtype if reads_input else dtype)))

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return out_layout.to_canonical(module(tensor(x, in_layout)).numpy())

    ends = {s.nodes[-1]: i for i, (s, j, _) in enumerate(rows) if j == len(s.layers()) - 1}
    starts = {s.input for s in steps if s.parts} | {m for s in steps for m in s.masks or ()}

    def layer_outputs(x: np.ndarray) -> list[np.ndarray]:
        interp = _Recorder(gm, ends, starts)
        xt = tensor(x, in_layout)
        with torch.no_grad():
            interp.run(xt)
            out, carry = [], None
            for i, (s, j, fn) in enumerate(rows):
                if s.part_outputs is not None and j < len(s.layers()) - 1:  # parts forming a graph: all at once
                    carry = s.part_outputs(interp.inputs[s.input], *(interp.inputs[m] for m in s.masks or ())) \
                        if j == 0 else carry  # fmt: skip
                    out.append(s.layout.to_canonical(carry[j].numpy()))
                elif fn is not None and j < len(s.layers()) - 1:  # a layer inside a step: its own part on the chain
                    carry = fn(interp.inputs[s.input] if j == 0 else carry)
                    out.append(s.layout.to_canonical(carry.numpy()))
                else:
                    out.append(s.layout.to_canonical(interp.recorded[i]))
        return out

    def layer_call(i: int, x: np.ndarray) -> np.ndarray:
        s, _, fn = rows[i]
        with torch.no_grad():
            y = fn(tensor(x, layouts[i], i)) if fn is not None else _run_step(gm, s, tensor(x, layouts[i], i), shapes)
        return s.layout.to_canonical(y.numpy())

    return Imported(model, "torch", where, forward, layer_outputs, layer_call, dtype, ctx.notes)

