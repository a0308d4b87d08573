"""nn.Linear: the description's dense layer.

Its (out, in) weight becomes the (in, out) kernel through impls/convert.py (dense_from_torch); after a flatten of a
channels-first map its rows are read back from torch's (c, h, w) order into the description's (h, w, c) one
(flatten_rows_nchw_to_nhwc). A Linear on the last (width or length) axis of an NCHW / NCW map is refused.
"""

from __future__ import annotations

from typing import Any

from ... import convert
from ...layouts import PLAIN
from .context import REGISTRY, Node, Step, _Ctx, _step, nn


@REGISTRY.register(nn.Linear, kinds=("dense",))
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

