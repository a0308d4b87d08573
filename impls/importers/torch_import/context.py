"""What every torch converter shares: the registry, the walk's context (`_Ctx`), the `Step` a converter returns, and
the small readers of fx nodes (a node's tensor arguments and users, an argument by position or name, the input a
converter checks for).

A converter is `fn(ctx, node, obj) -> Step`, registered in its family's module with
`@REGISTRY.register(nn.Conv2d, kinds=("conv2d",))` (a module class: obj is the module), `torch.relu` (a function:
obj is the function), `"view"` (a Tensor method name) or a (module, qualified name) pair (`by_name`: a library's
function or class the importer does not import itself). `joins=True` marks a converter that reads several layers'
outputs (add, multiply, concatenate), and `constants=True` one that also takes a single tensor with constants (x + 3,
x * a tensor the module holds: the walker hands it the node as any other layer's); `reads="ncw"` a module class that
takes a 3-D input as a (B, C, L) map. A tensor the module holds (a get_attr node: a parameter, a buffer) is no path:
the converter of the node that reads it decides (elementwise.py reads a parameter as a layer scale).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import frameworks
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from ...registry import Registry
from .. import UnsupportedLayer

torch = frameworks.load("torch")
nn, F = torch.nn, torch.nn.functional
fx = torch.fx
Node = fx.Node


def _fn_name(f: Any) -> str:
    mod = getattr(f, "__module__", None) or ""
    mod = {"torch.nn.functional": "F", "_operator": "operator", "torch._C._nn": "F", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{mod}.{getattr(f, '__name__', repr(f))}" if mod else getattr(f, "__name__", repr(f))


def _cls_name(c: type) -> str:
    return f"nn.{c.__name__}" if c.__module__.startswith("torch.nn") else f"{c.__module__}.{c.__qualname__}"


def _key_name(key: Any) -> str:
    """A registry key by name: nn.Conv2d (a module class), torch.relu / F.relu (a function), Tensor.view (a method),
    torchvision.ops.stochastic_depth.stochastic_depth (a (module, qualified name) pair: see by_name)."""
    if isinstance(key, type):
        return _cls_name(key)
    if isinstance(key, str):
        return f"Tensor.{key}"
    if isinstance(key, tuple):
        return ".".join(key)
    return _fn_name(key)


def by_name(obj: Any) -> tuple[str, str]:
    """(module, qualified name) of a function or class: the key of a converter registered for a library the importer
    does not import itself (torchvision, whose import takes seconds), matched once the user's module uses it."""
    return (str(getattr(obj, "__module__", "")), str(getattr(obj, "__qualname__", "")))


REGISTRY = Registry("the torch importer", "torch module class, function or Tensor method", name_of=_key_name)


def supported() -> str:
    """Every module class, function and Tensor method the importer reads, by name: what a refusal lists."""
    return REGISTRY.supported()


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
    joined: list | None = None  # a merge: the nodes it joins, in order
    part_outputs: Any = None  # parts that form a graph (a Transformer encoder layer): step input -> every part's output
    masks: list | None = None  # padding-mask nodes part_outputs also reads (after the step input), in order

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
    tensors: dict = field(default_factory=dict)  # node -> (the description tensor it is, how torch holds it)
    masks: dict = field(default_factory=dict)  # padding-mask node -> what it holds (padding.py)
    padded: set = field(default_factory=set)  # the nodes that read a padding mask
    padded_layers: set = field(default_factory=set)  # the attention layers torch gives the padding mask

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


# --------------------------------------------------------------------------- reading fx nodes


def _is_shape_node(n: Any) -> bool:
    """x.size(...), x.shape, x.dim() and arithmetic on them: sizes, not a path of the chain."""
    if not isinstance(n, Node):
        return False
    if n.op == "call_method" and n.target in ("size", "dim"):
        return True
    if n.op == "call_function" and n.target is getattr and len(n.args) > 1 and n.args[1] == "shape":
        return True
    if n.op == "call_function" and (n.target in (operator.getitem, operator.mul, operator.floordiv, operator.add,
                                                  operator.eq) or getattr(n.target, "__name__", "") == "_assert"):
        # sizes, arithmetic and checks on them (torchvision's torch._assert(h == self.image_size, ...))
        nodes = [a for a in n.args if isinstance(a, Node)]
        return bool(nodes) and all(_is_shape_node(a) for a in nodes)
    return False


def held_expand(n: Any) -> bool:
    """`self.p.expand(b, -1, -1)`: a tensor the module holds, expanded by sizes (a ViT's class token over the batch);
    not a path of the chain: the converter of the node that uses it (torch.cat) reads it."""
    return isinstance(n, Node) and n.op == "call_method" and n.target == "expand" and isinstance(n.args[0], Node) \
        and n.args[0].op == "get_attr" and all(_is_shape_node(a) or not isinstance(a, Node) for a in n.args[1:])


def fetch(gm: Any, node: Node) -> Any:
    """What get_attr node `node` reads off the traced module: its target, a dotted path of attributes."""
    obj = gm
    for part in str(node.target).split("."):
        obj = getattr(obj, part)
    return obj


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
    if layout.kind == "tbf":
        t, b, f = shape
        return (b, t, f)
    return tuple(shape)


# --------------------------------------------------------------------------- what a converter checks it reads


def _image_input(ctx: _Ctx, node: Node) -> tuple:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind != "nchw" or len(shape) != 4:
        raise ctx.refuse(node, f"it takes {shape}, not a batched NCHW image map")
    return shape


def _map_input(ctx: _Ctx, node: Node, want: str, what: str) -> tuple:
    shape = ctx.shapes[node.args[0]]
    if ctx.layout.kind != want:
        hint = " (a (B, T, F) sequence: x.permute(0, 2, 1) makes it the (B, F, T) map)" if want == "ncw" and \
            ctx.layout.kind == "plain" and len(shape) == 3 else ""  # fmt: skip
        raise ctx.refuse(node, f"it takes {shape}, which torch holds {ctx.layout.kind}, not a {what}{hint}")
    return shape


def _explicit(pads: tuple[int, int, int, int]) -> Any:
    t, b, l, r = pads
    return "valid" if not any(pads) else [[t, b], [l, r]]


def _pair(v: Any) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]
