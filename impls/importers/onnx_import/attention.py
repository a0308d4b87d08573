"""The ONNX importer's multi_head_attention (issue 25): self-attention as exporters write it.

- the MatMul / Softmax decomposition: our ONNX port's (three MatMuls, the scale a Mul of q), torch.onnx.export's
  TorchScript exporter's (nn.MultiheadAttention's packed in_proj MatMul, unflattened and picked by Gather, the scale
  as sqrt(scale) on q and on k^T, a float mask added to the scores) and its dynamo exporter's below opset 23 (Gemm on
  (T B, E) or MatMul, Reshape / Transpose to the heads);
- opset 23's `Attention` op (the dynamo exporter's scaled_dot_product_attention from opset 23 on), 3-D (B, T, H d)
  with q_num_heads = kv_num_heads or 4-D (B, H, T, d), scale, is_causal, a constant attn_mask.

A node whose products reach a MatMul of two computed tensors or an Attention op through ops an attention holds starts
the `PATTERNS` reader below: the region from the walker's value x is traced on indices (attention_trace.py,
attention_heads.py) and becomes one layer reading x twice (query, value), its end tensor the layer's output. The
weights: each head's q, k, v columns of their projections (E, H, d), the output projection's rows in the heads'
order (H, dv, Eo); factors folded into them: the graph's scale c (on q, on k, on the scores, or the op's attribute)
becomes the description's 1/sqrt(dk) with c * sqrt(dk) folded into the query kernel (1 where it is 1/sqrt(dk) to
1e-6: float32 rounding of the same scale); a key bias is dropped (softmax ignores it, noted). Masks: none, or the
causal one (Where / Add of -inf above the diagonal, is_causal). Anything else (cross attention, a mask computed from
the ids, another mask or score bias, grouped-query heads, past key / value, softcap, an intermediate read elsewhere)
is not read: the walker refuses at its first unread node (Context.refuse adds why the attention it belongs to was not
read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .attention_heads import HeadsTrace, Part, read_output
from .attention_trace import ARITH, LAYOUT, Miss, View
from .context import PATTERNS, REGISTRY, Context, scope
from .values import Value

START = (*LAYOUT, "MatMul", "Gemm", "Attention")  # the ops a region's first node can be
INSIDE = (*LAYOUT, *ARITH, "MatMul", "Gemm", "Where", "Softmax", "Attention")  # and the ops on its way to the scores
SNAP = 1e-6  # a query factor c * sqrt(dk) this close to 1 is the description's scale, rounded in float32


def _ends(ctx: Context) -> set[int]:
    """The nodes that end a region's products: a MatMul of two computed tensors, an Attention op."""
    return {id(n) for _, n in ctx.nodes if n.op_type == "Attention"
            or (n.op_type == "MatMul" and all(t and t not in ctx.consts for t in n.input))}  # fmt: skip


def _reached(ctx: Context, node: Any, ends: set[int]) -> Any:
    """The first end node the node's outputs reach through INSIDE ops, or None."""
    if id(node) in ends:
        return node
    users: dict[str, list] = {}
    for _, n in ctx.nodes[ctx.i :]:
        for t in n.input:
            users.setdefault(t, []).append(n)
    frontier, seen = list(node.output), set()
    while frontier and len(seen) < 400:
        for n in users.get(frontier.pop(), []):
            if id(n) in ends:
                return n
            if id(n) not in seen and n.op_type in INSIDE:
                seen.add(id(n))
                frontier.extend(n.output)
    return None


def read(ctx: Context, pos: int, node: Any) -> bool:
    """PATTERNS' reader: a self-attention starting at this node, emitted; True where the node is part of it."""
    if node.op_type not in START:
        return False
    computed = [t for t in node.input if t and t not in ctx.consts]
    root = computed[0] if computed else None
    v = ctx.values.get(root)
    if v is None or v.rows is not None or v.rank != 3 or root not in ctx.shapes:
        return False
    ends = ctx.attention_ends
    if ends is None:  # once a walk: the ids of nodes taken later never match again
        ends = ctx.attention_ends = _ends(ctx)
    end = _reached(ctx, node, ends) if ends else None
    if end is None:
        return False
    try:
        tr, taken, out = _trace(ctx, root)
        opts, w = _weights(ctx, tr, out)
    except Miss as e:  # on every node it read: kept where it got further than an earlier try from another value
        got = getattr(e, "progress", 0)
        for nid in {id(end), *getattr(e, "nodes", ())}:
            if ctx.misses.get(nid, (-1,))[0] <= got:
                ctx.misses[nid] = (got, f"traced from {root!r}: {e}", id(end))
        return False
    for nid in [k for k, m in ctx.misses.items() if m[2] == id(end)]:  # earlier tries at this attention: read now
        del ctx.misses[nid]
    _emit(ctx, root, tr, taken, out, opts, w)
    if id(node) in taken:
        return True
    ctx.read(root)  # a layout op of x read elsewhere too: its own converter reads it from x
    return False


def _trace(ctx: Context, root: str) -> tuple[HeadsTrace, set[int], tuple]:
    """Interpret the nodes from the walker's one on: (the trace, the ids of the nodes it reads, the output: (tensor,
    axes, output kernel, output bias)). Nodes reading only x and no attention tensor (a residual, a norm) are left."""
    tr = HeadsTrace(ctx, root)
    done, tail = [], []
    for p, n in ctx.nodes[ctx.i - 1 :]:
        touched = [t for t in n.input if t in tr.env]
        if not touched:
            continue
        inner = [t for t in touched if tr.env[t].stage != "root"]
        try:
            outs = tr.step(n)
        except Miss as e:
            if not inner:
                continue  # x read outside the attention
            if tail:
                break  # what follows the attention's output
            miss = Miss(f"node {p} {n.name or '(unnamed)'!r} ({n.op_type}) {e}")
            miss.progress, miss.nodes = len(done), [id(m) for _, m in done] + [id(n)]
            raise miss from None
        tr.env.update(outs)
        done.append((p, n))
        tail += [o for o, val in outs.items() if isinstance(val, View) and val.stage in ("heads", "out")]
    found = [(t, read_output(tr, tr.env[t])) for t in tail]
    found = [(t, r) for t, r in found if r is not None]
    if not found:
        raise Miss("no output of the heads is a (B, T, features) tensor: not the attention's output")
    end, (axes, kernel, bias) = found[-1]
    return tr, _taken(ctx, tr, done, end), (end, axes, kernel, bias)


def _taken(ctx: Context, tr: HeadsTrace, done: list, end: str) -> set[int]:
    """The interpreted nodes the layer replaces: the end's ancestors; those reading only x (a Transpose of it) only
    where nothing else reads them. Every tensor inside it but the end must be read only inside it."""
    producer = {o: n for _, n in done for o in n.output if o}
    keep, stack = {}, [end]
    while stack:
        n = producer.get(stack.pop())
        if n is not None and id(n) not in keep:
            keep[id(n)] = n
            stack.extend(t for t in n.input if t in tr.env)
    rest = ctx.nodes[ctx.i - 1 :]
    for n in reversed([n for _, n in done if id(n) in keep]):
        if all(tr.env.get(o) is None or tr.env[o].stage == "root" for o in n.output if o):
            readers = [m for _, m in rest if any(o and o in m.input for o in n.output)]
            if any(id(m) not in keep for m in readers) or ctx.output in n.output:
                del keep[id(n)]  # x's own layout, read elsewhere too: the walker reads it
    for n in keep.values():
        for o in n.output:
            if o and o != end and (o == ctx.output or any(o in m.input and id(m) not in keep for _, m in rest)):
                raise Miss(f"{o!r}, a tensor inside the attention ({n.op_type} {n.name!r}), is read outside it "
                           "(the scores or weights as an output, or a tensor used twice)")  # fmt: skip
    return set(keep)


# ---------------------------------------------------------------------- conventions (each a planted-bug test)


def query_key(left: Part, right: Part) -> tuple[Part, Part]:
    """The scores' left operand is the query (its rows are the softmax's rows), the right one the key."""
    return left, right


def query_factor(c: np.ndarray, dk: int) -> np.ndarray:
    """What the query kernel carries so that the description's 1/sqrt(dk) gives the graph's scale c (per column):
    c * sqrt(dk), 1 where that is 1 within SNAP."""
    f = np.asarray(c, np.float64) * np.sqrt(dk)
    return np.ones_like(f) if np.all(np.abs(f - 1) <= SNAP) else f


def stack_heads(per_head: list[np.ndarray]) -> np.ndarray:
    """Each head's (E, d) columns -> the canonical (E, H, d) kernel."""
    return np.stack(per_head, axis=1)


def _weights(ctx: Context, tr: HeadsTrace, out: tuple) -> tuple[dict, dict]:
    hd = tr.heads
    H, dk, dv = hd["H"], hd["dk"], hd["dv"]
    _, _, out_kernel, out_bias = out
    wq, bq, wk, wv, bv, key_bias = [], [], [], [], [], False
    for q, k, v in hd["parts"]:
        q, k = query_key(q, k)
        if np.any(q.mul == 0):
            raise Miss("multiplies a query feature by 0")
        s = query_factor(q.mul * k.mul * hd["scale"], dk)
        wq.append(q.src.matrix[:, q.f] * s)
        bq.append(s * q.add / q.mul)
        wk.append(k.src.matrix[:, k.f])
        wv.append(v.src.matrix[:, v.f] * v.mul)
        bv.append(v.add)
        key_bias |= bool(np.any(k.add != 0))
    dtype = next((np.asarray(c).dtype for c in ctx.consts.values() if np.asarray(c).dtype.kind == "f"), np.float32)
    w = {"query_kernel": stack_heads(wq), "key_kernel": stack_heads(wk), "value_kernel": stack_heads(wv),
         "output_kernel": out_kernel, "query_bias": np.stack(bq), "value_bias": np.stack(bv), "output_bias": out_bias}
    use_bias = tr.biased or any(np.any(w[k] != 0) for k in ("query_bias", "value_bias", "output_bias"))
    if not use_bias:
        w = {k: a for k, a in w.items() if not k.endswith("_bias")}
    w = {k: np.ascontiguousarray(a, dtype) for k, a in w.items()}
    opts = {"num_heads": H, "key_dim": dk, "use_bias": bool(use_bias), "causal": bool(hd["causal"])}
    if dv != dk:
        opts["value_dim"] = dv
    if out_kernel.shape[-1] != tr.E:
        opts["output_dim"] = int(out_kernel.shape[-1])
    if key_bias:
        ctx.notes.append(f"attention on {tr.root!r}: the key bias is dropped (softmax ignores it exactly)")
    return opts, w


def _emit(ctx: Context, root: str, tr: HeadsTrace, taken: set[int], out: tuple, opts: dict, w: dict) -> None:
    end, axes = out[0], out[1]
    named = [n for _, n in ctx.nodes[ctx.i - 1 :] if id(n) in taken and scope(n)]
    ctx.read(root)
    src = ctx.current
    node = next((n for n in named if n.op_type in ("Softmax", "Attention")), named[0] if named else None)
    name = scope(node) if node is not None else "attention"
    node = node or next(n for _, n in ctx.nodes[ctx.i - 1 :] if id(n) in taken)
    ctx.emit("multi_head_attention", node, opts, w, inputs=(src, src), name=name)
    for n in [n for _, n in ctx.nodes[ctx.i :] if id(n) in taken]:
        ctx.take(n)
    ctx.set(Value(end, axes))
    ctx.notes.append(f"attention {name!r}: {len(taken)} nodes read as one multi_head_attention layer ({opts['num_heads']} "
                     f"heads of {opts['key_dim']}{', causal' if opts['causal'] else ''})")


PATTERNS.append(read)


@REGISTRY.register("Attention", kinds=("multi_head_attention",))
def attention(ctx: Context, pos: int, node: Any) -> None:
    """Reached only where the pattern's reader did not read it (its Q, K and V not one tensor's): refused, with why
    the reader gave (Context.refuse)."""
    raise ctx.refuse(pos, node, "is an Attention op not read as a self-attention of one tensor")


__all__ = ["attention", "query_factor", "query_key", "read", "stack_heads"]
