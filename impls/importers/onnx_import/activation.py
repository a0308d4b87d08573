"""Activations and the identities: Relu, Tanh, Sigmoid, Softmax (the last, feature axis only), issue 24's Clip (relu6
for Clip(0, 6), else clip), HardSigmoid (alpha, beta), HardSwish, LeakyRelu (alpha), Gelu (approximate) and Sigmoid
then Mul of its input (silu, as torch.onnx writes nn.SiLU) as an activation layer,
or fused into the conv / dense layer of the same module (Keras' Dense(activation=...)); Dropout (the identity at
inference, its rate kept); Identity (bookkeeping, no layer).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ...model.layers import ACTIVATIONS
from .context import REGISTRY, Context, attrs, scope

_ACTIVATIONS = {"Relu": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid", "Softmax": "softmax",
                # -- issue 24's activations (their parameters read by _parameters)
                "Clip": "clip", "HardSigmoid": "hard_sigmoid", "HardSwish": "hard_swish", "LeakyRelu": "leaky_relu",
                "Gelu": "gelu"}  # fmt: skip
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parameters(ctx: Context, pos: int, node: Any) -> dict:
    """The activation's name and its parameters with ONNX's defaults: HardSigmoid alpha 0.2 and beta 0.5 (Keras 2's
    0.2 x + 0.5, not torch's 1/6), LeakyRelu alpha 0.01, Gelu approximate "none" (erf), Clip's min and max (attributes
    before opset 11, optional constant inputs since; an absent or infinite bound is none; Clip(0, 6) is relu6)."""
    a, op = attrs(node), node.op_type
    if op == "HardSigmoid":
        return {"activation": "hard_sigmoid", "alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))}
    if op == "LeakyRelu":
        return {"activation": "leaky_relu", "negative_slope": float(a.get("alpha", 0.01))}
    if op == "Gelu":
        approximate = a.get("approximate", "none")
        approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
        if approximate not in ("none", "tanh"):
            raise ctx.refuse(pos, node, f"approximate={approximate!r} is neither 'none' (erf) nor 'tanh'")
        return {"activation": "gelu" if approximate == "none" else "gelu_tanh"}
    if op == "Clip":
        if ctx.opset < 11:
            lo, hi = a.get("min"), a.get("max")
        else:
            lo, hi = ctx.const(pos, node, 1, None), ctx.const(pos, node, 2, None)
        bounds = [None if b is None or not np.isfinite(float(np.asarray(b))) or abs(float(np.asarray(b))) >= _FLOAT32_MAX
                  else float(np.asarray(b)) for b in (lo, hi)]  # fmt: skip
        if bounds == [0.0, 6.0]:
            return {"activation": "relu6"}
        if bounds == [None, None]:
            raise ctx.refuse(pos, node, "has no bound (the identity)")
        if None not in bounds and bounds[0] > bounds[1]:
            raise ctx.refuse(pos, node, f"min {bounds[0]} > max {bounds[1]}")
        return {"activation": "clip", "min": bounds[0], "max": bounds[1]}
    return {"activation": _ACTIVATIONS[op]}


def _silu(ctx: Context, node: Any) -> Any:
    """The Mul that makes this Sigmoid x * sigmoid(x) (torch.onnx's nn.SiLU), or None."""
    mul = ctx.next_only(node.output[0], "Mul")
    return mul if mul is not None and sorted(mul.input) == sorted([node.input[0], node.output[0]]) else None


@REGISTRY.register(*(op for op in _ACTIVATIONS if op != "Softmax"), kinds=("activation",))  # Softmax: normalization.py
def activation(ctx: Context, pos: int, node: Any) -> None:
    v, opts = ctx.value, _parameters(ctx, pos, node)
    out = node.output[0]
    if node.op_type == "Sigmoid" and (mul := _silu(ctx, node)) is not None:
        ctx.take(mul)
        opts, out = {"activation": "silu"}, mul.output[0]
    act = opts["activation"]
    if act == "softmax":
        axis = attrs(node).get("axis", -1 if ctx.opset >= 13 else 1) % len(v.axes)
        last_only = ctx.opset >= 13 or axis == len(v.axes) - 1  # before opset 13 Softmax flattens from `axis`
        if v.axes[axis] != v.rank - 1 or not last_only:
            raise ctx.refuse(pos, node, f"normalises axis {axis} of axes {v.axes}: softmax over the last (feature) axis only")
    last = ctx.layers[-1] if ctx.layers else None
    alone = last is not None and ctx.current == last.name and not ctx.consumers(v.name) and v.name != ctx.output
    if (alone and last.kind in ("conv2d", "depthwise_conv2d", "dense", "conv1d") and ctx.scopes[-1]
            and ctx.scopes[-1] == scope(node) and last.options.get("activation", "linear") == "linear"
            and act in ACTIVATIONS and len(opts) == 1):  # fmt: skip
        ctx.amend(activation=act)  # the same module's activation: Keras' Dense(activation=...)
    else:
        ctx.emit("activation", node, opts)
    ctx.set(replace(v, name=out))


@REGISTRY.register("Dropout", kinds=("dropout",))
def dropout(ctx: Context, pos: int, node: Any) -> None:
    if len(node.output) > 1 and node.output[1] and ctx.used(node.output[1]):
        raise ctx.refuse(pos, node, "uses its mask output")
    ratio = attrs(node).get("ratio", 0.5) if ctx.opset < 12 else float(np.asarray(ctx.const(pos, node, 1, 0.5)))
    ctx.emit("dropout", node, {"rate": float(ratio)})
    ctx.set(replace(ctx.value, name=node.output[0]))


@REGISTRY.register("Identity", kinds=())
def identity(ctx: Context, pos: int, node: Any) -> None:
    ctx.set(replace(ctx.value, name=node.output[0]))





# -- the erf GELU as exporters before opset 20 write it (torch.onnx: Div(x, sqrt 2), Erf, Add 1, Mul x, Mul 0.5)


def _scalar(ctx: Context, node: Any, other: str) -> float | None:
    """The node's constant operand (the input that is not `other`) as a number, or None."""
    ins = [t for t in node.input if t != other]
    if len(ins) != 1 or ins[0] not in ctx.consts or np.asarray(ctx.consts[ins[0]]).size != 1:
        return None
    return float(np.asarray(ctx.consts[ins[0]]).reshape(()))


def _near(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= 4 * np.finfo(np.float32).eps * abs(b)


@REGISTRY.register("Erf", kinds=("activation",))
def erf(ctx: Context, pos: int, node: Any) -> None:
    """Erf as the middle of x (1 + erf(x / sqrt 2)) / 2: the rescale layer its Div made (x / sqrt 2, or x * 1/sqrt 2)
    and the Add, Mul and Mul after it become one gelu layer. Any other Erf is refused."""
    made = next((n for _, n in ctx.nodes[: ctx.i] if node.input[0] in n.output), None)
    last = ctx.layers[-1] if ctx.layers else None
    why = "is not the erf of x / sqrt(2) in x (1 + erf(x / sqrt 2)) / 2 (the erf GELU): Erf alone has no kind"
    if made is None or made.op_type not in ("Div", "Mul") or last is None or ctx.owner.get(node.input[0]) != last.name:
        raise ctx.refuse(pos, node, why)
    x = next((t for t in made.input if t in ctx.values), None)
    k = _scalar(ctx, made, x)
    if x is None or not (_near(k, np.sqrt(2.0)) if made.op_type == "Div" else _near(k, 1 / np.sqrt(2.0))):
        raise ctx.refuse(pos, node, why)
    add = ctx.next_only(node.output[0], "Add")
    mul = ctx.next_only(add.output[0], "Mul") if add is not None and _near(_scalar(ctx, add, node.output[0]), 1.0) else None
    if mul is None or sorted(mul.input) != sorted([x, add.output[0]]):
        raise ctx.refuse(pos, node, why)
    half = ctx.next_only(mul.output[0], "Mul")
    if half is None or not _near(_scalar(ctx, half, mul.output[0]), 0.5):
        raise ctx.refuse(pos, node, why)
    for n in (add, mul, half):
        ctx.take(n)
    ctx.layers.pop(), ctx.scopes.pop(), ctx.ends.pop()  # the rescale x / sqrt 2 is inside the gelu
    ctx.read(x)
    ctx.emit("activation", made, {"activation": "gelu"}, name=f"{scope(node) or 'gelu'}")
    ctx.set(replace(ctx.value, name=half.output[0]))
__all__ = ["activation", "dropout", "erf", "identity"]
