"""The element-wise layers: nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softmax, issue 24's nn.ReLU6, nn.Hardsigmoid, nn.Hardswish,
nn.SiLU, nn.GELU (approximate), nn.LeakyReLU (negative_slope), nn.Hardtanh and torch.clamp of numbers, and their function and Tensor-method forms
(activation), nn.Dropout and F.dropout(training=self.training) (dropout), and nn.Identity / x.contiguous() (no layer).

A softmax is over the description's last axis: the channels, dim 1 of an NCHW / NCW map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .context import REGISTRY, F, Node, Step, _arg, _Ctx, _step, nn, torch


def _activation(name: str) -> Callable:
    def convert_(ctx: _Ctx, node: Node, obj: Any) -> Step:
        return _step(ctx, node, "activation", {"activation": name})

    return convert_


REGISTRY.register(nn.ReLU, torch.relu, F.relu, "relu", kinds=("activation",))(_activation("relu"))
REGISTRY.register(nn.Tanh, torch.tanh, F.tanh, "tanh", kinds=("activation",))(_activation("tanh"))
REGISTRY.register(nn.Sigmoid, torch.sigmoid, F.sigmoid, "sigmoid", kinds=("activation",))(_activation("sigmoid"))


@REGISTRY.register(nn.Softmax, torch.softmax, F.softmax, "softmax", kinds=("activation",))
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


@REGISTRY.register(nn.Dropout, F.dropout, kinds=("dropout",))
def _dropout(ctx: _Ctx, node: Node, obj: Any) -> Step:
    if isinstance(obj, nn.Module):
        p = float(obj.p)
    else:
        p, training = float(_arg(node, 1, "p", 0.5)), _arg(node, 2, "training", True)
        if training is not False:
            raise ctx.refuse(node, f"F.dropout(training={training!r}) drops at inference too; pass training=self.training")
    return _step(ctx, node, "dropout", {"rate": p})


@REGISTRY.register(nn.Identity, "contiguous", kinds=())
def _identity(ctx: _Ctx, node: Node, obj: Any) -> Step:
    return Step(None, [node], ctx.layout)



# -- issue 24's activations: each module / function / Tensor method with its own parameters and torch's defaults
REGISTRY.register(nn.ReLU6, F.relu6, kinds=("activation",))(_activation("relu6"))
REGISTRY.register(nn.Hardsigmoid, F.hardsigmoid, kinds=("activation",))(_activation("hard_sigmoid"))  # relu6(x + 3) / 6
REGISTRY.register(nn.Hardswish, F.hardswish, kinds=("activation",))(_activation("hard_swish"))
REGISTRY.register(nn.SiLU, F.silu, kinds=("activation",))(_activation("silu"))


def _number(ctx: _Ctx, node: Node, what: str, value: Any) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return None if value is None else float(value)
    raise ctx.refuse(node, f"{what}={value!r}: only a number (not a tensor) is a constant the description holds")


@REGISTRY.register(nn.GELU, F.gelu, kinds=("activation",))
def _gelu(ctx: _Ctx, node: Node, obj: Any) -> Step:
    approximate = obj.approximate if isinstance(obj, nn.Module) else _arg(node, 1, "approximate", "none")
    if approximate not in ("none", "tanh"):
        raise ctx.refuse(node, f"GELU(approximate={approximate!r}) is neither 'none' (erf) nor 'tanh'")
    return _step(ctx, node, "activation", {"activation": "gelu" if approximate == "none" else "gelu_tanh"})


@REGISTRY.register(nn.LeakyReLU, F.leaky_relu, kinds=("activation",))
def _leaky_relu(ctx: _Ctx, node: Node, obj: Any) -> Step:
    slope = obj.negative_slope if isinstance(obj, nn.Module) else _arg(node, 1, "negative_slope", 0.01)  # torch's default
    return _step(ctx, node, "activation", {"activation": "leaky_relu", "negative_slope": _number(ctx, node, "negative_slope", slope)})


@REGISTRY.register(nn.Hardtanh, F.hardtanh, kinds=("activation",))
def _hardtanh(ctx: _Ctx, node: Node, obj: Any) -> Step:
    """Hardtanh(min_val, max_val) (torch's defaults -1, 1); Hardtanh(0, 6) is relu6 (nn.ReLU6 is that Hardtanh)."""
    if isinstance(obj, nn.Module):
        lo, hi = obj.min_val, obj.max_val
    else:
        lo, hi = _arg(node, 1, "min_val", -1.0), _arg(node, 2, "max_val", 1.0)
    lo, hi = _number(ctx, node, "min_val", lo), _number(ctx, node, "max_val", hi)
    if (lo, hi) == (0.0, 6.0):
        return _step(ctx, node, "activation", {"activation": "relu6"})
    return _step(ctx, node, "activation", {"activation": "clip", "min": lo, "max": hi})


@REGISTRY.register(torch.clamp, torch.clip, "clamp", "clip", kinds=("activation",))
def _clamp(ctx: _Ctx, node: Node, obj: Any) -> Step:
    """torch.clamp(x, min, max) / x.clamp(...) of numbers: clip (a bound None where there is none)."""
    lo = _number(ctx, node, "min", _arg(node, 1, "min", None))
    hi = _number(ctx, node, "max", _arg(node, 2, "max", None))
    if lo is None and hi is None:
        raise ctx.refuse(node, "clamp without min or max")
    if lo is not None and hi is not None and lo > hi:
        raise ctx.refuse(node, f"clamp(min={lo}, max={hi}) with min > max")
    return _step(ctx, node, "activation", {"activation": "clip", "min": lo, "max": hi})
