"""The heads of a traced attention (attention_trace.py): which rows of the scores belong to which head and batch row,
the columns of q, k and v each reads, the mask; opset 23's Attention op over the same views; and the layout of the
attention's output.

A head is a set of rows of the scores whose query, key and value views read, in every batch row, the same columns of
the same sources. Every batch row must hold every head once; heads are numbered in the order of their query columns
(head-major packing, torch's and the description's). Softmax(q k^T) v then becomes the source (B, H, T, dv).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .attention_trace import MASKED, Miss, Scores, Source, Trace, View
from .context import attrs

ATTENTION_ATTRS = {"q_num_heads", "kv_num_heads", "scale", "is_causal", "softcap", "qk_matmul_output_mode"}


@dataclass(frozen=True)
class Part:
    """One operand of the heads, one entry per leading index l of the scores: the batch row b[l], the source
    columns f[l] (d,) it reads, and the factor and offset on each."""

    src: Source
    b: np.ndarray
    f: np.ndarray
    mul: np.ndarray
    add: np.ndarray


def _part(tr: Trace, view: View, t_axis: int, what: str) -> Part:
    src, b, t, f = tr.decode(view.code, f"the {what}")
    if src.stage not in ("root", "proj"):
        raise Miss(f"takes a {src.stage} tensor as the {what}")
    arrs = [b, t, f, view.mul, view.add]
    if t_axis == -1:
        arrs = [np.swapaxes(x, -1, -2) for x in arrs]
    b, t, f, mul, add = arrs
    steps = src.shape[1]
    if t.shape[-2] != steps or np.any(t != np.arange(steps)[:, None]):
        raise Miss(f"reads the {what} with rows that are not the sequence's {steps} steps in order (cross attention "
                   "or a reordered sequence)")  # fmt: skip
    if np.any(b != b[..., :1, :1]):
        raise Miss(f"mixes batch rows within one head of the {what}")
    for x, name in ((f, "features"), (mul, "factors"), (add, "offsets")):
        if np.any(x != x[..., :1, :]):
            raise Miss(f"reads {name} of the {what} that change from step to step")
    return Part(src, b[..., 0, 0], f[..., 0, :], mul[..., 0, :], add[..., 0, :])


def _causal(keep: np.ndarray | None, shape: tuple) -> bool:
    if keep is None:
        return False
    try:
        keep = np.broadcast_to(keep, shape).reshape(-1, *shape[-2:])
    except ValueError:
        raise Miss(f"masks the scores {shape} with a mask of shape {np.shape(keep)}") from None
    if np.any(keep != keep[:1]):
        raise Miss("masks the scores differently in different heads or batch rows")
    if keep[0].all():
        return False
    if np.array_equal(keep[0], np.tril(np.ones(shape[-2:], bool))):
        return True
    raise Miss("masks the scores with a pattern that is neither none nor causal (keys after the query): other "
               "attention masks are no option of the description's attention")  # fmt: skip


def heads(tr: Trace, probs: Scores, values: View) -> View:
    """softmax(q k^T * scale, mask) @ v: the heads' source, and its view (L..., T, dv)."""
    q, k, v = _part(tr, probs.q, -2, "query"), _part(tr, probs.k, -1, "key"), _part(tr, values, -2, "value")
    lead = q.b.shape
    if k.b.shape != lead or v.b.shape != lead:
        raise Miss(f"splits the query, key and value into different heads ({lead}, {k.b.shape}, {v.b.shape})")
    if np.any(q.b != k.b) or np.any(q.b != v.b):
        raise Miss("pairs the query of one batch row with the key or value of another")
    if q.f.shape[-1] != k.f.shape[-1]:
        raise Miss(f"multiplies queries of {q.f.shape[-1]} features by keys of {k.f.shape[-1]}")
    n = int(np.prod(lead))
    flat = [Part(p.src, p.b.reshape(n), p.f.reshape(n, -1), p.mul.reshape(n, -1), p.add.reshape(n, -1)) for p in (q, k, v)]

    def sig(i: int) -> tuple:
        return tuple((p.src.base, tuple(p.f[i]), p.mul[i].tobytes(), p.add[i].tobytes()) for p in flat)

    rows: dict[int, list] = {}
    for i in range(n):
        rows.setdefault(int(flat[0].b[i]), []).append(sig(i))
    order = sorted(rows.get(0, []))
    if sorted(rows) != list(range(tr.B)) or any(sorted(r) != order for r in rows.values()) or len(set(order)) != len(order):
        raise Miss("does not hold every head once in every batch row")
    H, T, dv = len(order), tr.T, v.f.shape[-1]
    head = np.array([order.index(sig(i)) for i in range(n)]).reshape(lead)
    first = [next(i for i in range(n) if sig(i) == s) for s in order]
    tr.heads = {"H": H, "dk": q.f.shape[-1], "dv": dv, "scale": probs.scale,
                "causal": _causal(probs.keep, (*lead, T, T)),
                "parts": [tuple(Part(p.src, p.b[i], p.f[i], p.mul[i], p.add[i]) for p in flat) for i in first]}  # fmt: skip
    src = tr._new("heads", (tr.B, H, T, dv), None)
    bh = (q.b * H + head)[..., None, None]
    code = src.base + (bh * T + np.arange(T)[:, None]) * dv + np.arange(dv)
    return View(code, np.ones(code.shape), np.zeros(code.shape), "heads")


def attention_op(tr: Trace, node: Any, vals: list) -> dict[str, View]:
    """Opset 23's Attention(Q, K, V[, attn_mask]): 3-D (B, T, H d) with q_num_heads = kv_num_heads, or 4-D (B, H, T,
    d); scale (default 1/sqrt(d)), is_causal, a constant mask (bool True = attend, or 0 / -inf added). Refused: past
    key / value, nonpad_kv_seqlen, softcap, grouped-query heads, other outputs used."""
    a, ins = attrs(node), [*node.input, *[""] * 7]
    if set(a) - ATTENTION_ATTRS:
        raise Miss(f"has attributes {sorted(set(a) - ATTENTION_ATTRS)} the description's attention has no option for")
    for k, what in ((4, "past_key"), (5, "past_value"), (6, "nonpad_kv_seqlen")):
        if ins[k]:
            raise Miss(f"takes {what}: a cache or per-row lengths, which the description's attention does not hold")
    if any(o and tr.ctx.used(o) for o in node.output[1:]):
        raise Miss("uses its present key / value or its qk_matmul output: the description gives the output only")
    if a.get("softcap", 0.0):
        raise Miss(f"has softcap={a['softcap']} (scores through c * tanh(s / c)): no option of the description's")
    if any(x is None for x in vals[:3]):
        raise Miss("takes Q, K or V computed elsewhere: cross attention (the query and the key / value from different "
                   "tensors) is not read from ONNX")  # fmt: skip
    if any(not isinstance(x, View) for x in vals[:3]):
        raise Miss("takes Q, K or V that are not tensors of the sequence")
    q, k, v = vals[:3]
    rank = q.code.ndim
    if rank == 3:
        hq, hkv = int(a.get("q_num_heads", 0)), int(a.get("kv_num_heads", 0))
        if not hq or hq != hkv:
            raise Miss(f"has q_num_heads={hq}, kv_num_heads={hkv}: grouped-query heads are not the description's")

        def split(x: np.ndarray, perm: tuple) -> np.ndarray:
            return np.transpose(x.reshape(x.shape[0], x.shape[1], hq, -1), perm)

        q4, kt, v4 = q.map(lambda x: split(x, (0, 2, 1, 3))), k.map(lambda x: split(x, (0, 2, 3, 1))), \
            v.map(lambda x: split(x, (0, 2, 1, 3)))  # fmt: skip
    elif rank == 4:
        if not q.code.shape[1] == k.code.shape[1] == v.code.shape[1]:
            raise Miss(f"has {q.code.shape[1]} query heads and {k.code.shape[1]} key heads: grouped-query heads")
        q4, kt, v4 = q, k.map(lambda x: np.swapaxes(x, -1, -2)), v
    else:
        raise Miss(f"takes rank-{rank} Q: 3-D or 4-D only")
    dk, tq, tk = q4.code.shape[-1], q4.code.shape[-2], kt.code.shape[-1]
    keep = None
    if ins[3]:
        m = tr.const(ins[3])
        if m is None:
            raise Miss("takes a computed attn_mask (a padding mask from the ids is not read from ONNX)")
        m = np.asarray(m)
        if m.dtype == bool:
            keep = m
        else:
            if np.any(m[m > MASKED] != 0):
                raise Miss("adds an attn_mask that is not 0 / -inf: a score bias is no option of the description's")
            keep = m > MASKED
    if a.get("is_causal", 0):
        tril = np.tril(np.ones((tq, tk), bool))
        keep = tril if keep is None else keep & tril
    scale = float(a["scale"]) if "scale" in a else 1.0 / np.sqrt(dk)
    o = heads(tr, Scores(q4, kt, scale, keep, True), v4)
    if rank == 3:
        o = o.map(lambda x: np.transpose(x, (0, 2, 1, 3)).reshape(x.shape[0], x.shape[2], -1))
    return {node.output[0]: o}


def read_output(tr: Trace, view: View) -> tuple[tuple[int, ...], np.ndarray, np.ndarray] | None:
    """The attention's output as the graph holds it: (the Value axes, output kernel (H, dv, F), output bias (F,)),
    where it is (B, T, F) in some axis order with factors and offsets per feature only; None otherwise."""
    if view.stage not in ("heads", "out") or view.code.ndim != 3 or tr.heads is None:
        return None
    src, b, t, f = tr.decode(view.code, "the attention's output")
    H, dv = tr.heads["H"], tr.heads["dv"]
    for perm in itertools.permutations(range(3)):
        bb, tt, ff, mm, aa = (np.transpose(x, perm) for x in (b, t, f, view.mul, view.add))
        if bb.shape[:2] != (tr.B, tr.T) or np.any(bb != np.arange(tr.B)[:, None, None]) \
                or np.any(tt != np.arange(tr.T)[None, :, None]):  # fmt: skip
            continue
        if any(np.any(x != x[:1, :1]) for x in (ff, mm, aa)):
            return None
        axes = [0, 0, 0]
        for c in range(3):
            axes[perm[c]] = c
        matrix = src.matrix if src.stage == "out" else np.identity(H * dv)
        kernel = matrix[:, ff[0, 0]] * mm[0, 0]
        return tuple(axes), kernel.reshape(H, dv, -1), np.array(aa[0, 0])
    return None


class HeadsTrace(Trace):
    """The trace with its heads: the MatMul of the probabilities by the values, and the Attention op."""

    def heads_of(self, probs: Scores, values: View) -> View:
        return heads(self, probs, values)

    def attention(self, node: Any, vals: list) -> dict[str, Any]:
        return attention_op(self, node, vals)


__all__ = ["HeadsTrace", "Part", "attention_op", "heads", "read_output"]
