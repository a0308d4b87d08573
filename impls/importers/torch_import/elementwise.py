"""A tensor with a constant, a product of paths, a layer scale and stochastic depth (issue 24).

- x + y, x * y (operator, torch.add / torch.mul, Tensor.add / .mul) of two paths: add (shape.py's, one shape) and
  multiply (torch's broadcasting of size-1 axes, which the description's multiply does on the canonical layout: a
  (B, C, 1, 1) gate times a (B, C, H, W) map). x - y and x / y of two paths have no kind and are refused.
- a path with a Python number, or with a tensor the module holds that is no trainable parameter (a buffer, a
  constant): x + 3, 3 + x, x - 1, 1 - x, x * (1 / 6), x / 255, torch.add(x, 3, alpha=2) -> rescale, the constant a
  number or one value per channel (impls/importers/constants.py: a (C, 1, 1) buffer on an NCHW map is per channel).
  A constant divided by the path (a reciprocal) is refused.
- a path times a trainable parameter the module holds (`self.layer_scale * x`, a get_attr of an nn.Parameter) ->
  layer_scale: the parameter must vary along the channels only, held as torch broadcasts it over the path
  (torchvision's ConvNeXt holds (C, 1, 1) on its NCHW map); a trainable parameter added, subtracted or divided by
  has no kind, and is refused.
- torchvision.ops.stochastic_depth (the function, as torch.fx records it inside torchvision.ops.StochasticDepth's
  forward, with training=False in eval mode) and the StochasticDepth module -> stochastic_depth, mode "row" or
  "batch" as torchvision names them: the identity at inference. torchvision is matched by name (context.by_name):
  the importer does not import it.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ...layouts import Layout
from ...model.description import Layer
from .. import constants
from . import tokens
from .context import REGISTRY, Node, Step, _arg, _Ctx, _step, fetch, torch
from .shape import _add, _joined


def _held(ctx: _Ctx, n: Node) -> tuple[np.ndarray, bool]:
    """(the tensor a get_attr node reads, as NumPy in its own dtype, whether it is a trainable nn.Parameter)."""
    obj = fetch(ctx.gm, n)
    if not isinstance(obj, torch.Tensor):
        raise ctx.refuse(n, f"it reads {type(obj).__name__} {n.target!r}, not a tensor")
    return obj.detach().cpu().numpy(), isinstance(obj, torch.nn.Parameter) and obj.requires_grad


def channel_axis(layout: Layout, rank: int) -> int | None:
    """The axis of a tensor torch holds in `layout` that holds the description's channels (None: a flattened
    channels-first map, whose features are in torch's (c, h, w) order)."""
    if layout.kind in ("nchw", "ncw"):
        return 1
    return rank - 1 if layout.kind == "plain" else None


def _operands(ctx: _Ctx, node: Node) -> tuple[Node, Any, bool]:
    """(the path, the other operand, whether the path is the second operand: 3 - x)."""
    a, b = _arg(node, 0, "input", None), _arg(node, 1, "other", None)
    if isinstance(a, Node) and a in ctx.tensors:
        return a, b, False
    return b, a, True


def _alpha(ctx: _Ctx, node: Node) -> float:
    """torch.add / torch.sub's alpha (the constant's factor); any other keyword (out=, a rounding_mode) is refused."""
    extra = sorted(set(node.kwargs) - {"input", "other", "alpha", "rounding_mode"})
    if extra or len(node.args) > 2 or node.kwargs.get("rounding_mode") is not None:
        raise ctx.refuse(node, f"it takes {extra or 'a rounding_mode or a third argument'}: the description's rescale "
                               "is x * scale + offset")  # fmt: skip
    return float(node.kwargs.get("alpha", 1))


def _layer_name(ctx: _Ctx, node: Node, held: Node | None) -> str:
    """The layer's name: the parameter's own (`features.1.0.layer_scale`) where it reads one, else the node's."""
    if held is None:
        return ctx.name(node)
    name = str(held.target)
    while name in ctx.names:
        name += "_"
    ctx.names.add(name)
    return name


def _constant(ctx: _Ctx, node: Node, op: str) -> Step:
    """A path with a number or a tensor the module holds: rescale, or layer_scale (a trainable parameter times x)."""
    x, other, reverse = _operands(ctx, node)
    alpha = _alpha(ctx, node)
    shape, layout = ctx.shapes[x], ctx.tensors[x][1]
    held = other if isinstance(other, Node) and other.op == "get_attr" else None
    if held is not None:
        k, trainable = _held(ctx, held)
        if trainable and op == "add" and alpha == 1 and tokens.is_position_embedding(k, shape, layout):
            return tokens.position_embedding(ctx, node, held, k)
    elif isinstance(other, (int, float)) and not isinstance(other, bool):
        k, trainable = np.asarray(float(other)), False
    else:
        raise ctx.refuse(node, f"it computes with {other!r}, not a layer's output, a number or a tensor the module holds")
    if op in ("add", "sub") and alpha != 1:
        if reverse:
            raise ctx.refuse(node, f"alpha={alpha} scales the path itself: no rescale of x")
        k = k * alpha
    per = constants.per_channel(k, shape, channel_axis(layout, len(shape)))
    what = f"{'the parameter' if trainable else 'the constant'} {held.target!r} {k.shape}" if held is not None else \
        f"the number {other!r}"  # fmt: skip
    if per is None:
        raise ctx.refuse(node, f"{what} varies along an axis of {shape} (held {layout.kind}) that is not its channels: "
                               "one value, or one per channel, is a rescale or a layer scale")  # fmt: skip
    if trainable:
        if op != "mul":
            raise ctx.refuse(node, f"{what} is trainable: a trainable offset or divisor has no layer kind (a "
                                   "trainable parameter times x is a layer scale)")  # fmt: skip
        c = shape[channel_axis(layout, len(shape))]
        if per.ndim == 0 and c != 1:
            raise ctx.refuse(node, f"{what} is one trainable number for {c} channels: a layer scale holds one "
                                   "trainable weight per channel")  # fmt: skip
        gamma = np.broadcast_to(per, (c,)).astype(ctx.dtype)
        return Step(Layer("layer_scale", _layer_name(ctx, node, held), {}, {"gamma": gamma}), [node], layout)
    opts = constants.affine(op, per, reverse)
    if isinstance(opts, str):
        raise ctx.refuse(node, opts)
    return Step(Layer("rescale", _layer_name(ctx, node, None), opts, {}), [node], layout)


def _two_paths(ctx: _Ctx, node: Node) -> bool:
    return sum(isinstance(a, Node) and a in ctx.tensors for a in (_arg(node, 0, "input", None),
                                                                  _arg(node, 1, "other", None))) == 2  # fmt: skip


@REGISTRY.register(operator.add, torch.add, "add", kinds=("add", "rescale", "position_embedding"), joins=True,
                   constants=True)  # fmt: skip
def _plus(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x + y -> add (shape.py); x + a constant -> rescale."""
    return _add(ctx, node, f) if _two_paths(ctx, node) else _constant(ctx, node, "add")


@REGISTRY.register(operator.mul, torch.mul, "mul", kinds=("multiply", "rescale", "layer_scale"), joins=True,
                   constants=True)  # fmt: skip
def _times(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x * y -> multiply (broadcast, one rank); x * a constant -> rescale; x * a trainable parameter -> layer_scale."""
    if not _two_paths(ctx, node):
        return _constant(ctx, node, "mul")
    if len(node.args) > 2 or node.kwargs:
        raise ctx.refuse(node, "a mul with out= or other keywords: the description's multiply is the plain product")
    parts = [node.args[0], node.args[1]]
    layout = _joined(ctx, node, parts)
    shapes = [ctx.shapes[a] for a in parts]
    if len({len(s) for s in shapes}) != 1 or len({s[0] for s in shapes}) != 1:
        raise ctx.refuse(node, f"it multiplies {shapes}: the description's multiply broadcasts size-1 axes of tensors of "
                               "one rank and one batch")  # fmt: skip
    return Step(Layer("multiply", ctx.name(node), {}, {}), [node], layout, joined=parts)


@REGISTRY.register(operator.sub, torch.sub, "sub", kinds=("rescale",), joins=True, constants=True)
@REGISTRY.register(operator.truediv, torch.div, "div", kinds=("rescale",), joins=True, constants=True)
def _minus_or_over(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x - a constant, a constant - x, x / a constant -> rescale. Of two paths: refused (no kind computes it)."""
    op = "sub" if f in (operator.sub, torch.sub, "sub") else "div"
    if _two_paths(ctx, node):
        raise ctx.refuse(node, f"it {'subtracts' if op == 'sub' else 'divides'} two paths; the description joins paths by "
                               "add (x + y), multiply (x * y) and concatenate (torch.cat) only")  # fmt: skip
    return _constant(ctx, node, op)


_TORCHVISION = "torchvision.ops.stochastic_depth"


@REGISTRY.register((_TORCHVISION, "stochastic_depth"), (_TORCHVISION, "StochasticDepth"), kinds=("stochastic_depth",))
def _stochastic_depth(ctx: _Ctx, node: Node, obj: Any) -> Step:
    """torchvision's stochastic_depth(input, p, mode, training) / StochasticDepth(p, mode): the identity at inference;
    training=True in the call (a drop at inference too) is refused, as F.dropout's."""
    if isinstance(obj, torch.nn.Module):
        p, mode = float(obj.p), str(obj.mode)
    else:
        p, mode, training = float(_arg(node, 1, "p", 0.0)), str(_arg(node, 2, "mode", "row")), _arg(node, 3, "training", True)
        if training is not False:
            raise ctx.refuse(node, f"stochastic_depth(training={training!r}) drops at inference too; pass "
                                   "training=self.training")  # fmt: skip
    if not 0.0 <= p < 1.0 or mode not in ("row", "batch"):
        raise ctx.refuse(node, f"p={p}, mode={mode!r}: the description's stochastic depth has a rate in [0, 1) and "
                               "mode 'row' or 'batch'")  # fmt: skip
    return _step(ctx, node, "stochastic_depth", {"rate": p, "mode": mode})


__all__ = ["channel_axis"]
