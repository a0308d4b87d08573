"""The ONNX port's multi_head_attention (issue 25): the MatMul / Softmax decomposition torch.onnx writes for
nn.MultiheadAttention, in standard ops of opset 21 (no Attention op: ONNX Runtime 1.31's CPU kernel is float32 only
and opset 23's is newer than the port's opset):

    q = Transpose(Reshape(MatMul(query, Wq) + bq, [0, Tq, H, dk]), [0, 2, 1, 3]) * scale            (B, H, Tq, dk)
    kT = Transpose(Reshape(MatMul(key, Wk), [0, Tk, H, dk]), [0, 2, 3, 1])                           (B, H, dk, Tk)
    v = Transpose(Reshape(MatMul(value, Wv) + bv, [0, Tk, H, dv]), [0, 2, 1, 3])                     (B, H, Tk, dv)
    s = MatMul(q, kT); s = Where(keep, s, -inf)  (keep: causal, and keys before the row's length)    (B, H, Tq, Tk)
    y = MatMul(Reshape(Transpose(MatMul(Softmax(s, -1), v), [0, 2, 1, 3]), [0, Tq, H dv]), Wo) + bo

the kernels as the canonical (E, H, d) reshaped to (E, H d) (head-major, torch's packing of in_proj_weight too); the
scale 1 / sqrt(dk) a (dk,) initializer of that value (a scalar would be fused into MatMul's float32 alpha).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .builder import CANON, EMITTERS, _Graph


def _heads(g: _Graph, x: str, t: int, name: str, w: dict, perm: list[int]) -> str:
    kernel = np.asarray(w[f"{name}_kernel"])
    e, h, d = kernel.shape
    y = g.node("MatMul", [x, g.weight(f"{name}_kernel", kernel.reshape(e, h * d))])[0]
    if f"{name}_bias" in w:
        y = g.node("Add", [y, g.weight(f"{name}_bias", np.asarray(w[f"{name}_bias"]).reshape(-1))])[0]
    y = g.node("Reshape", [y, g.const(f"{name}_heads", [0, t, h, d])])[0]
    return g.node("Transpose", [y], perm=perm)[0]


def _input(g: _Graph, name: str) -> str:
    g.read(name)
    g.to(CANON, 3)
    return g.value


@EMITTERS.register("multi_head_attention", check=lambda opts, dtype: None)
def attention(g: _Graph, i: int, layer: Any, opts: dict, shapes: tuple) -> None:
    srcs = g.model.sources(i)
    xq, xv = _input(g, srcs[0]), _input(g, srcs[1])
    xk = _input(g, srcs[2]) if len(srcs) == 3 else xv
    tq, tk = shapes[0][1], shapes[1][1]
    w = layer.weights
    h, dv, eo = np.shape(w["output_kernel"])
    q = _heads(g, xq, tq, "query", w, [0, 2, 1, 3])
    # the scale as one value per feature, not a scalar: ONNX Runtime's optimizer folds a Mul by a scalar into the
    # MatMul's alpha, a float32 attribute (measured: 8.9e-9 on the scores in float64, against 2e-16 this way)
    q = g.node("Mul", [q, g.const("scale", np.full(opts["key_dim"], 1.0 / np.sqrt(opts["key_dim"])), g.dtype)])[0]
    kt = _heads(g, xk, tk, "key", w, [0, 2, 3, 1])
    v = _heads(g, xv, tk, "value", w, [0, 2, 1, 3])
    s = g.node("MatMul", [q, kt])[0]
    keep = None
    if opts["causal"]:
        keep = g.const("causal", np.tril(np.ones((tq, tk), bool)), np.bool_)
    src = g.sources[i]
    if src is not None:  # keys at padded steps: t >= the row's length
        lens = g.node("Unsqueeze", [g.lens[src], g.const("ax1", [1])])[0]
        valid = g.node("Less", [g.const("steps", np.arange(tk)[None, :], np.int32), lens])[0]  # (B, Tk)
        valid = g.node("Unsqueeze", [valid, g.const("ax12", [1, 2])])[0]  # (B, 1, 1, Tk)
        keep = valid if keep is None else g.node("And", [keep, valid])[0]
    if keep is not None:
        s = g.node("Where", [keep, s, g.const("minus_inf", -np.inf, g.dtype)])[0]
    o = g.node("MatMul", [g.node("Softmax", [s], axis=-1)[0], v])[0]
    o = g.node("Reshape", [g.node("Transpose", [o], perm=[0, 2, 1, 3])[0], g.const("merged", [0, tq, h * dv])])[0]
    y = g.node("MatMul", [o, g.weight("output_kernel", np.asarray(w["output_kernel"]).reshape(h * dv, eo))])[0]
    if "output_bias" in w:
        y = g.node("Add", [y, g.weight("output_bias", w["output_bias"])])[0]
    g.value, g.layout = y, CANON


__all__ = ["attention"]
