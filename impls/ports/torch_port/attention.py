"""The torch port's multi_head_attention (issue 25): nn.MultiheadAttention(E, H, batch_first=True), its q, k and v
packed into in_proj_weight (q, k, v order; impls/convert/attention.py) where kdim == vdim == E, else kdim= / vdim=
(separate q/k/v_proj_weight); torch's key bias (in_proj_bias[E:2E]) written as zeros (the description has none:
softmax ignores it). Called `self.attn(query, key, value, need_weights=False)[0]`; a causal layer passes attn_mask
(True above the diagonal: not attended), a padded input key_padding_mask (True at padded steps: torch's "ignore"
polarity, the description's mask inverted) from the `lengths` the embedding or masking layer made.

Where torch's module cannot hold the layer (per-head sizes other than E / H, a value size other than the key's, an
output width other than the query's) the port refuses it, naming the layer (readable code for those: a later step).
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from .code import EMITTERS, _Piece
from .source import shape_text


def _sizes(layer: Layer) -> tuple[int, int, int, int, int, int, int]:
    """(Eq, Ek, Ev, H, dk, dv, Eo) from the weights."""
    eq, h, dk = np.shape(layer.weights["query_kernel"])
    ek = np.shape(layer.weights["key_kernel"])[0]
    ev, _, dv = np.shape(layer.weights["value_kernel"])
    eo = np.shape(layer.weights["output_kernel"])[-1]
    return int(eq), int(ek), int(ev), int(h), int(dk), int(dv), int(eo)


def check(layer: Layer) -> str | None:
    eq, _, _, h, dk, dv, eo = _sizes(layer)
    if h * dk != eq or dv != dk or eo != eq:
        return (f"nn.MultiheadAttention holds heads of embed_dim / num_heads for query, key and value and an output of "
                f"embed_dim; this layer has query width {eq}, {h} heads of key size {dk} and value size {dv}, output "
                f"{eo} (a Keras key_dim * heads != width): readable code for it is not written yet")  # fmt: skip
    return None


@EMITTERS.register("multi_head_attention", merge=True, takes=("plain",), masked=True, check=check)
def attention(layer: Layer, opts: dict, shapes: tuple, exprs: list[str], layout: Layout, masked: bool = False) -> _Piece:
    eq, ek, ev, h, dk, dv, eo = _sizes(layer)
    packed = ek == ev == eq
    state = convert.mha_to_torch(dict(layer.weights), packed=packed)

    def back(a):
        return convert.mha_from_torch(dict(a), h)

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
    extra = "" if packed else f", kdim={ek}, vdim={ev}"
    init = (f"nn.MultiheadAttention({eq}, {h}{extra}, bias={opts['use_bias']}, batch_first=True)  # q, k, v "
            f"{'packed in in_proj_weight' if packed else 'in q/k/v_proj_weight'}; heads of {dk}")
    return _Piece(init, lines, state, back, out, PLAIN)


__all__ = ["attention", "check"]
