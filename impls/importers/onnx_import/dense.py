"""Dense: Gemm (x @ B + C, transB read as the kernel's transpose) on (batch, in), and MatMul by a constant kernel,
with the Add of a bias right after it fused in (2-D, or the last axis of 3-D). A Dense after a Flatten of an NCHW map
has its rows permuted to the canonical (h, w, c) order (convert.flatten_rows_nchw_to_nhwc); a MatMul over a last
axis that is not the features (after a permuting Transpose) gets a permute layer first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ... import convert
from .context import REGISTRY, Context, attrs


def _dense(ctx: Context, pos: int, node: Any, kernel: np.ndarray, bias: np.ndarray | None, out: str) -> None:
    v = ctx.value
    if v.rows is not None:
        kernel = convert.flatten_rows_nchw_to_nhwc(kernel, v.rows)
    opts = {"units": int(kernel.shape[1]), "use_bias": bias is not None}
    ctx.emit("dense", node, opts, {"kernel": kernel, **({"bias": bias} if bias is not None else {})})
    ctx.set(replace(v, name=out, rows=None))


@REGISTRY.register("Gemm", kinds=("dense",))
def gemm(ctx: Context, pos: int, node: Any) -> None:
    a = attrs(node)
    if a.get("transA", 0) or a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or ctx.value.axes != (0, 1):
        raise ctx.refuse(pos, node, f"has transA/alpha/beta {a} or a transposed input: x @ B + C on (batch, in) only")
    B = ctx.const(pos, node, 1)
    C = ctx.const(pos, node, 2)
    kernel = np.ascontiguousarray(B.T if a.get("transB", 0) else B)
    if C is not None and np.size(C) != kernel.shape[1]:
        raise ctx.refuse(pos, node, f"adds C of shape {np.shape(C)}: a bias of one value per output only")
    _dense(ctx, pos, node, kernel, None if C is None else np.asarray(C).reshape(-1), node.output[0])


@REGISTRY.register("MatMul", kinds=("dense", "permute"))
def matmul(ctx: Context, pos: int, node: Any) -> None:
    if None not in ctx.value.axes and ctx.value.rows is None and ctx.value.axes[-1] != len(ctx.value.axes) - 1:
        ctx.reinterpret(pos, node, tuple(range(len(ctx.value.axes))), "multiplies a last axis that is not the features")
    v = ctx.value
    kernel = ctx.const(pos, node, 1)
    if kernel.ndim != 2 or v.rank not in (2, 3) or [ax for ax in v.axes if ax is not None][-1] != v.rank - 1 \
            or v.axes[-1] is None:  # fmt: skip
        raise ctx.refuse(pos, node, f"multiplies axes {v.axes} by {kernel.shape}: a Dense on the last axis only")
    out, bias = node.output[0], None
    nxt = ctx.consumers(out)
    if len(nxt) == 1 and nxt[0][1].op_type == "Add" and ctx.i < len(ctx.nodes) and ctx.nodes[ctx.i][1] is nxt[0][1]:
        add = nxt[0][1]
        other = [t for t in add.input if t != out]
        if len(other) == 1 and other[0] in ctx.consts and np.size(ctx.consts[other[0]]) == kernel.shape[1]:
            bias, out = np.asarray(ctx.consts[other[0]]).reshape(-1), add.output[0]
            ctx.i += 1  # the Add is this Dense's bias
    _dense(ctx, pos, node, kernel, bias, out)


__all__ = ["gemm", "matmul"]
