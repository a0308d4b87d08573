"""The torch importer: a torch.nn.Module -> a model description, through torch.fx.

    imported = from_module(net, (3, 1, 28, 28), "net.py:model")   # the input shape batch first, torch's layout

The module is traced with torch.fx.symbolic_trace and its nodes are read as a chain by a registry of small
converters keyed by module class, function or Tensor method (`@converter(nn.Conv2d)`, `@converter(torch.relu)`,
`@converter("view")`). A miss, a branch (a node used twice, two paths joined) or an option the description lacks is
UnsupportedLayer naming the node, its class or function and its position. Weights become canonical arrays in the
module's own dtype through impls/convert.py (gru_from_torch, oihw_to_hwio, dense_from_torch, and
flatten_rows_nchw_to_nhwc for the Linear after a flatten of a map: torch flattens NCHW in (c, h, w) order).
Images are NHWC in the description (input_shape (H, W, C)), with boundary "channels_first".

The everyday GRU pattern `out, h = self.gru(x); return self.fc(out[:, -1])` imports: out[:, -1], h[-1], h[0] and
h.squeeze(0) are the last state (return_sequences False), `out` used whole is the sequence.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract.spec import ShapeError, same_pads
from ..model.description import Layer, Model
from ..ports.torch_code import PLAIN, Layout
from . import BadInput, Imported, UnsupportedLayer

torch = frameworks.load("torch")
nn, F = torch.nn, torch.nn.functional
fx = torch.fx
Node = fx.Node

MODULES: dict[type, Callable] = {}
FUNCTIONS: dict[Any, Callable] = {}
METHODS: dict[str, Callable] = {}


def converter(*keys: Any) -> Callable:
    """Register `fn(ctx, node, obj) -> Step` for module classes, functions or Tensor method names."""
    def register(fn: Callable) -> Callable:
        for k in keys:
            (MODULES if isinstance(k, type) else METHODS if isinstance(k, str) else FUNCTIONS)[k] = fn
        return fn

    return register


def _fn_name(f: Any) -> str:
    mod = getattr(f, "__module__", None) or ""
    mod = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{mod}.{getattr(f, '__name__', repr(f))}" if mod else getattr(f, "__name__", repr(f))


def _cls_name(c: type) -> str:
    return f"nn.{c.__name__}" if c.__module__.startswith("torch.nn") else f"{c.__module__}.{c.__qualname__}"


def supported() -> str:
    names = [_cls_name(c) for c in MODULES] + [_fn_name(f) for f in FUNCTIONS] + [f"Tensor.{m}" for m in METHODS]
    return ", ".join(dict.fromkeys(names))


@dataclass
class Step:
    """The fx nodes that make one description layer (or an identity: layer None); nodes[-1] is its output."""

    layer: Layer | None
    nodes: list
    layout: Layout  # how torch holds the output
    input: Any = None  # the chain's node it reads


@dataclass
class _Ctx:
    gm: Any
    where: str
    shapes: dict  # node -> torch shape (or a tuple of shapes)
    dtype: str
    order: dict  # node -> its position in the traced graph
    layout: Layout = PLAIN
    names: set = field(default_factory=set)
    notes: list = field(default_factory=list)

    def what(self, node: Node) -> str:
        if node.op == "call_module":
            return f"module {node.target!r}, {_cls_name(type(self.gm.get_submodule(node.target)))}"
        if node.op == "call_function":
            return f"function {_fn_name(node.target)}"
        if node.op == "call_method":
            return f"method Tensor.{node.target}"
        return f"{node.op} {node.target!r}"

    def refuse(self, node: Node, reason: str, listed: bool = False) -> UnsupportedLayer:
        tail = f"; supported: {supported()}" if listed else ""
        return UnsupportedLayer(f"{self.where}: node {node.name!r} ({self.what(node)}) at position {self.order[node]} "
                                f"of the traced graph: {reason}{tail}")  # fmt: skip

    def name(self, node: Node) -> str:
        name = str(node.target) if node.op == "call_module" and str(node.target) not in self.names else node.name
        while name in self.names:
            name += "_"
        self.names.add(name)
        return name

    def array(self, t: Any) -> np.ndarray:
        return t.detach().cpu().numpy().astype(self.dtype)


# --------------------------------------------------------------------------- the chain's bookkeeping


def _is_shape_node(n: Any) -> bool:
    """x.size(...), x.shape, x.dim() and arithmetic on them: sizes, not a path of the chain."""
    if not isinstance(n, Node):
        return False
    if n.op == "call_method" and n.target in ("size", "dim"):
        return True
    if n.op == "call_function" and n.target is getattr and len(n.args) > 1 and n.args[1] == "shape":
        return True
    if n.op == "call_function" and n.target in (operator.getitem, operator.mul, operator.floordiv, operator.add):
        nodes = [a for a in n.args if isinstance(a, Node)]
        return bool(nodes) and all(_is_shape_node(a) for a in nodes)
    return False


def _tensor_users(n: Node) -> list:
    return [u for u in n.users if not _is_shape_node(u)]


def _tensor_args(n: Node) -> list:
    found: list = []
    fx.node.map_arg((n.args, n.kwargs), lambda a: found.append(a) or a)
    return [a for a in dict.fromkeys(found) if not _is_shape_node(a)]


def _arg(node: Node, i: int, name: str, default: Any) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def _step(ctx: _Ctx, node: Node, kind: str, options: dict | None = None, weights: dict | None = None,
          layout: Layout | None = None, nodes: list | None = None) -> Step:  # fmt: skip
    return Step(Layer(kind, ctx.name(node), options or {}, weights or {}), nodes or [node], layout or ctx.layout)


def _canonical_shape(shape: tuple, layout: Layout) -> tuple:
    if layout.kind == "nchw":
        b, c, h, w = shape
        return (b, h, w, c)
    return tuple(shape)


# --------------------------------------------------------------------------- converters


@converter(nn.GRU)
def _gru(ctx: _Ctx, node: Node, m: Any) -> Step:
    bad = [f"{k}={getattr(m, k)!r} (needs {v!r})" for k, v in
           (("batch_first", True), ("num_layers", 1), ("bidirectional", False), ("bias", True)) if getattr(m, k) != v]
    if bad:
        raise ctx.refuse(node, f"{', '.join(bad)}; the description's GRU is one batch-first unidirectional layer "
                               "with biases (stacked and bidirectional GRUs come in a later issue)")  # fmt: skip
    if len(node.args) > 1 or node.kwargs:
        raise ctx.refuse(node, "it is given an initial state h0; the description's GRU starts from zeros")
    if len(ctx.shapes[node.args[0]]) != 3:
        raise ctx.refuse(node, f"its input {ctx.shapes[node.args[0]]} is not batched (B, T, I)")
    picks = {}
    for u in node.users:
        if u.op != "call_function" or u.target is not operator.getitem or not isinstance(u.args[1], int):
            raise ctx.refuse(node, f"its (output, h_n) tuple is used whole by {u.name!r}; unpack it: out, h = gru(x)")
        picks[u.args[1] % 2] = u
    used = [i for i, g in sorted(picks.items()) if _tensor_users(g)]
    if len(used) != 1:
        raise ctx.refuse(node, "both its output and h_n are used: a branch (a chain uses one of them)"
                         if used else "neither its output nor h_n is used")
    T, pick = ctx.shapes[node.args[0]][1], picks[used[0]]
    nodes = [node, *(g for g in picks.values() if g is not pick), pick]  # the pick last: the step's output
    after = _tensor_users(pick)
    last = after[0] if len(after) == 1 else None
    if used[0] == 0:  # out (B, T, H): whole, or out[:, -1]
        seq = not (last is not None and last.op == "call_function" and last.target is operator.getitem
                   and _is_last_step(last.args[1], T))  # fmt: skip
        nodes += [] if seq else [last]
    else:  # h_n (1, B, H): h[-1], h[0] or h.squeeze(0)
        if last is None or not _is_state_pick(last):
            raise ctx.refuse(node, "h_n (1, B, H) is used as it is; the last state is h[-1], h[0] or h.squeeze(0)")
        seq = False
        nodes.append(last)
    w = convert.gru_from_torch({k: ctx.array(getattr(m, k)) for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")})
    opts = {"units": int(m.hidden_size), "variant": "reset_after", "return_sequences": seq}
    return _step(ctx, node, "gru", opts, {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}, PLAIN, nodes)


def _is_last_step(index: Any, T: int) -> bool:
    full = slice(None, None, None)
    return isinstance(index, tuple) and len(index) in (2, 3) and index[0] == full and index[1] in (-1, T - 1) \
        and (len(index) == 2 or index[2] == full)  # fmt: skip


def _is_state_pick(n: Node) -> bool:
    if n.op == "call_function" and n.target is operator.getitem:
        return n.args[1] in (0, -1)
    return n.op == "call_method" and n.target == "squeeze" and _arg(n, 1, "dim", None) == 0


def _image_input(ctx: _Ctx, node: Node) -> tuple:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind != "nchw" or len(shape) != 4:
        raise ctx.refuse(node, f"it takes {shape}, not a batched NCHW image map")
    return shape


def _explicit(pads: tuple[int, int, int, int]) -> Any:
    t, b, l, r = pads
    return "valid" if not any(pads) else [[t, b], [l, r]]


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


@converter(nn.Conv2d)
def _conv2d(ctx: _Ctx, node: Node, m: Any) -> Step:
    _, _, H, W = _image_input(ctx, node)
    if m.padding_mode != "zeros":
        raise ctx.refuse(node, f"padding_mode={m.padding_mode!r}; the description pads with zeros only")
    kh, kw = _pair(m.kernel_size)
    dil, stride = _pair(m.dilation), _pair(m.stride)
    if m.padding == "same":  # torch's 'same' (stride 1): total (k - 1) * d, the odd pixel after
        (t, b), (l, r) = same_pads(H, (kh - 1) * dil[0] + 1, 1), same_pads(W, (kw - 1) * dil[1] + 1, 1)
    elif m.padding == "valid":
        t = b = l = r = 0
    else:
        (t, l) = _pair(m.padding)
        b, r = t, l
    opts = {"filters": int(m.out_channels), "kernel_size": [kh, kw], "strides": stride, "padding": _explicit((t, b, l, r)),
            "dilation": dil, "groups": int(m.groups), "use_bias": m.bias is not None}  # fmt: skip
    w = {"kernel": convert.oihw_to_hwio(ctx.array(m.weight))}
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return _step(ctx, node, "conv2d", opts, w, Layout("nchw"))


def _pool_opts(ctx: _Ctx, node: Node, m: Any) -> dict:
    _image_input(ctx, node)
    if m.ceil_mode:
        raise ctx.refuse(node, "ceil_mode=True; the description's pools take floor((n + pads - k) / s) + 1 windows")
    k = _pair(m.kernel_size)
    stride = k if m.stride in (None, [], ()) else _pair(m.stride)
    p = _pair(m.padding)
    return {"pool_size": k, "strides": stride, "padding": _explicit((p[0], p[0], p[1], p[1]))}


@converter(nn.MaxPool2d)
def _max_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    if _pair(m.dilation) != [1, 1]:
        raise ctx.refuse(node, f"dilation={m.dilation!r}; the description's pools have no dilation")
    if m.return_indices:
        raise ctx.refuse(node, "return_indices=True; the chain carries one tensor")
    return _step(ctx, node, "max_pool2d", _pool_opts(ctx, node, m), layout=Layout("nchw"))


@converter(nn.AvgPool2d)
def _avg_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    if m.divisor_override is not None:
        raise ctx.refuse(node, f"divisor_override={m.divisor_override!r}; the description divides by the window or its cells")
    opts = {**_pool_opts(ctx, node, m), "count_include_pad": bool(m.count_include_pad)}
    return _step(ctx, node, "avg_pool2d", opts, layout=Layout("nchw"))


def _pool_call(node: Node, names: tuple[str, ...], defaults: dict) -> Any:
    """F.max_pool2d(x, 2) / F.avg_pool2d(x, 2, stride=1): the call's options, read like the module's attributes."""
    return SimpleNamespace(**{n: _arg(node, i + 1, n, defaults.get(n)) for i, n in enumerate(names)})


@converter(F.max_pool2d, torch.max_pool2d)
def _max_pool_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    m = _pool_call(node, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   {"padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})  # fmt: skip
    return _max_pool(ctx, node, m)


@converter(F.avg_pool2d)
def _avg_pool_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    m = _pool_call(node, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
                   {"padding": 0, "ceil_mode": False, "count_include_pad": True})  # fmt: skip
    return _avg_pool(ctx, node, m)


@converter(nn.ZeroPad2d)
def _zero_pad(ctx: _Ctx, node: Node, m: Any) -> Step:
    _image_input(ctx, node)
    l, r, t, b = (int(p) for p in m.padding)  # F.pad's order (left, right, top, bottom)
    if min(l, r, t, b) < 0:
        raise ctx.refuse(node, f"negative padding {m.padding!r} crops; the description's zero padding only adds")
    return _step(ctx, node, "zero_pad2d", {"padding": [[t, b], [l, r]]}, layout=Layout("nchw"))


def _flatten_step(ctx: _Ctx, node: Node) -> Step:
    shape = ctx.shapes[node.args[0]]
    if len(shape) < 2:
        raise ctx.refuse(node, f"it flattens {shape}, which has no batch axis")
    if ctx.layout.kind == "nchw":
        _, c, h, w = shape
        ctx.notes.append(f"{node.name}: torch flattens the (B, {c}, {h}, {w}) map in (c, h, w) order; the next Linear's "
                         "rows are read back in the description's (h, w, c) order")  # fmt: skip
        return _step(ctx, node, "flatten", layout=Layout("chw", (h, w, c)))
    return _step(ctx, node, "flatten", layout=PLAIN if ctx.layout.kind != "chw" else ctx.layout)


@converter(nn.Flatten)
def _flatten_module(ctx: _Ctx, node: Node, m: Any) -> Step:
    rank = len(ctx.shapes[node.args[0]])
    if m.start_dim != 1 or m.end_dim not in (-1, rank - 1):
        raise ctx.refuse(node, f"start_dim={m.start_dim}, end_dim={m.end_dim}; a flatten keeps the batch: (B, -1)")
    return _flatten_step(ctx, node)


@converter(torch.flatten, "flatten")
def _flatten_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
    if start != 1 or end not in (-1, len(ctx.shapes[node.args[0]]) - 1):
        raise ctx.refuse(node, f"start_dim={start}, end_dim={end}; a flatten keeps the batch: flatten(x, 1)")
    return _flatten_step(ctx, node)


@converter("view", "reshape", torch.reshape)
def _reshape(ctx: _Ctx, node: Node, f: Any) -> Step:
    before, after = ctx.shapes[node.args[0]], ctx.shapes[node]
    if len(after) != 2 or after[0] != before[0] or len(before) < 2:
        raise ctx.refuse(node, f"it reshapes {before} to {after}; only a reshape to (batch, -1) (a flatten) imports")
    return _flatten_step(ctx, node)


@converter(nn.Linear)
def _linear(ctx: _Ctx, node: Node, m: Any) -> Step:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind == "nchw":
        raise ctx.refuse(node, f"it acts on the last (width) axis of the NCHW map {shape}; the description's Dense "
                               "takes (B, in) or (B, T, in)")  # fmt: skip
    kernel = convert.dense_from_torch(ctx.array(m.weight))
    if ctx.layout.kind == "chw":  # rows in torch's flatten order (c, h, w) -> the description's (h, w, c)
        kernel = convert.flatten_rows_nchw_to_nhwc(kernel, ctx.layout.feature)
    w = {"kernel": kernel}
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return _step(ctx, node, "dense", {"units": int(m.out_features), "use_bias": m.bias is not None}, w, PLAIN)


def _activation(name: str) -> Callable:
    def convert_(ctx: _Ctx, node: Node, obj: Any) -> Step:
        return _step(ctx, node, "activation", {"activation": name})

    return convert_


converter(nn.ReLU, torch.relu, F.relu, "relu")(_activation("relu"))
converter(nn.Tanh, torch.tanh, F.tanh, "tanh")(_activation("tanh"))
converter(nn.Sigmoid, torch.sigmoid, F.sigmoid, "sigmoid")(_activation("sigmoid"))


@converter(nn.Softmax, torch.softmax, F.softmax, "softmax")
def _softmax(ctx: _Ctx, node: Node, obj: Any) -> Step:
    rank = len(ctx.shapes[node.args[0]])
    dim = obj.dim if isinstance(obj, nn.Module) else _arg(node, 1, "dim", None)
    if not isinstance(obj, nn.Module) and (_arg(node, 2 if obj is torch.softmax else 3, "dtype", None) is not None):
        raise ctx.refuse(node, "softmax with dtype= computes in another dtype")
    if dim is None:  # torch's implicit dim (F._get_softmax_dim)
        dim = 0 if rank in (0, 1, 3) else 1
    dim = dim % rank
    want = 1 if ctx.layout.kind == "nchw" else rank - 1  # the description's last axis: channels in NCHW
    if dim != want:
        raise ctx.refuse(node, f"softmax over dim {dim} of {ctx.shapes[node.args[0]]}; the description's softmax is "
                               f"over the last axis (dim {want} here)")  # fmt: skip
    return _step(ctx, node, "activation", {"activation": "softmax"})


@converter(nn.Dropout, F.dropout)
def _dropout(ctx: _Ctx, node: Node, obj: Any) -> Step:
    if isinstance(obj, nn.Module):
        p = float(obj.p)
    else:
        p, training = float(_arg(node, 1, "p", 0.5)), _arg(node, 2, "training", True)
        if training is not False:
            raise ctx.refuse(node, f"F.dropout(training={training!r}) drops at inference too; pass training=self.training")
    return _step(ctx, node, "dropout", {"rate": p})


@converter(nn.Identity, "contiguous")
def _identity(ctx: _Ctx, node: Node, obj: Any) -> Step:
    return Step(None, [node], ctx.layout)


# --------------------------------------------------------------------------- tracing and the walk


class _ShapePass(fx.Interpreter):
    """Every node's output shape for one input; a node that fails names itself."""

    def __init__(self, gm: Any):
        super().__init__(gm)
        self.shapes: dict = {}

    def run_node(self, n: Node) -> Any:
        try:
            out = super().run_node(n)
        except Exception as e:
            self.failed = n
            raise _NodeFailed(n, e) from e
        self.shapes[n] = (tuple(out.shape) if isinstance(out, torch.Tensor) else
                          tuple(tuple(o.shape) if isinstance(o, torch.Tensor) else o for o in out) if isinstance(out, tuple) else out)  # fmt: skip
        return out


class _NodeFailed(Exception):
    def __init__(self, node: Node, error: Exception):
        super().__init__(str(error))
        self.node, self.error = node, error


def _expects(m: Any) -> str:
    if isinstance(m, nn.Conv2d):
        return f"(B, {m.in_channels}, H, W)"
    if isinstance(m, nn.Linear):
        return f"(..., {m.in_features})"
    if isinstance(m, nn.GRU):
        return f"(B, T, {m.input_size})" if m.batch_first else f"(T, B, {m.input_size})"
    return "another shape"


def _shapes(gm: Any, module: Any, input_shape: tuple, dtype: str, where: str) -> dict:
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, input_shape).astype(dtype))
    sp = _ShapePass(gm)
    try:
        with torch.no_grad():
            sp.run(x)
    except _NodeFailed as f:
        n = f.node
        got = [sp.shapes.get(a) for a in n.args if isinstance(a, Node)]
        what = _expects(gm.get_submodule(n.target)) if n.op == "call_module" else "another shape"
        raise ShapeError(f"{where}: --input-shape {','.join(map(str, input_shape))} does not fit the module: node "
                         f"{n.name!r} expects {what} but is given {got[0] if got else '?'} "
                         f"({type(f.error).__name__}: {str(f.error).splitlines()[0] if str(f.error) else ''})") from None  # fmt: skip
    return sp.shapes


def _lookup(ctx: _Ctx, node: Node) -> tuple[Callable, Any]:
    if node.op == "call_module":
        m = ctx.gm.get_submodule(node.target)
        if type(m) in MODULES:
            return MODULES[type(m)], m
        extra = " (LSTM and bidirectional recurrences come in a later issue)" if isinstance(m, nn.LSTM) else ""
        raise ctx.refuse(node, f"{_cls_name(type(m))} is not supported{extra}", listed=True)
    if node.op == "call_function" and node.target in FUNCTIONS:
        return FUNCTIONS[node.target], node.target
    if node.op == "call_method" and node.target in METHODS:
        return METHODS[node.target], node.target
    if node.op == "get_attr":
        raise ctx.refuse(node, "a tensor the module holds is used in forward; the chain's layers hold every weight", listed=True)
    raise ctx.refuse(node, "not supported", listed=True)


def _walk(ctx: _Ctx) -> list[Step]:
    nodes = list(ctx.gm.graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise UnsupportedLayer(f"{ctx.where}: forward takes {len(inputs)} inputs {[n.name for n in inputs]}; a chain takes one")
    current, done, steps = inputs[0], set(inputs), []
    ctx.layout = Layout("nchw") if len(ctx.shapes[current]) == 4 else PLAIN
    for node in nodes:
        if node in done or _is_shape_node(node):
            continue
        if node.op == "output":
            result = node.args[0]
            if result is not current:
                raise UnsupportedLayer(f"{ctx.where}: forward returns {result!r}, not the chain's last tensor "
                                       f"{current.name!r}: a chain returns one tensor")  # fmt: skip
            break
        args = _tensor_args(node)
        if len(args) > 1:
            raise ctx.refuse(node, f"it joins {len(args)} paths ({', '.join(a.name for a in args)}): a branch; the "
                                   "description is a chain (branches come in a later issue)")  # fmt: skip
        if node.op != "get_attr" and not args:
            raise ctx.refuse(node, "it makes a tensor from no input: a second path beside the chain; the description "
                                   "is a chain whose layers hold every weight")  # fmt: skip
        if node.op != "get_attr" and args[0] is not current:
            raise ctx.refuse(node, f"it reads {args[0].name!r}, not the chain's current {current.name!r}: a branch; "
                                   "the description is a chain")  # fmt: skip
        users = _tensor_users(current)
        if len(users) > 1:
            raise ctx.refuse(node, f"its input {current.name!r} is used by {len(users)} nodes ({', '.join(u.name for u in users)}): "
                                   "a branch; the description is a chain (branches come in a later issue)")  # fmt: skip
        fn, obj = _lookup(ctx, node)
        step = fn(ctx, node, obj)
        step.input = current
        done.update(step.nodes)
        steps.append(step)
        current, ctx.layout = step.nodes[-1], step.layout
    return steps


class _Recorder(fx.Interpreter):
    """The module's own chain, run node by node; the node that ends each description layer is copied the moment it
    is computed (a later in-place op, nn.ReLU(inplace=True), would otherwise overwrite it)."""

    def __init__(self, gm: Any, ends: dict):
        super().__init__(gm)
        self.ends, self.recorded = ends, {}

    def run_node(self, n: Node) -> Any:
        out = super().run_node(n)
        if n in self.ends:
            self.recorded[self.ends[n]] = out.detach().clone().numpy()
        return out


def _run_step(gm: Any, step: Step, t: Any, shapes: dict) -> Any:
    """The step's own modules / functions on t (fed where the chain fed step.input). A size read off a tensor
    outside the step (`b = x.size(0)` at the top of forward) comes from a stand-in of that tensor's shape, t's batch."""
    env = {step.input: t}

    def value(n: Node) -> Any:
        if n not in env:
            if _is_shape_node(n):
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
    layer_steps = [s for s in steps if s.layer is not None]
    if not layer_steps:
        raise UnsupportedLayer(f"{where}: the module computes no layer the description holds; supported: {supported()}")
    in_layout = Layout("nchw") if len(input_shape) == 4 else PLAIN
    canon_in = _canonical_shape(input_shape, in_layout)
    model = Model(type(module).__name__, canon_in[1:], tuple(s.layer for s in layer_steps), dtype, "torch", "channels_first")
    model.check(input_shape[0])
    want = model.shapes(input_shape[0])
    for i, s in enumerate(layer_steps):
        got = _canonical_shape(shapes[s.nodes[-1]], s.layout)
        if tuple(got) != tuple(want[i + 1]):
            raise ShapeError(f"{where}: {s.layer.label(i)} gives {shapes[s.nodes[-1]]} in torch (canonically {got}) but "
                             f"the description computes {want[i + 1]}")  # fmt: skip
    layouts = [in_layout, *(s.layout for s in layer_steps)]
    out_layout = steps[-1].layout

    def tensor(x: np.ndarray, layout: Layout) -> Any:
        return torch.from_numpy(layout.to_torch(np.asarray(x, dtype)))

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return out_layout.to_canonical(module(tensor(x, in_layout)).numpy())

    ends = {s.nodes[-1]: i for i, s in enumerate(layer_steps)}

    def layer_outputs(x: np.ndarray) -> list[np.ndarray]:
        interp = _Recorder(gm, ends)
        with torch.no_grad():
            interp.run(tensor(x, in_layout))
        return [s.layout.to_canonical(interp.recorded[i]) for i, s in enumerate(layer_steps)]

    def layer_call(i: int, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = _run_step(gm, layer_steps[i], tensor(x, layouts[i]), shapes)
        return layer_steps[i].layout.to_canonical(y.numpy())

    return Imported(model, "torch", where, forward, layer_outputs, layer_call, dtype, ctx.notes)


__all__ = ["FUNCTIONS", "METHODS", "MODULES", "Step", "converter", "from_module", "supported"]
