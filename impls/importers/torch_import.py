"""The torch importer: a torch.nn.Module -> a model description, through torch.fx.

    imported = from_module(net, (3, 1, 28, 28), "net.py:model")   # the input shape batch first, torch's layout

The module is traced with torch.fx.symbolic_trace and its nodes are read in the traced (topological) order by a
registry of small converters keyed by module class, function or Tensor method (`@converter(nn.Conv2d)`,
`@converter(torch.relu)`, `@converter("view")`), as a graph: a layer may read any earlier layer's output, and paths
join by `x + y` / torch.add (add) and torch.cat(dim=d) (concatenate on the description's axis of torch's dim d). A
miss, another join (x * y), a module with weights called twice (shared weights), or an option the description lacks
is UnsupportedLayer naming the node, its class or function and its position.

Issue 18's kinds: nn.Conv1d (NCW; padding int, 'same', 'valid'; zeros only), nn.BatchNorm1d/2d (the running
statistics are the state; torch's momentum m is the description's 1 - m, variance_update 'unbiased';
track_running_stats=False and momentum=None are refused), nn.LayerNorm over the last dim where torch holds the
channels last (a LayerNorm on an NCHW/NCW map normalises its width: refused, with the permute that makes it
importable), AdaptiveAvg/MaxPool1d/2d(1) followed by a flatten, x.mean(dim=...) / x.amax(dim=...) over every
position (a global pool), x.permute / x.transpose (no layer where the result is the same tensor in another layout:
x.permute(0, 2, 3, 1) of an NCHW map, x.permute(0, 2, 1) of a (B, T, F) sequence that a Conv1d then reads; else a
permute layer), reshapes of a tensor torch holds as the description does. A 3-D input a Conv1d, BatchNorm1d or 1-D
adaptive pool reads is a (B, C, L) map (the description's (B, L, C)). Weights become canonical arrays in the
module's own dtype through impls/convert.py (gru_from_torch, lstm_from_torch, oihw_to_hwio, dense_from_torch, and
flatten_rows_nchw_to_nhwc for the Linear after a flatten of a map: torch flattens NCHW in (c, h, w) order).
Images are NHWC in the description (input_shape (H, W, C)), with boundary "channels_first".

Recurrences (nn.LSTM, nn.GRU, batch_first=True) become one description layer per torch layer (num_layers > 1 is a
stack; bidirectional=True one layer with both directions), every one but the last returning its sequence. The last
one's return_sequences is what the pattern reading it says: `out` used whole is the sequence; a one-direction
`out[:, -1]`, h[-1] and h.squeeze(0) are the final state (return_sequences False); a bidirectional `out[:, -1]` is
NOT its final states (the backward half is the backward cell's first step): the sequence and a take_step(-1) layer;
`torch.cat((h[-2], h[-1]), dim=1)` is a bidirectional layer's final states (concat). h[-1] of a bidirectional h_n
(the backward final state alone), c_n, proj_size, an initial state and batch_first=False are refused, with the
reason; bias=False is zero biases and the inter-layer dropout is identity at inference. nn.Embedding reading the
input makes the input integer ids (input_dtype int64); padding_idx, max_norm and scale_grad_by_freq are refused.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract.spec import ShapeError, same_pads
from ..layouts import PLAIN, Layout
from ..model.description import INPUT, Layer, Model, ModelError
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
    input: Any = None  # the node it reads (a merge: its first input)
    in_layout: Layout | None = None  # how torch holds what it reads
    parts: list | None = None  # several description layers from these nodes (a stacked or bidirectional recurrence
    # read at its last step): [(Layer, torch tensor -> tensor: that layer alone, the module's own weights)]

    def layers(self) -> list[Layer]:
        return [p[0] for p in self.parts] if self.parts else ([] if self.layer is None else [self.layer])


@dataclass
class _Ctx:
    gm: Any
    where: str
    shapes: dict  # node -> torch shape (or a tuple of shapes)
    dtype: str
    order: dict  # node -> its position in the traced graph
    layout: Layout = PLAIN
    in_layout: Layout = PLAIN
    out_layout: Layout = PLAIN  # how torch holds what forward returns (a layout-only permute may follow the last layer)
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
    if layout.kind == "ncw":
        b, c, length = shape
        return (b, length, c)
    return tuple(shape)


# --------------------------------------------------------------------------- converters


def _getitems(node: Node) -> dict:
    """{index: the getitem node} of a tuple-valued node (the recurrence's (out, h_n) or LSTM's (h_n, c_n))."""
    picks = {}
    for u in node.users:
        if u.op != "call_function" or u.target is not operator.getitem or not isinstance(u.args[1], int):
            return {None: u}
        picks[u.args[1] % 2] = u
    return picks


def _state_index(n: Node, count: int) -> int | None:
    """The row of h_n (count, B, H) that n picks: h[i] or h.squeeze(0) (count 1); None for anything else."""
    if n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[1], int):
        return n.args[1] % count if -count <= n.args[1] < count else None
    if n.op == "call_method" and n.target == "squeeze" and _arg(n, 1, "dim", None) == 0 and count == 1:
        return 0
    return None


def _final_concat(ctx: _Ctx, h: Node, count: int) -> tuple[list, Node] | None:
    """torch.cat((h[-2], h[-1]), dim=1): the last layer's forward then backward final state; (the picks, the cat)."""
    users = _tensor_users(h)
    if len(users) != 2 or any(_state_index(u, count) is None for u in users):
        return None
    cats = {c for u in users for c in _tensor_users(u)}
    if len(cats) != 1:
        return None
    cat = next(iter(cats))
    if cat.op != "call_function" or cat.target is not torch.cat or not isinstance(cat.args[0], (tuple, list)):
        return None
    parts = list(cat.args[0])
    dim = _arg(cat, 1, "dim", 0)
    if len(parts) != 2 or dim not in (1, -1) or [_state_index(p, count) for p in parts] != [count - 2, count - 1]:
        return None
    return parts, cat


def _rnn_weights(ctx: _Ctx, m: Any, layer: int, lstm: bool) -> dict:
    """One layer's canonical weights of nn.LSTM / nn.GRU (both directions: `_rev` for torch's `_reverse`)."""
    out = {}
    for s, t in [("", f"l{layer}")] + ([("_rev", f"l{layer}_reverse")] if m.bidirectional else []):
        state = {f"{k}_{t}": ctx.array(getattr(m, f"{k}_{t}")) for k in ("weight_ih", "weight_hh")}
        G = state[f"weight_ih_{t}"].shape[0]
        for k in ("bias_ih", "bias_hh"):  # bias=False: zero biases
            state[f"{k}_{t}"] = ctx.array(getattr(m, f"{k}_{t}")) if m.bias else np.zeros(G, ctx.dtype)
        w = (convert.lstm_from_torch if lstm else convert.gru_from_torch)(state, suffix=t)
        out |= {"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h}
    return out


def _one_layer(m: Any, layer: int, seq: bool) -> Callable:
    """Layer `layer` of the user's stacked recurrence alone: a one-layer copy of torch's own class holding that
    layer's weights, returning the sequence or the final state(s) (forward, then backward, concatenated)."""
    lstm = isinstance(m, nn.LSTM)
    ref = getattr(m, f"weight_ih_l{layer}")
    one = type(m)(ref.shape[1], m.hidden_size, batch_first=True, bidirectional=m.bidirectional, bias=m.bias)
    one = one.to(ref.dtype).eval()
    with torch.no_grad():
        for sfx in ("", "_reverse") if m.bidirectional else ("",):
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if m.bias else ("weight_ih", "weight_hh"):
                getattr(one, f"{k}_l0{sfx}").copy_(getattr(m, f"{k}_l{layer}{sfx}"))

    def run(t: Any) -> Any:
        out, hn = one(t)
        if seq:
            return out
        h = hn[0] if lstm else hn
        return torch.cat((h[0], h[1]), dim=1) if m.bidirectional else h[0]

    return run


@converter(nn.LSTM, nn.GRU)
def _recurrent(ctx: _Ctx, node: Node, m: Any) -> Step:
    """nn.LSTM / nn.GRU: one description layer per torch layer (both directions in one), the last one's
    return_sequences as the pattern that reads it decides: `out` whole, `out[:, -1]`, h_n's rows, or
    torch.cat((h[-2], h[-1]), dim=1) (a bidirectional layer's final states)."""
    lstm = isinstance(m, nn.LSTM)
    kind = "lstm" if lstm else "gru"
    if not m.batch_first:
        raise ctx.refuse(node, "batch_first=False: the module takes (T, B, I); the description's sequences are "
                               "batch first (B, T, I): build it with batch_first=True (the same weights)")  # fmt: skip
    if lstm and m.proj_size > 0:
        raise ctx.refuse(node, f"proj_size={m.proj_size}: a projected LSTM (h = W_hr h) is not in the description")
    if len(node.args) > 1 or node.kwargs:
        raise ctx.refuse(node, "it is given an initial state; the description's recurrences start from zeros")
    if len(ctx.shapes[node.args[0]]) != 3:
        raise ctx.refuse(node, f"its input {ctx.shapes[node.args[0]]} is not batched (B, T, I)")
    L, D, H = int(m.num_layers), 2 if m.bidirectional else 1, int(m.hidden_size)
    T = ctx.shapes[node.args[0]][1]
    picks = _getitems(node)
    if None in picks:
        raise ctx.refuse(node, f"its (output, h_n) tuple is used whole by {picks[None].name!r}; unpack it: out, h = rnn(x)")
    nodes = [node, *picks.values()]
    hn = picks.get(1)
    if lstm and hn is not None:  # (h_n, c_n)
        sub = _getitems(hn)
        if None in sub:
            raise ctx.refuse(node, f"its (h_n, c_n) is used whole by {sub[None].name!r}; unpack it: out, (h, c) = lstm(x)")
        if 1 in sub and _tensor_users(sub[1]):
            raise ctx.refuse(node, "its cell state c_n is used; the description's LSTM gives the hidden state only")
        nodes += list(sub.values())
        hn = sub.get(0)
    used = [g for g in (picks.get(0), hn) if g is not None and _tensor_users(g)]
    if len(used) != 1:
        raise ctx.refuse(node, "both its output and h_n are used: a branch (a chain uses one of them)"
                         if used else "neither its output nor h_n is used")
    pick, after = used[0], _tensor_users(used[0])
    take_step = False
    if pick is picks.get(0):  # out (B, T, D H): whole, or out[:, -1]
        last = after[0] if len(after) == 1 else None
        at_end = last is not None and last.op == "call_function" and last.target is operator.getitem \
            and _is_last_step(last.args[1], T)  # fmt: skip
        seq = not at_end or D == 2
        take_step = at_end and D == 2  # a bidirectional out[:, -1] is not the final states: its backward half is
        out_node = last if at_end else pick  # the backward cell's first step
    else:  # h_n (L D, B, H)
        seq, count = False, L * D
        both = _final_concat(ctx, pick, count) if D == 2 else None
        if both is not None:
            nodes += both[0]
            out_node = both[1]
        else:
            rows = [_state_index(u, count) for u in after]
            if len(after) != 1 or rows[0] is None:
                hint = "torch.cat((h[-2], h[-1]), dim=1)" if D == 2 else "h[-1]"
                raise ctx.refuse(node, f"h_n ({count}, B, {H}) is used as {', '.join(u.name for u in after)}; the "
                                       f"chain's final state is {hint}")  # fmt: skip
            if D == 2:
                raise ctx.refuse(node, f"h[{rows[0]}] of a bidirectional h_n is one direction's final state alone "
                                       f"({'backward' if rows[0] % 2 else 'forward'}); the description's "
                                       "bidirectional layer gives both (torch.cat((h[-2], h[-1]), dim=1), or a merge)")  # fmt: skip
            if rows[0] != count - 1:
                raise ctx.refuse(node, f"h[{rows[0]}] is layer {rows[0]}'s final state, not the last layer's: a "
                                       "branch out of the stack")  # fmt: skip
            out_node = after[0]
    nodes = sorted(set(nodes) | {out_node}, key=ctx.order.__getitem__)
    nodes.remove(out_node)
    nodes.append(out_node)
    if L > 1 and m.dropout:
        ctx.notes.append(f"{node.name}: dropout={m.dropout} between its {L} layers is identity at inference (eval mode)")
    if m.bias is False:
        ctx.notes.append(f"{node.name}: bias=False imports as zero biases")
    base = ctx.name(node)
    layers, fns = [], []
    for j in range(L):
        last_layer = j == L - 1
        opts = {"units": H, "return_sequences": True if not last_layer else seq}
        if D == 2:
            opts["direction"] = "bidirectional"
        if not lstm:
            opts["variant"] = "reset_after"
        name = base if L == 1 else f"{base}.l{j}"
        layers.append(Layer(kind, name, opts, _rnn_weights(ctx, m, j, lstm)))
        fns.append(_one_layer(m, j, opts["return_sequences"]))
    if take_step:
        ctx.notes.append(f"{node.name}: out[:, -1] of a bidirectional layer is its sequence's last step (the backward "
                         "half is the backward cell's FIRST step, not its final state): a take_step(-1) layer")  # fmt: skip
        step_name = f"{base}_last_step"
        while step_name in ctx.names:
            step_name += "_"
        ctx.names.add(step_name)
        layers.append(Layer("take_step", step_name, {"index": -1}, {}))
        fns.append(lambda t: t[:, -1])
    if len(layers) == 1:
        return Step(layers[0], nodes, PLAIN)
    return Step(layers[-1], nodes, PLAIN, parts=list(zip(layers, fns, strict=True)))


@converter(nn.Embedding)
def _embedding(ctx: _Ctx, node: Node, m: Any) -> Step:
    if m.padding_idx is not None:
        raise ctx.refuse(node, f"padding_idx={m.padding_idx}: that row gets no gradient (torch zeroes it in the "
                               "backward), which the description's embedding does not; it is not a mask either")  # fmt: skip
    if m.max_norm is not None:
        raise ctx.refuse(node, f"max_norm={m.max_norm}: torch renormalises the rows it looks up (in place, in the "
                               "forward); the description's lookup returns the table's rows as they are")  # fmt: skip
    if m.scale_grad_by_freq:
        raise ctx.refuse(node, "scale_grad_by_freq=True scales the gradient by the ids' frequency in the batch; the "
                               "description's embedding does not")  # fmt: skip
    if node.args[0].op != "placeholder":
        raise ctx.refuse(node, "it reads a computed tensor; the description's embedding takes the model's integer ids")
    if m.sparse:
        ctx.notes.append(f"{node.name}: sparse=True gives a sparse gradient, the same numbers as a dense one")
    opts = {"input_dim": int(m.num_embeddings), "output_dim": int(m.embedding_dim)}
    return _step(ctx, node, "embedding", opts, {"embeddings": ctx.array(m.weight)}, PLAIN)


def _is_last_step(index: Any, T: int) -> bool:
    full = slice(None, None, None)
    return isinstance(index, tuple) and len(index) in (2, 3) and index[0] == full and index[1] in (-1, T - 1) \
        and (len(index) == 2 or index[2] == full)  # fmt: skip


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
    if ctx.layout.kind == "ncw":
        _, c, length = shape
        ctx.notes.append(f"{node.name}: torch flattens the (B, {c}, {length}) map in (c, l) order; the next Linear's "
                         "rows are read back in the description's (l, c) order")  # fmt: skip
        return _step(ctx, node, "flatten", layout=Layout("chw", (1, length, c)))
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
    """A reshape to (B, -1) is a flatten (any layout); any other keeps the batch and reads row-major memory, which is
    the description's reshape where torch holds the tensor as the description does (a sequence, a vector, a
    channels-last map); a channels-first map's (c, h, w) memory is not the description's (h, w, c), and is refused."""
    before, after = ctx.shapes[node.args[0]], ctx.shapes[node]
    if len(before) < 2 or after[0] != before[0]:
        raise ctx.refuse(node, f"it reshapes {before} to {after}; the description's reshape keeps the batch axis")
    if len(after) == 2:
        return _flatten_step(ctx, node)
    if ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it reshapes the {ctx.layout.kind.upper()} map {before} to {after}: torch reshapes its "
                               "channels-first memory, the description its channels-last one; permute it channels-last "
                               "first (x.permute(0, 2, 3, 1) / x.permute(0, 2, 1))")  # fmt: skip
    return _step(ctx, node, "reshape", {"target_shape": [int(d) for d in after[1:]]}, layout=PLAIN)


_CANON = {"nchw": (0, 2, 3, 1), "ncw": (0, 2, 1)}
"""torch axis order -> the description's: canonical = torch.permute(_CANON[layout])."""


def _layouts_for(rank: int) -> list[Layout]:
    return {4: [Layout("nchw"), PLAIN], 3: [Layout("ncw"), PLAIN]}.get(rank, [PLAIN])


@converter("permute", torch.permute, "transpose", torch.transpose)
def _permute(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x.permute(...) / x.transpose(a, b): where the permuted tensor is the same description tensor held in another
    layout (x.permute(0, 2, 3, 1) of an NCHW map is its channels-last form; x.permute(0, 2, 1) turns a (B, T, F)
    sequence into the (B, C, L) map a Conv1d reads) it is no layer; otherwise a permute layer on the description's
    axes. The batch axis stays."""
    rank = len(ctx.shapes[node.args[0]])
    if node.target in ("transpose", torch.transpose):
        a, b = (int(_arg(node, 1, "dim0", 0)) % rank, int(_arg(node, 2, "dim1", 1)) % rank)
        perm = list(range(rank))
        perm[a], perm[b] = perm[b], perm[a]
    else:
        dims = node.args[1:] if node.target == "permute" else (_arg(node, 1, "dims", ()),)
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        perm = [int(d) % rank for d in dims]
    if sorted(perm) != list(range(rank)) or perm[0] != 0:
        raise ctx.refuse(node, f"it permutes the axes {perm}, moving the batch axis; the description keeps it first")
    have = _CANON.get(ctx.layout.kind, tuple(range(rank)))
    # the result r = t.permute(perm); t = canonical.permute(inverse(have)); so r holds canonical axes inv_have[perm[k]]
    inv_have = list(np.argsort(have))
    held = [int(inv_have[p]) for p in perm]  # torch axis k of the result is canonical axis held[k]
    for lay in _layouts_for(rank):
        want = _CANON.get(lay.kind, tuple(range(rank)))
        if [held[w] for w in want] == list(range(rank)):  # the result in `lay` is the same canonical tensor
            return Step(None, [node], lay)
    out = PLAIN if rank != 4 else Layout("nchw")
    want = _CANON.get(out.kind, tuple(range(rank)))
    dims = [held[w] for w in want]  # canonical' axis k = canonical axis dims[k]
    return _step(ctx, node, "permute", {"dims": [int(d) for d in dims[1:]]}, layout=out)


def _map_input(ctx: _Ctx, node: Node, want: str, what: str) -> tuple:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind != want:
        hint = " (a (B, T, F) sequence: x.permute(0, 2, 1) makes it the (B, F, T) map)" if want == "ncw" and \
            ctx.layout.kind == "plain" and len(shape) == 3 else ""  # fmt: skip
        raise ctx.refuse(node, f"it takes {shape}, which torch holds {ctx.layout.kind}, not a {what}{hint}")
    return shape


@converter(nn.Conv1d)
def _conv1d(ctx: _Ctx, node: Node, m: Any) -> Step:
    _, _, L = _map_input(ctx, node, "ncw", "batched (B, C, L) map")
    if m.padding_mode != "zeros":
        raise ctx.refuse(node, f"padding_mode={m.padding_mode!r}; the description pads with zeros only")
    (k,), (d,), (st,) = m.kernel_size, m.dilation, m.stride
    if m.padding == "same":  # torch's 'same' (stride 1): total (k - 1) * d, the odd pad after
        left, right = same_pads(L, (k - 1) * d + 1, 1)
    elif m.padding == "valid":
        left = right = 0
    else:
        left = right = int(m.padding[0])
    padding = "valid" if not (left or right) else [int(left), int(right)]
    opts = {"filters": int(m.out_channels), "kernel_size": int(k), "strides": int(st), "padding": padding,
            "dilation": int(d), "groups": int(m.groups), "use_bias": m.bias is not None}  # fmt: skip
    w = {"kernel": ctx.array(m.weight).transpose(2, 1, 0)}  # (O, C/g, K) -> (K, C/g, O)
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return _step(ctx, node, "conv1d", opts, w, Layout("ncw"))


def _description_momentum(m: float) -> float:
    """torch's momentum (the new statistic's share) as the description's (the old one's share)."""
    v = 1.0 - float(m)
    short = float(f"{v:.12g}")
    return short if abs(short - v) <= 1e-15 else v


@converter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(ctx: _Ctx, node: Node, m: Any) -> Step:
    shape = ctx.shapes[node.args[0]]
    if isinstance(m, nn.BatchNorm2d):
        _map_input(ctx, node, "nchw", "batched NCHW map")
    elif len(shape) == 3:
        _map_input(ctx, node, "ncw", "batched (B, C, L) map (BatchNorm1d normalises dim 1)")
    elif len(shape) != 2 or ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it takes {shape}, held {ctx.layout.kind}; BatchNorm1d takes (B, C) or (B, C, L)")
    if not m.track_running_stats or m.running_mean is None:
        raise ctx.refuse(node, "track_running_stats=False: it normalises by the batch's statistics at inference too; "
                               "the description's BatchNorm uses its moving statistics at inference")  # fmt: skip
    if m.momentum is None:
        raise ctx.refuse(node, "momentum=None: torch then keeps a cumulative average of every batch's statistics; the "
                               "description's moving statistics are an exponential average (a momentum in [0, 1))")  # fmt: skip
    momentum = _description_momentum(m.momentum)
    if not 0.0 <= momentum < 1.0:
        raise ctx.refuse(node, f"momentum={m.momentum!r}: the description's momentum 1 - {m.momentum!r} is outside [0, 1)")
    opts = {"epsilon": float(m.eps), "momentum": momentum, "variance_update": "unbiased", "center": bool(m.affine),
            "scale": bool(m.affine)}  # fmt: skip
    w = {"moving_mean": ctx.array(m.running_mean), "moving_var": ctx.array(m.running_var)}
    if m.affine:
        w |= {"gamma": ctx.array(m.weight), "beta": ctx.array(m.bias)}
    ctx.notes.append(f"{node.name}: momentum={m.momentum!r} is torch's share of the new batch statistic: the "
                     f"description keeps {momentum!r} of the old; running_var moves with the unbiased batch variance")  # fmt: skip
    return _step(ctx, node, "batch_norm", opts, w)


@converter(nn.LayerNorm)
def _layer_norm(ctx: _Ctx, node: Node, m: Any) -> Step:
    shape = ctx.shapes[node.args[0]]
    if len(m.normalized_shape) != 1:
        raise ctx.refuse(node, f"normalized_shape={tuple(m.normalized_shape)}: the description's LayerNorm normalises "
                               "the last axis alone")  # fmt: skip
    if ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it normalises the last axis of the {ctx.layout.kind.upper()} map {shape}, which is not "
                               "its channels; the description's LayerNorm is over the channels: permute the map "
                               "channels-last around it (self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))")  # fmt: skip
    affine = bool(m.elementwise_affine)
    has_bias = affine and getattr(m, "bias", None) is not None
    w = {}
    if affine:
        w["gamma"] = ctx.array(m.weight)
    if has_bias:
        w["beta"] = ctx.array(m.bias)
    return _step(ctx, node, "layer_norm", {"epsilon": float(m.eps), "scale": affine, "center": has_bias}, w)


_FLATTENS = ("flatten", "view", "reshape", "squeeze")


def _pooled_flatten(ctx: _Ctx, node: Node) -> Node | None:
    """The node that flattens a (B, C, 1[, 1]) pool output to (B, C), if that is its one tensor user."""
    users = _tensor_users(node)
    if len(users) != 1:
        return None
    u = users[0]
    b, c = ctx.shapes[node][:2]
    if tuple(ctx.shapes[u]) != (b, c):
        return None
    if u.op == "call_module" and isinstance(ctx.gm.get_submodule(u.target), nn.Flatten):
        return u
    if (u.op == "call_method" and u.target in _FLATTENS) or (u.op == "call_function" and u.target in (torch.flatten, torch.reshape, torch.squeeze)):
        return u
    return None


@converter(nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)
def _adaptive_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    two = isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
    _map_input(ctx, node, "nchw" if two else "ncw", "batched NCHW map" if two else "batched (B, C, L) map")
    size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,) * (2 if two else 1)
    if any(s != 1 for s in size):
        raise ctx.refuse(node, f"output_size={m.output_size!r}; the description pools globally (output size 1)")
    if getattr(m, "return_indices", False):
        raise ctx.refuse(node, "return_indices=True; a layer gives one tensor")
    flat = _pooled_flatten(ctx, node)
    if flat is None:
        raise ctx.refuse(node, f"its (B, C, {'1, 1' if two else '1'}) output is not flattened to (B, C) right after "
                               "(nn.Flatten(), x.flatten(1), x.view(B, -1)); the description's global pool gives "
                               "(B, C)")  # fmt: skip
    kind = "global_avg_pool" if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) else "global_max_pool"
    return _step(ctx, node, kind, layout=PLAIN, nodes=[node, flat])


@converter("mean", torch.mean, "amax", torch.amax)
def _mean(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x.mean(dim=...) / x.amax(dim=...) over every position of a map (dims 2, 3 of NCHW; 2 of NCW) or over the steps
    of a (B, T, F) sequence (dim 1): a global pool."""
    shape = ctx.shapes[node.args[0]]
    rank = len(shape)
    dim = _arg(node, 1, "dim", None)
    keep = _arg(node, 2, "keepdim", False)
    if dim is None or keep or node.kwargs.get("dtype") is not None:
        raise ctx.refuse(node, f"dim={dim!r}, keepdim={keep!r}: only the mean / maximum over every position, "
                               "keepdim=False, is a global pool")  # fmt: skip
    dims = sorted({int(d) % rank for d in (dim if isinstance(dim, (list, tuple)) else [dim])})
    want = {"nchw": [2, 3], "ncw": [2]}.get(ctx.layout.kind, [1] if rank == 3 else list(range(1, rank - 1)))
    if dims != want or rank not in (3, 4) or ctx.layout.kind == "chw":
        raise ctx.refuse(node, f"it reduces dims {dims} of {shape} (held {ctx.layout.kind}); a global pool reduces "
                               f"every position ({want}) and keeps the channels")  # fmt: skip
    kind = "global_avg_pool" if node.target in ("mean", torch.mean) else "global_max_pool"
    return _step(ctx, node, kind, layout=PLAIN)


@converter(nn.Linear)
def _linear(ctx: _Ctx, node: Node, m: Any) -> Step:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind in ("nchw", "ncw"):
        raise ctx.refuse(node, f"it acts on the last ({'width' if ctx.layout.kind == 'nchw' else 'length'}) axis of the "
                               f"{ctx.layout.kind.upper()} map {shape}; the description's Dense takes (B, in) or "
                               "(B, T, in)")  # fmt: skip
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
    want = 1 if ctx.layout.kind in ("nchw", "ncw") else rank - 1  # the description's last axis: channels in NCHW
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
    if isinstance(m, (nn.GRU, nn.LSTM)):
        return f"(B, T, {m.input_size})" if m.batch_first else f"(T, B, {m.input_size})"
    if isinstance(m, nn.Embedding):
        return f"integer ids (B, T) in [0, {m.num_embeddings})"
    return "another shape"


def _id_table(gm: Any) -> int | None:
    """The table size of the nn.Embedding that reads the module's input (its input is then integer ids), or None."""
    for n in gm.graph.nodes:
        if n.op == "placeholder":
            for u in n.users:
                if u.op == "call_module" and isinstance(gm.get_submodule(u.target), nn.Embedding):
                    return int(gm.get_submodule(u.target).num_embeddings)
    return None


def _shapes(gm: Any, module: Any, input_shape: tuple, dtype: str, where: str) -> dict:
    g, table = np.random.default_rng(0), _id_table(gm)
    x = torch.from_numpy(g.integers(0, table, input_shape) if table else g.uniform(-1, 1, input_shape).astype(dtype))
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
        raise ctx.refuse(node, f"{_cls_name(type(m))} is not supported", listed=True)
    if node.op == "call_function" and node.target in FUNCTIONS:
        return FUNCTIONS[node.target], node.target
    if node.op == "call_method" and node.target in METHODS:
        return METHODS[node.target], node.target
    if node.op == "get_attr":
        raise ctx.refuse(node, "a tensor the module holds is used in forward; the chain's layers hold every weight", listed=True)
    raise ctx.refuse(node, "not supported", listed=True)


_MERGE_FUNCTIONS = (operator.add, torch.add, torch.cat, torch.concat)
_MAP_READERS = (nn.Conv1d, nn.BatchNorm1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)


def _input_layout(ctx: _Ctx, x: Node) -> Layout:
    """A 4-D input is NCHW; a 3-D one is a feature map (B, C, L) where a Conv1d, a BatchNorm1d or a 1-D adaptive pool
    reads it (the description holds it (B, L, C)), else a sequence (B, T, F) as it is."""
    rank = len(ctx.shapes[x])
    if rank == 4:
        return Layout("nchw")
    if rank == 3 and any(u.op == "call_module" and isinstance(ctx.gm.get_submodule(u.target), _MAP_READERS)
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


def _is_merge(node: Node) -> bool:
    return (node.op == "call_function" and node.target in _MERGE_FUNCTIONS) or (
        node.op == "call_method" and node.target == "add")


def _merge(ctx: _Ctx, node: Node, tensors: dict) -> Step:
    """x + y / torch.add(x, y) -> add; torch.cat([...], dim) -> concatenate on the canonical axis of that dim."""
    is_cat = node.op == "call_function" and node.target in (torch.cat, torch.concat)
    if is_cat:
        seq = _arg(node, 0, "tensors", None)
        if not isinstance(seq, (list, tuple)) or not all(isinstance(a, Node) for a in seq):
            raise ctx.refuse(node, "torch.cat of something other than a list of tensors")
        parts = list(seq)
    else:
        parts = [a for a in node.args[:2]]
        if len(node.args) > 2 or set(node.kwargs) - {"alpha"} or node.kwargs.get("alpha", 1) != 1:
            raise ctx.refuse(node, "an add with alpha= or out=: the description's add is the plain sum")
        if not all(isinstance(a, Node) for a in parts):
            raise ctx.refuse(node, "it adds a constant to a tensor; the description's add sums layers' outputs")
    for a in parts:
        if a not in tensors:
            raise ctx.refuse(node, f"it reads {a.name!r}, which is no layer's output here")
    layouts = [tensors[a][1] for a in parts]
    shapes = [ctx.shapes[a] for a in parts]
    if any(lay != layouts[0] for lay in layouts):
        raise ctx.refuse(node, f"it joins tensors torch holds in different layouts ({[lay.kind for lay in layouts]}): "
                               "the description's channels-last inputs would not line up the same way")  # fmt: skip
    layout = layouts[0]
    if not is_cat:
        if len(set(shapes)) != 1:
            raise ctx.refuse(node, f"it adds {shapes} by broadcasting; the description's add takes one shape")
        return Step(Layer("add", ctx.name(node), {}, {}), [node], layout)
    rank = len(shapes[0])
    dim = _arg(node, 1, "dim", 0) % rank
    if dim == 0:
        raise ctx.refuse(node, "torch.cat on dim 0, the batch; the description concatenates features")
    if layout.kind == "chw":
        raise ctx.refuse(node, "torch.cat of flattened channels-first maps: their (c, h, w) features concatenated "
                               "are not the description's (h, w, c) ones concatenated")  # fmt: skip
    axis = {"nchw": {1: -1, 2: 1, 3: 2}, "ncw": {1: -1, 2: 1}}.get(layout.kind, {}).get(dim, dim)
    if axis == rank - 1:
        axis = -1
    return Step(Layer("concatenate", ctx.name(node), {"axis": axis}, {}), [node], layout)


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
    tensors = {x: (INPUT, ctx.in_layout)}  # node -> (the description tensor it is, how torch holds it)
    done, steps = set(inputs), []
    last_name = None
    for node in nodes:
        if node in done or _is_shape_node(node):
            continue
        if node.op == "output":
            result = node.args[0]
            if not isinstance(result, Node) or result not in tensors:
                raise UnsupportedLayer(f"{ctx.where}: forward returns {result!r}, not one tensor a layer computes")
            name, ctx.out_layout = tensors[result]
            if name != last_name:
                raise UnsupportedLayer(f"{ctx.where}: forward returns {result.name!r} ({name!r}), not the last layer's "
                                       f"output {last_name!r}")  # fmt: skip
            break
        args = _tensor_args(node)
        if _is_merge(node) and len(args) < 2:
            raise ctx.refuse(node, "it adds a constant to a tensor (or concatenates one tensor); the description's "
                                   "add and concatenate join two or more layers' outputs")  # fmt: skip
        if _is_merge(node):
            step = _merge(ctx, node, tensors)
            step.input, step.in_layout = args[0], step.layout
            srcs = [tensors[a][0] for a in (list(_arg(node, 0, "tensors", ())) if node.target in (torch.cat, torch.concat)
                                            else node.args[:2])]  # fmt: skip
        else:
            if len(args) > 1:
                raise ctx.refuse(node, f"it joins {len(args)} paths ({', '.join(a.name for a in args)}); the "
                                       "description joins paths by add (x + y) and concatenate (torch.cat) only")  # fmt: skip
            if node.op != "get_attr" and not args:
                raise ctx.refuse(node, "it makes a tensor from no input: a second path beside the chain; the description "
                                       "is a chain whose layers hold every weight")  # fmt: skip
            if node.op != "get_attr" and args[0] not in tensors:
                raise ctx.refuse(node, f"it reads {args[0].name!r}, which is no layer's output (a part of a layer's "
                                       "tuple, or a value the description does not hold)")  # fmt: skip
            fn, obj = _lookup(ctx, node)
            ctx.layout = tensors[args[0]][1]
            step = fn(ctx, node, obj)
            step.input, step.in_layout = args[0], ctx.layout
            srcs = [tensors[args[0]][0]]
        done.update(step.nodes)
        layers = step.layers()
        if not layers:  # an identity: the same tensor, perhaps held in another layout
            tensors[step.nodes[-1]] = (srcs[0], step.layout)
            continue
        prev = last_name or INPUT
        first = layers[0]
        if list(srcs) != [prev]:
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
    starts = {s.input for s in steps if s.parts}

    def layer_outputs(x: np.ndarray) -> list[np.ndarray]:
        interp = _Recorder(gm, ends, starts)
        xt = tensor(x, in_layout)
        with torch.no_grad():
            interp.run(xt)
            out, carry = [], None
            for i, (s, j, fn) in enumerate(rows):
                if fn is not None and j < len(s.layers()) - 1:  # a layer inside a step: its own part on the chain
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


__all__ = ["FUNCTIONS", "METHODS", "MODULES", "Step", "converter", "from_module", "supported"]
