"""nn.MultiheadAttention, nn.TransformerEncoderLayer and nn.TransformerEncoder (issue 25).

torch.fx keeps each of these modules whole (a leaf: torch.nn's own modules are), so each is one step of the walk:
- nn.MultiheadAttention called as self-attention, `self.attn(x, x, x)` (need_weights is irrelevant to the output),
  read at `[0]`: one multi_head_attention layer reading x twice (query, value); its weights through
  impls/convert/attention.py (the packed in_proj_weight in q, k, v order; torch's key bias dropped: it changes nothing).
- nn.TransformerEncoderLayer as the graph it is (dropout the identity in eval):
  norm_first=False: a = MHA(x); r1 = x + a; n1 = LayerNorm(r1); f = Linear2(act(Linear1(n1))); y = LayerNorm(n1 + f)
  norm_first=True:  n1 = LayerNorm(x); r1 = x + MHA(n1); y = r1 + Linear2(act(Linear1(LayerNorm(r1))))
- nn.TransformerEncoder: its layers in order, then its final norm where it has one.
batch_first=False modules read the time-major x.transpose(0, 1) of a batch-first sequence (the layout "tbf": no
layer; the transpose back ends it). A causal mask the module holds (a buffer: True or -inf above the diagonal, torch's
polarity; is_causal a hint beside it) passed as attn_mask / src_mask / mask is the description's causal option; a
key_padding_mask / src_key_padding_mask computed as ids == 0 is the embedding's mask_zero (padding.py).
Refused with the reason: a batch_first=False module given a batch-first tensor (the model's input is batch first)
or the other way round, another attention mask or one computed in forward, cross attention (query and key/value from two paths),
add_bias_kv / add_zero_attn, an activation other than relu (or gelu where the activation kind has it).
In eval torch may run its fused fast path; the arithmetic is the same, and only the module's own output is read from
it (the parts' outputs are recomputed from the module's own submodules, the slow path's order).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from ... import convert
from ...model.description import Layer
from ...model.layers.base import ACTIVATIONS
from . import padding
from .context import REGISTRY, F, Node, Step, _Ctx, fetch, nn


def _unique(ctx: _Ctx, name: str) -> str:
    while name in ctx.names:
        name += "_"
    ctx.names.add(name)
    return name


def _check_mha(ctx: _Ctx, node: Node, m: Any, where: str = "") -> None:
    at = f"{where}: " if where else ""
    if m.batch_first != (ctx.layout.kind == "plain"):
        held = "time-major (T, B, E)" if ctx.layout.kind == "tbf" else "batch first (B, T, E)"
        raise ctx.refuse(node, f"{at}batch_first={m.batch_first} but it is given a sequence held {held}: a "
                               "batch_first=False module reads x.transpose(0, 1) of the batch-first sequence (the "
                               "model's input is taken batch first)")  # fmt: skip
    if m.bias_k is not None or m.add_zero_attn:
        raise ctx.refuse(node, f"{at}add_bias_kv / add_zero_attn append a learned or zero key and value to every "
                               "sequence, which the description's attention does not hold")  # fmt: skip


def mha_layer(ctx: _Ctx, m: Any, name: str, src: str, causal: bool = False) -> Layer:
    """The multi_head_attention layer of nn.MultiheadAttention `m`, self-attention on the tensor `src`."""
    state = {k: ctx.array(v) for k, v in m.state_dict().items()}
    w = convert.mha_from_torch({**state, "in_proj_bias": state.get("in_proj_bias")}, int(m.num_heads))
    bias = m.in_proj_bias is not None
    opts = {"num_heads": int(m.num_heads), "key_dim": int(m.head_dim), "use_bias": bias, "causal": causal}
    return Layer("multi_head_attention", name, opts, w, (src, src))


def _causal(ctx: _Ctx, node: Node, mask: Any, steps: int, what: str) -> bool:
    """Whether the mask argument `mask` (None, or a tensor the module holds) is the causal one: torch's polarity, True
    (or -inf) above the diagonal where a query may not attend (nn.Transformer.generate_square_subsequent_mask's)."""
    if mask is None:
        return False
    if not isinstance(mask, Node) or mask.op != "get_attr":
        raise ctx.refuse(node, f"its {what} is computed in forward ({getattr(mask, 'name', mask)!r}); a causal mask the "
                               "module holds (a buffer) imports, as the description's causal option")  # fmt: skip
    t = fetch(ctx.gm, mask).detach().cpu().numpy()
    above = np.triu(np.ones((steps, steps), bool), 1)
    causal = t.shape == (steps, steps) and (
        (t.dtype == bool and np.array_equal(t, above)) or
        (t.dtype != bool and np.all(np.isneginf(t[above])) and np.all(t[~above] == 0)))  # fmt: skip
    if not causal:
        raise ctx.refuse(node, f"its {what} {mask.target!r} (shape {t.shape}, {t.dtype}) is not the causal mask (True or "
                               "-inf above the diagonal, where torch does not attend): other attention masks are not "
                               "imported")  # fmt: skip
    return True


def _self_attention_args(ctx: _Ctx, node: Node) -> bool:
    """query, key and value one tensor; the attn_mask a causal one or none (a key_padding_mask: padding.py).
    Returns causal."""
    args = list(node.args) + [node.kwargs.get(k) for k in ("query", "key", "value") if k in node.kwargs]
    if len(args) != 3 or len({id(a) for a in args}) != 1:
        raise ctx.refuse(node, "its query, key and value are not one tensor: the torch importer reads self-attention "
                               "(attn(x, x, x)); cross attention joins two paths")  # fmt: skip
    steps = ctx.shapes[args[0]][0 if ctx.layout.kind == "tbf" else 1]
    return _causal(ctx, node, node.kwargs.get("attn_mask"), steps, "attn_mask")


def _unused(n: Node) -> bool:
    """`out[1]` read and never used (torchvision's `x, _ = self.self_attention(...)`)."""
    return n.op == "call_function" and n.target is operator.getitem and n.args[1] == 1 and not n.users


def _picked(ctx: _Ctx, node: Node) -> Node:
    """The `[0]` of the (output, weights) tuple: the only use (an unused `[1]` beside it, as `x, _ = ...` reads)."""
    users = [u for u in node.users if not _unused(u)]
    if len(users) != 1 or users[0].op != "call_function" or users[0].target is not operator.getitem or users[0].args[1] != 0:
        raise ctx.refuse(node, "its (output, attention weights) tuple is used otherwise than [0]: the description's "
                               "attention gives its output only")  # fmt: skip
    return users[0]


@REGISTRY.register(nn.MultiheadAttention, kinds=("multi_head_attention",), time_major=True)
def _mha(ctx: _Ctx, node: Node, m: Any) -> Step:
    _check_mha(ctx, node, m)
    causal = _self_attention_args(ctx, node)
    pick = _picked(ctx, node)
    src = ctx.tensors[node.args[0]][0]
    layer = mha_layer(ctx, m, ctx.name(node), src, causal)
    if padding.key_padding(ctx, node, node.kwargs.get("key_padding_mask"), "key_padding_mask"):
        ctx.padded_layers.add(layer.name)
    ctx.notes.append(f"{node.target}: torch's key bias (in_proj_bias[E:2E]) is dropped: softmax ignores it exactly")
    return Step(layer, [node, *(u for u in node.users if _unused(u)), pick], ctx.layout)


def _activation(ctx: _Ctx, node: Node, layer: Any, where: str) -> str:
    """The feed-forward's activation: relu, or GELU in its own form (F.gelu and nn.GELU() erf, nn.GELU("tanh") the
    tanh approximation: never one for the other)."""
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    name = "gelu" if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none") else \
        "gelu_tanh" if isinstance(act, nn.GELU) and act.approximate == "tanh" else None  # fmt: skip
    if name is not None and name in ACTIVATIONS:
        return name
    raise ctx.refuse(node, f"{where}: activation {getattr(act, '__name__', type(act).__name__)} is not imported "
                           f"(the description's activations: {', '.join(ACTIVATIONS)})")  # fmt: skip


def _norm(ctx: _Ctx, m: Any, name: str, src: str) -> tuple[Layer, Any]:
    w = {"gamma": ctx.array(m.weight)} if m.weight is not None else {}
    if getattr(m, "bias", None) is not None:
        w["beta"] = ctx.array(m.bias)
    opts = {"epsilon": float(m.eps), "center": "beta" in w, "scale": "gamma" in w}
    return Layer("layer_norm", name, opts, w, (src,)), m


def _dense(ctx: _Ctx, m: Any, name: str, src: str, activation: str = "linear") -> Layer:
    w = {"kernel": convert.dense_from_torch(ctx.array(m.weight))}
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return Layer("dense", name, {"units": int(m.out_features), "activation": activation, "use_bias": m.bias is not None},
                 w, (src,))  # fmt: skip


def _feed_forward(ctx: _Ctx, e: Any, n: dict, src: str, act: str) -> tuple[list, Any]:
    """linear1 (relu fused as its activation=; a GELU an activation layer of its own, which every port writes), then
    linear2: (the parts, the function of their input giving each part's output)."""
    fused = act == "relu"
    parts = [(_dense(ctx, e.linear1, n["linear1"], src, act if fused else "linear"),
              (lambda t: e.activation(e.linear1(t))) if fused else e.linear1)]  # fmt: skip
    if not fused:
        parts.append((Layer("activation", n["activation"], {"activation": act}, {}, (n["linear1"],)), e.activation))
    parts.append((_dense(ctx, e.linear2, n["linear2"], parts[-1][0].name), e.linear2))

    def outputs(t):
        h = e.linear1(t)
        got = [e.activation(h)] if fused else [h, e.activation(h)]
        return [*got, e.linear2(got[-1])]

    return parts, outputs


def _alone_merge(*_: Any) -> Any:
    raise RuntimeError("a layer that reads several tensors is checked accumulated only")


def encoder_layer_parts(ctx: _Ctx, node: Node, e: Any, base: str, src: str, causal: bool = False) -> list:
    """[(Layer, torch tensor -> tensor: that layer alone, or None for one reading several), ...] and the function of
    the step's input giving every part's output, for TransformerEncoderLayer `e` reading the tensor `src`."""
    _check_mha(ctx, node, e.self_attn, f"{base}.self_attn")
    act = _activation(ctx, node, e, base)
    n = {k: _unique(ctx, f"{base}.{k}") for k in ("norm1", "self_attn", "residual1", "norm2", "linear1", "activation",
                                                  "linear2", "residual2")}  # fmt: skip

    steps = ctx.shapes[node.args[0]][0 if ctx.layout.kind == "tbf" else 1]
    mask = nn.Transformer.generate_square_subsequent_mask(steps).to(e.linear1.weight.dtype) if causal else None

    def attn(t, pad=None):
        return e.self_attn(t, t, t, need_weights=False, attn_mask=mask, key_padding_mask=pad)[0]

    parts: list = []
    if e.norm_first:
        parts.append(_norm(ctx, e.norm1, n["norm1"], src))
        parts.append((mha_layer(ctx, e.self_attn, n["self_attn"], n["norm1"], causal), _alone_merge))
        parts.append((Layer("add", n["residual1"], {}, {}, (src, n["self_attn"])), _alone_merge))
        parts.append(_norm(ctx, e.norm2, n["norm2"], n["residual1"]))
        ff, ff_outputs = _feed_forward(ctx, e, n, n["norm2"], act)
        parts += ff
        parts.append((Layer("add", n["residual2"], {}, {}, (n["residual1"], n["linear2"])), _alone_merge))

        def outputs(x, pad=None):
            a = e.norm1(x)
            b = attn(a, pad)
            r1 = x + b
            c = e.norm2(r1)
            f = ff_outputs(c)
            return [a, b, r1, c, *f, r1 + f[-1]]
    else:
        parts.append((mha_layer(ctx, e.self_attn, n["self_attn"], src, causal), _alone_merge))
        parts.append((Layer("add", n["residual1"], {}, {}, (src, n["self_attn"])), _alone_merge))
        parts.append(_norm(ctx, e.norm1, n["norm1"], n["residual1"]))
        ff, ff_outputs = _feed_forward(ctx, e, n, n["norm1"], act)
        parts += ff
        parts.append((Layer("add", n["residual2"], {}, {}, (n["norm1"], n["linear2"])), _alone_merge))
        parts.append(_norm(ctx, e.norm2, n["norm2"], n["residual2"]))

        def outputs(x, pad=None):
            b = attn(x, pad)
            r1 = x + b
            a = e.norm1(r1)
            f = ff_outputs(a)
            r2 = a + f[-1]
            return [b, r1, a, *f, r2, e.norm2(r2)]
    return parts, outputs


def _encoder_causal(ctx: _Ctx, node: Node, mask_name: str) -> bool:
    """An encoder's (src_)mask: the causal one (is_causal a hint beside it) or none (its src_key_padding_mask:
    padding.py)."""
    if len(node.args) > 2:
        raise ctx.refuse(node, "it is given src_key_padding_mask by position: pass it by name")
    mask = node.args[1] if len(node.args) > 1 else node.kwargs.get(mask_name)
    steps = ctx.shapes[node.args[0]][0 if ctx.layout.kind == "tbf" else 1]
    if mask is None and node.kwargs.get("is_causal"):
        raise ctx.refuse(node, "is_causal=True without its mask: torch takes it as a hint beside the causal mask")
    return _causal(ctx, node, mask, steps, mask_name)


def _padding(ctx: _Ctx, node: Node, parts: list) -> list | None:
    """The src_key_padding_mask node an encoder (layer) is given, checked (padding.py), its attentions marked padded."""
    mask = node.kwargs.get("src_key_padding_mask")
    if not padding.key_padding(ctx, node, mask, "src_key_padding_mask"):
        return None
    ctx.padded_layers.update(la.name for la, _ in parts if la.kind == "multi_head_attention")
    return [mask]


@REGISTRY.register(nn.TransformerEncoderLayer, kinds=("multi_head_attention", "add", "layer_norm", "dense"),
                   time_major=True)
def _encoder_layer(ctx: _Ctx, node: Node, e: Any) -> Step:
    causal = _encoder_causal(ctx, node, "src_mask")
    parts, outputs = encoder_layer_parts(ctx, node, e, _unique(ctx, str(node.target)), ctx.tensors[node.args[0]][0],
                                         causal)  # fmt: skip
    pad = _padding(ctx, node, parts)
    ctx.notes.append(f"{node.target}: a TransformerEncoderLayer (norm_first={e.norm_first}) imported as its graph; "
                     "dropout is the identity in eval; torch's key bias dropped")  # fmt: skip
    return Step(None, [node], ctx.layout, parts=parts, part_outputs=outputs, masks=pad)


@REGISTRY.register(nn.TransformerEncoder, kinds=("multi_head_attention", "add", "layer_norm", "dense"), time_major=True)
def _encoder(ctx: _Ctx, node: Node, enc: Any) -> Step:
    causal = _encoder_causal(ctx, node, "mask")
    src = ctx.tensors[node.args[0]][0]
    parts, fns = [], []
    base = _unique(ctx, str(node.target))
    for i, e in enumerate(enc.layers):
        p, f = encoder_layer_parts(ctx, node, e, f"{base}.layers.{i}", src, causal)
        parts += p
        fns.append(f)
        src = p[-1][0].name
    if enc.norm is not None:
        parts.append(_norm(ctx, enc.norm, _unique(ctx, f"{base}.norm"), src))

    pad = _padding(ctx, node, parts)

    def outputs(x, mask=None):
        out = []
        for f in fns:
            got = f(x, mask)
            out += got
            x = got[-1]
        return out + ([enc.norm(x)] if enc.norm is not None else [])

    ctx.notes.append(f"{node.target}: a TransformerEncoder of {len(enc.layers)} layers imported as their graph; "
                     "dropout is the identity in eval; torch's key biases dropped")  # fmt: skip
    return Step(None, [node], ctx.layout, parts=parts, part_outputs=outputs, masks=pad)


__all__ = ["encoder_layer_parts", "mha_layer"]
