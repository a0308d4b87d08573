"""The torch port's multi_head_attention (issue 25): nn.MultiheadAttention(E, H, batch_first=True), its q, k and v
packed into in_proj_weight (q, k, v order; impls/convert/attention.py) where kdim == vdim == E, else kdim= / vdim=
(separate q/k/v_proj_weight); torch's key bias (in_proj_bias[E:2E]) written as zeros (the description has none:
softmax ignores it). Called `self.attn(query, key, value, need_weights=False)[0]`; a causal layer passes attn_mask
(True above the diagonal: not attended), a padded input key_padding_mask (True at padded steps: torch's "ignore"
polarity, the description's mask inverted) from the `lengths` the embedding or masking layer made.

Where torch's module cannot hold the layer (per-head sizes other than E / H, a value size other than the key's, an
output width other than the query's: a Keras key_dim * heads != width) the port writes readable code instead, an
`Attention` module of four nn.Linear (query, key without a bias, value, output) and the scores written out, called
the same way.
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from .code import EMITTERS, _Piece
from .source import HELPERS, shape_text

HELPERS["Attention"] = '''class Attention(nn.Module):
    """Multi-head attention with per-head sizes of its own (Keras' key_dim and value_dim, which nn.MultiheadAttention
    ties to embed_dim / num_heads): q, k, v and the output are nn.Linear layers, the heads' rows head-major; the key
    has no bias (softmax ignores one). Called as nn.MultiheadAttention is: (query, key, value, attn_mask=,
    key_padding_mask=), True meaning "not attended"; returns (output, None)."""

    def __init__(self, q_in, k_in, v_in, heads, key_dim, value_dim, out, bias):
        super().__init__()
        self.heads, self.key_dim, self.value_dim = heads, key_dim, value_dim
        self.query = nn.Linear(q_in, heads * key_dim, bias=bias)
        self.key = nn.Linear(k_in, heads * key_dim, bias=False)
        self.value = nn.Linear(v_in, heads * value_dim, bias=bias)
        self.output = nn.Linear(heads * value_dim, out, bias=bias)

    def forward(self, query, key, value, need_weights=False, attn_mask=None, key_padding_mask=None):
        b, tq, tk = query.shape[0], query.shape[1], key.shape[1]
        q = self.query(query).view(b, tq, self.heads, self.key_dim).transpose(1, 2)  # (B, H, Tq, key_dim)
        k = self.key(key).view(b, tk, self.heads, self.key_dim).transpose(1, 2)
        v = self.value(value).view(b, tk, self.heads, self.value_dim).transpose(1, 2)
        scores = (q * self.key_dim ** -0.5) @ k.transpose(-2, -1)  # (B, H, Tq, Tk), scaled once
        if attn_mask is not None:
            scores = scores.masked_fill(attn_mask, float("-inf"))
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        o = torch.softmax(scores, dim=-1) @ v  # (B, H, Tq, value_dim)
        return self.output(o.transpose(1, 2).reshape(b, tq, self.heads * self.value_dim)), None'''


def _sizes(layer: Layer) -> tuple[int, int, int, int, int, int, int]:
    """(Eq, Ek, Ev, H, dk, dv, Eo) from the weights."""
    eq, h, dk = np.shape(layer.weights["query_kernel"])
    ek = np.shape(layer.weights["key_kernel"])[0]
    ev, _, dv = np.shape(layer.weights["value_kernel"])
    eo = np.shape(layer.weights["output_kernel"])[-1]
    return int(eq), int(ek), int(ev), int(h), int(dk), int(dv), int(eo)


def fits_torch(layer: Layer) -> bool:
    """Whether nn.MultiheadAttention holds the layer: heads of embed_dim / num_heads, value as key, output embed_dim."""
    eq, _, _, h, dk, dv, eo = _sizes(layer)
    return h * dk == eq and dv == dk and eo == eq


def _readable_state(w: dict) -> dict:
    out = {}
    for n in ("query", "key", "value"):
        e = np.shape(w[f"{n}_kernel"])[0]
        out[f"{n}.weight"] = np.ascontiguousarray(np.asarray(w[f"{n}_kernel"]).reshape(e, -1).T)
        if f"{n}_bias" in w:
            out[f"{n}.bias"] = np.asarray(w[f"{n}_bias"]).reshape(-1).copy()
    h, dv, eo = np.shape(w["output_kernel"])
    out["output.weight"] = np.ascontiguousarray(np.asarray(w["output_kernel"]).reshape(h * dv, eo).T)
    if "output_bias" in w:
        out["output.bias"] = np.asarray(w["output_bias"]).copy()
    return out


def _readable_back(a: dict, h: int, dk: int, dv: int) -> dict:
    out = {}
    for n, d in (("query", dk), ("key", dk), ("value", dv)):
        wt = np.asarray(a[f"{n}.weight"])
        out[f"{n}_kernel"] = np.ascontiguousarray(wt.T.reshape(wt.shape[1], h, d))
        if f"{n}.bias" in a:
            out[f"{n}_bias"] = np.asarray(a[f"{n}.bias"]).reshape(h, d)
    wo = np.asarray(a["output.weight"])
    out["output_kernel"] = np.ascontiguousarray(wo.T.reshape(h, dv, wo.shape[0]))
    if "output.bias" in a:
        out["output_bias"] = np.asarray(a["output.bias"])
    return out


@EMITTERS.register("multi_head_attention", merge=True, takes=("plain",), masked=True)
def attention(layer: Layer, opts: dict, shapes: tuple, exprs: list[str], layout: Layout, masked: bool = False) -> _Piece:
    eq, ek, ev, h, dk, dv, eo = _sizes(layer)
    packed = ek == ev == eq
    native = fits_torch(layer)
    if native:
        state = convert.mha_to_torch(dict(layer.weights), packed=packed)

        def back(a):
            return convert.mha_from_torch(dict(a), h)
    else:
        state = _readable_state(dict(layer.weights))

        def back(a):
            return _readable_back(a, h, dk, dv)

    q, v = exprs[0], exprs[1]
    k = exprs[2] if len(exprs) == 3 else v
    tq, tk = shapes[0][1], shapes[1][1]
    lines, kwargs = [], ["need_weights=False"]
    if opts["causal"]:
        lines.append(f"causal = torch.ones({tq}, {tk}, dtype=torch.bool, device={q}.device).triu(1)  # True: not "
                     "attended (keys after the query)")  # fmt: skip
        kwargs.append("attn_mask=causal")
    if masked:
        lines.append(f"ignore = torch.arange({tk}, device={q}.device)[None, :] >= lengths.to({q}.device)[:, None]  "
                     "# True at padded steps: torch's key_padding_mask ignores them")  # fmt: skip
        kwargs.append("key_padding_mask=ignore")
    out = ("B", tq, eo)
    lines.append(f"x = self.{{a}}({q}, {k}, {v}, {', '.join(kwargs)})[0]  # {layer.name}: {shape_text(out)}")
    if not native:
        init = (f"Attention({eq}, {ek}, {ev}, heads={h}, key_dim={dk}, value_dim={dv}, out={eo}, bias={opts['use_bias']})"
                f"  # nn.MultiheadAttention ties heads to {eq} / {h}")  # fmt: skip
        return _Piece(init, lines, state, back, out, PLAIN, helpers=("Attention",))
    extra = "" if packed else f", kdim={ek}, vdim={ev}"
    init = (f"nn.MultiheadAttention({eq}, {h}{extra}, bias={opts['use_bias']}, batch_first=True)  # q, k, v "
            f"{'packed in in_proj_weight' if packed else 'in q/k/v_proj_weight'}; heads of {dk}")
    return _Piece(init, lines, state, back, out, PLAIN)


__all__ = ["attention", "fits_torch"]
