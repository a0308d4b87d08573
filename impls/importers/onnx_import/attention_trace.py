"""Self-attention as an ONNX graph spells it, traced element by element (issue 25; attention.py reads the result).

Exporters write attention in many node orders: our ONNX port's three MatMuls, torch.onnx's packed in_proj MatMul
split by Reshape / Transpose / Gather, the dynamo exporter's Gemm on (T B, E), the scale on q, on the scores or as
sqrt(scale) on both q and k, opset 23's Attention op on 3-D or 4-D heads. Rather than match each order, the region
is interpreted on INDICES: every tensor of it is a `View`, an int64 array of the tensor's own shape saying which
element of which `Source` each element is (the region's input x (B, T, E), a projection (B, T, N), the heads'
output (B, H, T, dv), the output projection (B, T, Eo)), and the per-element factor `mul` and offset `add` constant
ops applied (value = mul * source[code] + add). Layout ops (Reshape, Transpose, Split, Gather, Slice, Squeeze, ...)
run on those arrays as they would on the data; a MatMul by a constant starts a new source; a MatMul of two views is
the scores, whose masks and scale are read off the constants; Softmax then MatMul by a view is the heads. Where the
head each row of the scores belongs to, the columns of q, k and v it reads and the layout of the output are read
back from the indices, nothing about the node order is assumed: what does not fit is a `Miss` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .context import Context, attrs

LAYOUT = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "Split", "Slice", "Gather",
          "Expand")  # fmt: skip
ARITH = ("Add", "Sub", "Mul", "Div")
MASKED = -1e9  # an additive score at or below this is a masked one: exp() of it is 0 in float32 and float64 alike


class Miss(Exception):
    """The region is not a self-attention this importer reads: the reason names the node."""


@dataclass(frozen=True)
class Source:
    stage: str  # "root" (the region's input), "proj" (x @ W), "heads" (softmax(q k^T) v), "out" (heads @ Wo)
    base: int  # its elements' codes are base + the flat index
    shape: tuple[int, ...]  # (B, T, N); heads (B, H, T, dv)
    matrix: np.ndarray | None  # root/proj: (E, N) the root's features -> the source's; out: (H dv, N); heads: None


@dataclass
class View:
    code: np.ndarray  # int64: which source element each element is
    mul: np.ndarray  # float64 factors
    add: np.ndarray  # float64 offsets
    stage: str

    def map(self, f: Any) -> View:
        return View(f(self.code), f(self.mul), f(self.add), self.stage)


@dataclass
class Scores:
    q: View  # (L..., Tq, dk): the left operand
    k: View  # (L..., dk, Tk): the right operand
    scale: float = 1.0
    keep: np.ndarray | None = None  # bool, broadcast against (L..., Tq, Tk): False = masked
    probs: bool = False  # after the Softmax
    stage: str = "scores"


class Trace:
    """The interpretation of one region, from `root` (the walker's value: x, (B, T, E) in the canonical order)."""

    def __init__(self, ctx: Context, root: str):
        self.ctx, self.root = ctx, root
        v, shape = ctx.values[root], ctx.shape(root)
        canon = [0] * 3
        for k, a in enumerate(v.axes):
            if a is not None:
                canon[a] = shape[k]
        self.B, self.T, self.E = canon
        codes = np.arange(self.B * self.T * self.E, dtype=np.int64).reshape(canon)
        self.sources = [Source("root", 0, tuple(canon), np.identity(self.E))]
        x = np.transpose(codes, [a for a in v.axes if a is not None]).reshape(shape)
        self.env: dict[str, Any] = {root: View(x, np.ones(x.shape), np.zeros(x.shape), "root")}
        self.heads: dict | None = None  # set by the MatMul of the probabilities by the values
        self.biased = False  # a constant was added to a projection or the output (the source's layer has biases)

    # ------------------------------------------------------------------ sources

    def _new(self, stage: str, shape: tuple, matrix: np.ndarray | None) -> Source:
        last = self.sources[-1]
        s = Source(stage, last.base + int(np.prod(last.shape)), tuple(int(n) for n in shape), matrix)
        self.sources.append(s)
        return s

    def decode(self, code: np.ndarray, what: str) -> tuple[Source, np.ndarray, np.ndarray, np.ndarray]:
        """(source, b, t, feature) of every element; the heads' feature is h * dv + j. One source per view."""
        bases = np.array([s.base for s in self.sources])
        k = np.searchsorted(bases, code, side="right") - 1
        if k.size == 0 or np.any(k != k.flat[0]):
            raise Miss(f"{what} mixes elements of different tensors")
        s = self.sources[int(k.flat[0])]
        local = code - s.base
        if s.stage == "heads":
            b, h, t, j = np.unravel_index(local, s.shape)
            return s, b, t, h * s.shape[3] + j
        b, t, f = np.unravel_index(local, s.shape)
        return s, b, t, f

    # ------------------------------------------------------------------ one node

    def const(self, name: str) -> np.ndarray | None:
        return self.ctx.consts.get(name) if name else None

    def step(self, node: Any) -> dict[str, Any]:
        """The node's outputs as views (or scores); Miss where it is not part of an attention."""
        op, ins = node.op_type, [t for t in node.input]
        vals = [self.env.get(t) for t in ins]
        if op in LAYOUT:
            return self._layout(node, vals[0])
        if op in ARITH and len(ins) == 2:
            return {node.output[0]: self._arith(node, vals)}
        if op == "Where":
            return {node.output[0]: self._where(node, vals)}
        if op == "Softmax" and isinstance(vals[0], Scores) and not vals[0].probs:
            s = vals[0]
            rank = s.q.code.ndim
            axis = int(attrs(node).get("axis", -1 if self.ctx.opset >= 13 else 1)) % rank
            if axis != rank - 1:
                raise Miss(f"normalises the scores over axis {axis}, not the keys' (the last)")
            return {node.output[0]: Scores(s.q, s.k, s.scale, s.keep, True)}
        if op == "MatMul":
            return {node.output[0]: self._matmul(node, vals)}
        if op == "Gemm":
            return {node.output[0]: self._gemm(node, vals)}
        if op == "Attention":
            return self.attention(node, vals)
        raise Miss(f"is a {op}, which no self-attention the importer reads contains there")

    def _view(self, v: Any, node: Any) -> View:
        if v is None:
            raise Miss("reads a tensor from outside the attention")
        if not isinstance(v, View):
            raise Miss(f"reads the {'probabilities' if getattr(v, 'probs', False) else 'scores'} where a tensor of "
                       "the sequence is expected")  # fmt: skip
        return v

    def _layout(self, node: Any, v: Any) -> dict[str, Any]:
        v = self._view(v, node)
        op, a, outs = node.op_type, attrs(node), [o for o in node.output]
        if op == "Dropout" and len(outs) > 1 and outs[1] and self.ctx.used(outs[1]):
            raise Miss("uses its dropout mask")
        try:
            shapes = [self.ctx.shape(o) for o in outs[:1]] if op != "Split" else None
        except KeyError:
            raise Miss("has an output whose shape is not static") from None
        if op in ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout"):
            return {outs[0]: v.map(lambda x: x.reshape(shapes[0]))}
        if op == "Expand":
            return {outs[0]: v.map(lambda x: np.broadcast_to(x, shapes[0]))}
        if op == "Transpose":
            perm = a.get("perm", list(range(v.code.ndim))[::-1])
            return {outs[0]: v.map(lambda x: np.transpose(x, perm))}
        if op == "Gather":
            idx = self.const(node.input[1]) if len(node.input) > 1 else None
            if idx is None:
                raise Miss("gathers by computed indices")
            return {outs[0]: v.map(lambda x: np.take(x, np.asarray(idx, np.int64), axis=int(a.get("axis", 0))))}
        if op == "Slice":
            return {outs[0]: v.map(lambda x: x[self._slices(node, x.ndim)])}
        return self._split(node, v)

    def _slices(self, node: Any, rank: int) -> tuple:
        if self.ctx.opset < 10:
            a = attrs(node)
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes", range(len(a["starts"]))), None
        else:
            got = [self.const(t) for t in list(node.input)[1:]] + [None] * 4
            if any(got[k] is None and k < len(node.input) - 1 and node.input[k + 1] for k in range(4)):
                raise Miss("slices by computed bounds")
            starts, ends, axes, steps = got[0], got[1], got[2], got[3]
            axes = range(len(starts)) if axes is None else axes
        cut = [slice(None)] * rank
        steps = [1] * len(starts) if steps is None else steps
        for ax, s, e, st in zip(np.ravel(axes), np.ravel(starts), np.ravel(ends), np.ravel(steps), strict=True):
            cut[int(ax) % rank] = slice(int(s), int(e), int(st))
        return tuple(cut)

    def _split(self, node: Any, v: View) -> dict[str, Any]:
        a = attrs(node)
        axis = int(a.get("axis", 0)) % v.code.ndim
        n, outs = v.code.shape[axis], list(node.output)
        sizes = a.get("split") if self.ctx.opset < 13 else self.const(node.input[1]) if len(node.input) > 1 else None
        if sizes is None:
            size = -(-n // len(outs))
            sizes = [min(size, n - k * size) for k in range(len(outs))]
        cuts = np.cumsum([int(s) for s in np.ravel(sizes)])[:-1]
        return {o: v.map(lambda x, k=k: np.split(x, cuts, axis=axis)[k]) for k, o in enumerate(outs) if o}

    def _arith(self, node: Any, vals: list) -> Any:
        op = node.op_type
        k = [j for j, v in enumerate(vals) if v is not None]
        if len(k) != 1 or self.const(node.input[1 - k[0]]) is None:
            raise Miss(f"{op.lower()}s two computed tensors")
        v, c, left = vals[k[0]], np.asarray(self.const(node.input[1 - k[0]]), np.float64), k[0] == 0
        if isinstance(v, Scores):
            return self._scores_arith(op, v, c, left)
        shape = v.code.shape
        if np.broadcast_shapes(c.shape, shape) != shape:
            raise Miss(f"broadcasts a constant of shape {c.shape} against {shape}")
        c = np.broadcast_to(c, shape)
        if op == "Add" or (op == "Sub" and left):
            self.biased |= v.stage in ("proj", "out")
            return View(v.code, v.mul, v.add + (c if op == "Add" else -c), v.stage)
        if op == "Sub":
            return View(v.code, -v.mul, c - v.add, v.stage)
        if op == "Mul":
            return View(v.code, v.mul * c, v.add * c, v.stage)
        if not left:
            raise Miss("divides a constant by the tensor")
        return View(v.code, v.mul / c, v.add / c, v.stage)

    def _scores_arith(self, op: str, s: Scores, c: np.ndarray, left: bool) -> Scores:
        if s.probs:
            raise Miss(f"{op.lower()}s the attention probabilities")
        if op in ("Mul", "Div"):
            if c.size and np.any(c != c.flat[0]) or (op == "Div" and not left):
                raise Miss(f"scales the scores by a constant that is not one number ({c.shape})")
            f = float(c.flat[0])
            return Scores(s.q, s.k, s.scale * f if op == "Mul" else s.scale / f, s.keep)
        if op != "Add":
            raise Miss("subtracts from the scores")
        masked = c <= MASKED
        if np.any(c[~masked] != 0):
            raise Miss("adds a bias to the scores that is not a mask (0 or -inf): a relative-position bias or ALiBi "
                       "is no option of the description's attention")  # fmt: skip
        return Scores(s.q, s.k, s.scale, ~masked if s.keep is None else s.keep & ~masked)

    def _where(self, node: Any, vals: list) -> Scores:
        cond, a, b = (self.const(t) for t in node.input)
        k = [j for j in (1, 2) if isinstance(vals[j], Scores)]
        if cond is None or len(k) != 1 or (a if k[0] == 2 else b) is None:
            raise Miss("selects with a computed condition (a padding mask from the ids is not read from ONNX)")
        s, fill = vals[k[0]], np.asarray(a if k[0] == 2 else b, np.float64)
        if s.probs or np.any(fill > MASKED):
            raise Miss("fills the scores with values that are not -inf: not a mask")
        keep = np.asarray(cond, bool) if k[0] == 1 else ~np.asarray(cond, bool)
        return Scores(s.q, s.k, s.scale, keep if s.keep is None else s.keep & keep)

    # ------------------------------------------------------------------ products

    def heads_of(self, probs: Scores, values: View) -> View:
        """softmax(q k^T) @ v as the heads' source (attention_heads.py's HeadsTrace)."""
        raise NotImplementedError

    def attention(self, node: Any, vals: list) -> dict[str, Any]:
        """Opset 23's Attention op (attention_heads.py's HeadsTrace)."""
        raise NotImplementedError

    def _matmul(self, node: Any, vals: list) -> Any:
        w = self.const(node.input[1])
        if w is not None:
            return self.project(self._view(vals[0], node), np.asarray(w), None, node)
        a, b = vals
        if (a is None) != (b is None):
            raise Miss("multiplies a tensor of this sequence by one computed elsewhere: cross attention (the query and "
                       "the key / value from different tensors) is not read from ONNX")  # fmt: skip
        if isinstance(a, Scores) and a.probs and isinstance(b, View):
            return self.heads_of(a, b)
        if isinstance(a, View) and isinstance(b, View):
            for v, what in ((a, "left"), (b, "right")):
                if v.stage not in ("root", "proj"):
                    raise Miss(f"multiplies the {what} operand, a {v.stage} tensor, as attention scores")
            return Scores(a, b)
        raise Miss("multiplies tensors that are not the query and key, or the probabilities and values")

    def _gemm(self, node: Any, vals: list) -> View:
        a = attrs(node)
        w, c = self.const(node.input[1]), self.const(node.input[2]) if len(node.input) > 2 else None
        if a.get("transA", 0) or w is None or (len(node.input) > 2 and node.input[2] and c is None):
            raise Miss(f"is a Gemm with transA={a.get('transA', 0)} or computed B / C")
        w = np.asarray(w).T if a.get("transB", 0) else np.asarray(w)
        bias = None if c is None else np.asarray(c, np.float64) * float(a.get("beta", 1.0))
        return self.project(self._view(vals[0], node), w * float(a.get("alpha", 1.0)), bias, node)

    def project(self, v: View, w: np.ndarray, bias: np.ndarray | None, node: Any) -> View:
        """x @ W (+ bias) of a view whose last axis holds one row's features: a new source. The view's own factors,
        offsets and order of features are folded into W's rows (out: the heads' (h, j) order)."""
        if v.stage not in ("root", "heads"):
            raise Miss(f"multiplies a {v.stage} tensor by a constant: a projection of a projection")
        if v.stage == "heads" and any(s.stage == "out" for s in self.sources):
            raise Miss("projects the heads' output twice")
        src, b, t, f = self.decode(v.code, "the projection's input")
        rows = f.reshape(-1, f.shape[-1])
        lead = lambda x: x.reshape(-1, x.shape[-1])
        width = self.E if src.stage == "root" else src.shape[1] * src.shape[3]
        same = lambda x: bool(np.all(lead(x) == lead(x)[:1]))
        if w.ndim != 2 or not (same(f) and same(v.mul) and same(v.add)) or sorted(rows[0]) != list(range(width)) \
                or np.any(lead(b) != lead(b)[:, :1]) or np.any(lead(t) != lead(t)[:, :1]):  # fmt: skip
            raise Miss(f"multiplies {v.code.shape} by {w.shape}: not one row's {width} features at a time")
        kernel = np.zeros((width, w.shape[1]))
        kernel[rows[0]] = lead(v.mul)[0][:, None] * w
        if bias is not None and np.size(bias) not in (1, w.shape[1]):
            raise Miss(f"adds C of shape {np.shape(bias)}: one bias per output only")
        offset = lead(v.add)[0] @ w + (0 if bias is None else np.broadcast_to(np.ravel(bias), (w.shape[1],)))
        self.biased |= bias is not None
        stage = "proj" if src.stage == "root" else "out"
        T = src.shape[1] if src.stage == "root" else src.shape[2]
        new = self._new(stage, (self.B, T, w.shape[1]), kernel)
        bt = lead(b)[:, 0] * T + lead(t)[:, 0]
        code = (new.base + bt[:, None] * w.shape[1] + np.arange(w.shape[1])).reshape(*v.code.shape[:-1], w.shape[1])
        return View(code, np.ones(code.shape), np.broadcast_to(offset, code.shape).copy(), stage)


__all__ = ["ARITH", "LAYOUT", "MASKED", "Miss", "Scores", "Source", "Trace", "View"]
