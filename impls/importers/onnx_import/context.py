"""The converters' registry and the walk's state: `REGISTRY` (op_type -> converter, onnx2torch's @add_converter
style), `Context` (the nodes left, the constants, the concrete shapes, the layers so far) and the node helpers every
converter uses.

A converter is `fn(ctx, position, node)`: it reads the node (and any it fuses), emits layers and moves the value.
The walk is a graph's (issue 18): every computed tensor is known as a `Value` and by the description layer whose
output it is, so a layer's `inputs` name its sources. Where a node reads its input in an order the value's canonical
axes do not have (torch's LayerNorm over an NCW map's length, a MatMul after a permuting Transpose) a permute layer
makes the graph's order the description's first (`Context.reinterpret`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import frameworks
from ...model.description import INPUT, Layer
from ...registry import Registry
from .. import UnsupportedLayer
from .values import Value

onnx = frameworks.load("onnx")
helper = onnx.helper

REGISTRY = Registry("the ONNX importer", "ONNX op type")
"""op_type -> converter(ctx, position, node), with the description kinds it can make; the op types refused with
their own reason (Loop, Scan, RNN) and the kinds ONNX has no op for sit beside them."""


class _Converters(Mapping):
    """The old module's CONVERTERS dict (op_type -> converter), read off REGISTRY."""

    def __getitem__(self, op: str) -> Callable:
        entry = REGISTRY.get(op)
        if entry is None:
            raise KeyError(op)
        return entry.fn

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY.keys())

    def __len__(self) -> int:
        return len(REGISTRY.keys())


CONVERTERS: Mapping[str, Callable[[Context, int, Any], None]] = _Converters()

PATTERNS: list[Callable[[Context, int, Any], bool]] = []
"""Readers of a pattern of several nodes (attention.py: a self-attention), asked before a node goes to its op's
converter: fn(ctx, position, node) reads the pattern starting at the node and returns True where it read the node too;
False leaves the node to its converter (a pattern that does not match records why in `ctx.misses`)."""


def converter(*op_types: str, kinds: Iterable[str] = ()) -> Callable:
    """Register the decorated converter for `op_types`, making the description `kinds` (REGISTRY.register)."""
    return REGISTRY.register(*op_types, kinds=kinds)


def supported() -> str:
    """The registry's ops as a refusal lists them (an Add only as a MatMul's bias)."""
    return ", ".join("MatMul (+ Add of a bias)" if op == "MatMul" else op for op in sorted(CONVERTERS) if op != "Add")


def attrs(node: Any) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def as_str(a: Any) -> Any:
    return a.decode() if isinstance(a, bytes) else a


def scope(node: Any) -> str:
    """The module or layer a node came from: torch.onnx.export's "/fc/Gemm" -> "fc", tf2onnx's
    "sequential/conv2d_1/BiasAdd" -> "conv2d_1"; "" for a top-level or unnamed node."""
    parts = node.name.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 else ""


def _layer_name(node: Any, position: int, taken: set[str]) -> str:
    return _unique(scope(node) or f"{node.op_type.lower()}_{position}", taken)


def _unique(base: str, taken: set[str]) -> str:
    base = "input_" if base == INPUT else base
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


class Context:
    """The walk over the folded graph: the nodes left, the constants, the concrete shapes, the layers so far."""

    def __init__(self, path: Path, nodes: list, consts: dict, shapes: dict, opset: int, value: Value, output: str):
        self.path, self.nodes, self.consts, self.shapes, self.opset = path, nodes, consts, shapes, opset
        self.value, self.output = value, output
        self.values: dict[str, Value] = {value.name: value}  # every computed tensor read so far, as the graph holds it
        self.owner: dict[str, str] = {value.name: INPUT}  # tensor -> the description layer whose output it is
        self.current = INPUT  # the layer whose output the node being read takes
        self.layers: list[Layer] = []
        self.scopes: list[str] = []  # the scope of the node each layer came from (fusing activations into it)
        self.ends: list[Value] = []  # the tensor that ends each layer, as the graph holds it
        self.i = 0
        self.notes: list[str] = []
        self.attention_ends: set[int] | None = None  # attention.py: the ids of the nodes an attention's products end at
        self.misses: dict[int, tuple] = {}  # id(node) -> (how far, why its attention is not read, id(its end))

    # ---- reading nodes

    def refuse(self, pos: int, node: Any, why: str) -> UnsupportedLayer:
        """The node cannot be read, why; where it belongs to a pattern a reader tried (PATTERNS), why that failed."""
        missed = self.misses.get(id(node))
        also = f"; it belongs to a self-attention the importer does not read: {missed[1]}" if missed else ""
        return UnsupportedLayer(f"{self.path}: node {pos} {node.name or '(unnamed)'!r} ({node.op_type}) {why}{also}; "
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

    def next_only(self, tensor: str, op: str) -> Any:
        """The one node that takes `tensor`, where it is an `op`; else None."""
        users = self.consumers(tensor)
        return users[0][1] if len(users) == 1 and users[0][1].op_type == op else None

    def take(self, node: Any) -> None:
        """A node the converter read as part of its layer: it leaves the walk."""
        self.nodes[self.i :] = [(p, n) for p, n in self.nodes[self.i :] if n is not node]

    # ---- writing the description

    def read(self, tensor: str) -> None:
        """The node being read takes `tensor`: it becomes the value, its layer the one the next layer reads."""
        self.value, self.current = self.values[tensor], self.owner[tensor]

    def emit(self, kind: str, node: Any, options: dict, weights: dict | None = None, inputs: tuple | None = None,
             name: str | None = None) -> None:  # fmt: skip
        taken = {la.name for la in self.layers}
        name = _layer_name(node, len(self.layers), taken) if name is None else _unique(name, taken)
        self.layers.append(Layer(kind, name, options, weights or {}, (self.current,) if inputs is None else inputs))
        self.scopes.append(scope(node))
        self.ends.append(self.value)
        self.current = name

    def set(self, value: Value) -> None:
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
        self.emit("permute", node, {"dims": p[1:]}, name=f"{scope(node) or node.op_type.lower()}_permute")
        self.set(Value(v.name, tuple(want)))
        self.notes.append(f"node {pos} {node.name!r}: reads axes {v.axes} of the description's layout as {tuple(want)}: "
                          f"a permute layer (dims {p[1:]}) before it")

    def amend(self, **options: Any) -> None:
        last = self.layers[-1]
        self.layers[-1] = replace(last, options={**last.options, **options})


__all__ = ["CONVERTERS", "PATTERNS", "REGISTRY", "Context", "as_str", "attrs", "converter", "scope", "supported"]
