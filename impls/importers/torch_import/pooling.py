"""The pools: nn.MaxPool2d, nn.AvgPool2d and their functional forms; the global pools: nn.AdaptiveAvg/MaxPool1d/2d(1)
followed by a flatten, and x.mean(dim=...) / x.amax(dim=...) over every position.

A 2-D pool reads an NCHW map (ceil_mode as the description's; dilation, divisor_override and return_indices are
refused). nn.AdaptiveAvgPool2d / F.adaptive_avg_pool2d to any other size (or not flattened) is adaptive_avg_pool2d. An
adaptive pool to output size 1 whose (B, C, 1[, 1]) output is flattened to (B, C) right after is a global pool (the
1-D ones read a (B, C, L) map); so is a mean / maximum over every position of a map (dims 2, 3 of NCHW; 2 of NCW) or
over the steps of a (B, T, F) sequence (dim 1).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ...layouts import PLAIN, Layout
from .context import (
    REGISTRY,
    F,
    Node,
    Step,
    _arg,
    _Ctx,
    _explicit,
    _image_input,
    _map_input,
    _pair,
    _step,
    _tensor_users,
    nn,
    torch,
)


def _pool_opts(ctx: _Ctx, node: Node, m: Any) -> dict:
    _image_input(ctx, node)
    k = _pair(m.kernel_size)
    stride = k if m.stride in (None, [], ()) else _pair(m.stride)
    p = _pair(m.padding)
    opts = {"pool_size": k, "strides": stride, "padding": _explicit((p[0], p[0], p[1], p[1]))}
    return {**opts, "ceil_mode": True} if m.ceil_mode else opts  # torch's ceil rule is the description's


@REGISTRY.register(nn.MaxPool2d, kinds=("max_pool2d",))
def _max_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    if _pair(m.dilation) != [1, 1]:
        raise ctx.refuse(node, f"dilation={m.dilation!r}; the description's pools have no dilation")
    if m.return_indices:
        raise ctx.refuse(node, "return_indices=True; the chain carries one tensor")
    return _step(ctx, node, "max_pool2d", _pool_opts(ctx, node, m), layout=Layout("nchw"))


@REGISTRY.register(nn.AvgPool2d, kinds=("avg_pool2d",))
def _avg_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    if m.divisor_override is not None:
        raise ctx.refuse(node, f"divisor_override={m.divisor_override!r}; the description divides by the window or its cells")
    opts = {**_pool_opts(ctx, node, m), "count_include_pad": bool(m.count_include_pad)}
    return _step(ctx, node, "avg_pool2d", opts, layout=Layout("nchw"))


def _pool_call(node: Node, names: tuple[str, ...], defaults: dict) -> Any:
    """F.max_pool2d(x, 2) / F.avg_pool2d(x, 2, stride=1): the call's options, read like the module's attributes."""
    return SimpleNamespace(**{n: _arg(node, i + 1, n, defaults.get(n)) for i, n in enumerate(names)})


@REGISTRY.register(F.max_pool2d, torch.max_pool2d, kinds=("max_pool2d",))
def _max_pool_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    m = _pool_call(node, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                   {"padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})  # fmt: skip
    return _max_pool(ctx, node, m)


@REGISTRY.register(F.avg_pool2d, kinds=("avg_pool2d",))
def _avg_pool_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    m = _pool_call(node, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
                   {"padding": 0, "ceil_mode": False, "count_include_pad": True})  # fmt: skip
    return _avg_pool(ctx, node, m)


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


@REGISTRY.register(nn.AdaptiveMaxPool2d, kinds=("global_max_pool",))
@REGISTRY.register(nn.AdaptiveMaxPool1d, kinds=("global_max_pool",), reads="ncw")
@REGISTRY.register(nn.AdaptiveAvgPool2d, kinds=("global_avg_pool", "adaptive_avg_pool2d"))
@REGISTRY.register(nn.AdaptiveAvgPool1d, kinds=("global_avg_pool",), reads="ncw")  # a 3-D input is a (B, C, L) map
def _adaptive_pool(ctx: _Ctx, node: Node, m: Any) -> Step:
    two = isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))
    _map_input(ctx, node, "nchw" if two else "ncw", "batched NCHW map" if two else "batched (B, C, L) map")
    size = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size,) * (2 if two else 1)
    if getattr(m, "return_indices", False):
        raise ctx.refuse(node, "return_indices=True; a layer gives one tensor")
    flat = _pooled_flatten(ctx, node) if all(s == 1 for s in size) else None
    if flat is None and isinstance(m, nn.AdaptiveAvgPool2d):
        return _adaptive_avg(ctx, node, size)
    if any(s != 1 for s in size):
        raise ctx.refuse(node, f"output_size={m.output_size!r}; the description's adaptive pools are the average "
                               "to any size (2-D) and the maximum to size 1")  # fmt: skip
    if flat is None:
        raise ctx.refuse(node, f"its (B, C, {'1, 1' if two else '1'}) output is not flattened to (B, C) right after "
                               "(nn.Flatten(), x.flatten(1), x.view(B, -1)); the description's global pool gives "
                               "(B, C)")  # fmt: skip
    kind = "global_avg_pool" if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)) else "global_max_pool"
    return _step(ctx, node, kind, layout=PLAIN, nodes=[node, flat])


def _adaptive_avg(ctx: _Ctx, node: Node, size: Any) -> Step:
    """torch's adaptive windows on an NCHW map; an output size None keeps that axis' input size."""
    _, _, H, W = ctx.shapes[node.args[0]]
    out = [n if s is None else int(s) for s, n in zip(size, (H, W), strict=True)]
    return _step(ctx, node, "adaptive_avg_pool2d", {"output_size": out}, layout=Layout("nchw"))


@REGISTRY.register(F.adaptive_avg_pool2d, kinds=("adaptive_avg_pool2d", "global_avg_pool"))
def _adaptive_avg_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    size = _arg(node, 1, "output_size", None)
    return _adaptive_pool(ctx, node, nn.AdaptiveAvgPool2d(size))


@REGISTRY.register("amax", torch.amax, kinds=("global_max_pool",))
@REGISTRY.register("mean", torch.mean, kinds=("global_avg_pool",))
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

