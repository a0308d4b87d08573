"""nn.BatchNorm1d / nn.BatchNorm2d and nn.LayerNorm.

BatchNorm: the running statistics are the state; torch's momentum m is the description's 1 - m, variance_update
'unbiased'; track_running_stats=False and momentum=None are refused. BatchNorm2d reads an NCHW map, BatchNorm1d a
(B, C) vector or a (B, C, L) map. LayerNorm: over the last dim where torch holds the channels last (a LayerNorm on
an NCHW/NCW map normalises its width: refused, with the permute that makes it importable). An affine weight held
frozen at 1 (requires_grad False; the torch port writes Keras' BatchNormalization(scale=False) so) is no scale, a
bias frozen at 0 no center: the description's layer without that weight. nn.LocalResponseNorm is lrn across dim 1, the
channels of an NCHW / NCW map, with torch's even window (extra channel before c: extra "before"). F.layer_norm of a
tensor torch holds channels last (torchvision's ConvNeXt LayerNorm2d: permute to NHWC, F.layer_norm over C, permute
back; the permutes are no layers) is the layer_norm over the channels, its weight and bias read off the module.
"""

from __future__ import annotations

from typing import Any

from .context import REGISTRY, Node, Step, _arg, _Ctx, _map_input, _step, fetch, nn, torch


def _held(p: Any, value: float) -> bool:
    """A parameter that is the constant `value` and never trained: frozen (requires_grad False) at it everywhere."""
    return p is not None and not p.requires_grad and bool((p.detach() == value).all())


def _description_momentum(m: float) -> float:
    """torch's momentum (the new statistic's share) as the description's (the old one's share)."""
    v = 1.0 - float(m)
    short = float(f"{v:.12g}")
    return short if abs(short - v) <= 1e-15 else v


@REGISTRY.register(nn.BatchNorm2d, kinds=("batch_norm",))
@REGISTRY.register(nn.BatchNorm1d, kinds=("batch_norm",), reads="ncw")  # a 3-D input is a (B, C, L) map
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
    scale = bool(m.affine) and not _held(m.weight, 1.0)
    center = bool(m.affine) and not _held(m.bias, 0.0)
    opts = {"epsilon": float(m.eps), "momentum": momentum, "variance_update": "unbiased", "center": center,
            "scale": scale}  # fmt: skip
    w = {"moving_mean": ctx.array(m.running_mean), "moving_var": ctx.array(m.running_var)}
    if scale:
        w["gamma"] = ctx.array(m.weight)
    if center:
        w["beta"] = ctx.array(m.bias)
    ctx.notes.append(f"{node.name}: momentum={m.momentum!r} is torch's share of the new batch statistic: the "
                     f"description keeps {momentum!r} of the old; running_var moves with the unbiased batch variance")  # fmt: skip
    return _step(ctx, node, "batch_norm", opts, w)


@REGISTRY.register(nn.LayerNorm, kinds=("layer_norm",))
def _layer_norm(ctx: _Ctx, node: Node, m: Any) -> Step:
    shape = ctx.shapes[node.args[0]]
    if len(m.normalized_shape) != 1:
        raise ctx.refuse(node, f"normalized_shape={tuple(m.normalized_shape)}: the description's LayerNorm normalises "
                               "the last axis alone")  # fmt: skip
    if ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it normalises the last axis of the {ctx.layout.kind.upper()} map {shape}, which is not "
                               "its channels; the description's LayerNorm is over the channels: permute the map "
                               "channels-last around it (self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))")  # fmt: skip
    affine = bool(m.elementwise_affine) and not _held(m.weight, 1.0)
    has_bias = bool(m.elementwise_affine) and getattr(m, "bias", None) is not None and not _held(m.bias, 0.0)
    w = {}
    if affine:
        w["gamma"] = ctx.array(m.weight)
    if has_bias:
        w["beta"] = ctx.array(m.bias)
    return _step(ctx, node, "layer_norm", {"epsilon": float(m.eps), "scale": affine, "center": has_bias}, w)



@REGISTRY.register(nn.LocalResponseNorm, kinds=("lrn",), reads="ncw")  # a 3-D input is a (B, C, L) map
def _lrn(ctx: _Ctx, node: Node, m: Any) -> Step:
    """alpha / size and the window as F.local_response_norm computes them: size // 2 channels before c, (size - 1) // 2
    after; k is the description's bias."""
    shape = ctx.shapes[node.args[0]]
    if len(shape) == 4:
        _map_input(ctx, node, "nchw", "batched NCHW map")
    elif len(shape) == 3:
        _map_input(ctx, node, "ncw", "batched (B, C, L) map (LocalResponseNorm normalises across dim 1)")
    else:
        raise ctx.refuse(node, f"it takes {shape}: lrn normalises across the channels of an NCHW or (B, C, L) map")
    opts = {"size": int(m.size), "alpha": float(m.alpha), "beta": float(m.beta), "bias": float(m.k),
            "extra": "before" if m.size % 2 == 0 else "after"}  # fmt: skip  (an odd window is centred either way)
    return _step(ctx, node, "lrn", opts, {})


def _held_tensor(ctx: _Ctx, node: Node, a: Any, what: str) -> Any:
    """A weight / bias argument: None, or a get_attr of a tensor the module holds (a parameter)."""
    if a is None:
        return None
    if not isinstance(a, Node) or a.op != "get_attr":
        raise ctx.refuse(node, f"its {what} is computed ({a!r}), not a tensor the module holds")
    t = fetch(ctx.gm, a)
    if not isinstance(t, torch.Tensor):
        raise ctx.refuse(node, f"its {what} {a.target!r} is a {type(t).__name__}, not a tensor")
    return t


@REGISTRY.register(torch.nn.functional.layer_norm, kinds=("layer_norm",))
def _layer_norm_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    """F.layer_norm(x, normalized_shape, weight, bias, eps) over the last axis of a tensor torch holds as the
    description does (channels last: torchvision's LayerNorm2d permutes its NCHW map to NHWC around it)."""
    shape = ctx.shapes[node.args[0]]
    normalized = tuple(int(d) for d in _arg(node, 1, "normalized_shape", ()))
    if len(normalized) != 1 or normalized[0] != shape[-1]:
        raise ctx.refuse(node, f"normalized_shape={normalized} of {shape}: the description's LayerNorm normalises the "
                               "last axis alone")  # fmt: skip
    if ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it normalises the last axis of the {ctx.layout.kind.upper()} map {shape}, which is not "
                               "its channels: permute the map channels-last around it (x.permute(0, 2, 3, 1))")  # fmt: skip
    weight = _held_tensor(ctx, node, _arg(node, 2, "weight", None), "weight")
    bias = _held_tensor(ctx, node, _arg(node, 3, "bias", None), "bias")
    scale = weight is not None and not _held(weight, 1.0)
    center = bias is not None and not _held(bias, 0.0)
    w = {**({"gamma": ctx.array(weight)} if scale else {}), **({"beta": ctx.array(bias)} if center else {})}
    eps = float(_arg(node, 4, "eps", 1e-5))
    return _step(ctx, node, "layer_norm", {"epsilon": eps, "scale": scale, "center": center}, w)
