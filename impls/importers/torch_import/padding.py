"""Padding masks a torch model computes from its ids (issue 25): `pad = ids == 0` passed to an attention, and the mean
over each row's valid steps.

    pad = ids == 0                                              # True at padding: torch's "ignore"
    h = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
    keep = (~pad).unsqueeze(-1).float()                         # 1 at the valid steps
    y = self.fc((h * keep).sum(1) / keep.sum(1))                # or h.masked_fill(pad[..., None], 0).sum(1) / ...

The nodes computed from the ids alone through a comparison (ids == 0, ids.ne(0), then ~, unsqueeze, float, sum, ...)
are the mask's; they are no layer. What each holds is not read off its syntax but computed: each mask node is run on
a probe batch of post-padded ids and compared with (ids == 0), its negation, their (B, T, 1) forms and the lengths.
So the polarity is checked, not assumed: torch's key_padding_mask means "ignore" (True at padded steps; a float mask
of -inf there is the same); the description's mask (Keras' and the embedding's mask_zero) means "attend". A mask
True at the valid steps, a float 0/1 mask (torch ADDS a float mask to the scores, pytorch#90534: 1.0 is no mask), or a
mask not computed from ids == 0 (another padding id, a second input) is refused, naming the node.

The description: the embedding gets mask_zero=True (its mask then reaches every layer that carries it on), each
attention given the mask masks its keys, and the masked mean is a global_avg_pool with masked=True. Checked after
the walk: the attentions the mask reaches in the description are exactly those torch gives it, and nothing reduces
over the steps whose outputs the sources leave undefined (Model.unreadable_padding: `h.mean(dim=1)` after a padded
attention reads the padded steps, which torch's nested-tensor fast path sets to zeros and its slow path does not).
A row with no valid step is refused at the input (torch's attention gives NaN there, Keras uniform weights).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import numpy as np

from ...model.description import INPUT, Model
from .context import Node, Step, _Ctx, _is_shape_node, _step, _tensor_args, fetch, fx, torch

_ROOTS = (operator.eq, operator.ne, torch.eq, torch.ne, "eq", "ne")


def probe_ids(shape: tuple) -> np.ndarray:
    """Post-padded ids (B, T) in [1, 8), padded with 0: row b has (T - 1 - b) mod (T + 1) valid steps."""
    b, t = shape
    lengths = np.array([(t - 1 - i) % (t + 1) for i in range(b)])
    ids = 1 + (np.arange(b * t).reshape(b, t) * 5) % 7
    return np.where(np.arange(t)[None, :] < lengths[:, None], ids, 0)


def find_masks(ctx: _Ctx, x: Node) -> dict[Node, str]:
    """{mask node: what it holds on the probe: "pad", "keep", "pad3", "keep3" (the (B, T, 1) forms, any dtype),
    "count" ((B, 1) valid steps), "added" (a float 0/1 mask), or "other"}. Empty for a float input."""
    if len(ctx.shapes[x]) != 2:
        return {}
    nodes, masks = list(ctx.gm.graph.nodes), {}
    for n in nodes:
        if n.op not in ("call_function", "call_method") or _is_shape_node(n):
            continue
        args = [a for a in _tensor_args(n) if a.op != "get_attr"]
        if not args:
            continue
        root = n.target in _ROOTS and args == [x]
        if root or (x not in args and all(a in masks for a in args)):
            masks[n] = ""
    if not masks:
        return {}
    ids = probe_ids(ctx.shapes[x])
    env: dict = {x: torch.from_numpy(ids)}

    def value(a: Any) -> Any:
        if isinstance(a, Node) and a not in env and a.op == "get_attr":
            env[a] = fetch(ctx.gm, a)
        elif isinstance(a, Node) and a not in env:
            args, kwargs = fx.node.map_arg(a.args, value), fx.node.map_arg(a.kwargs, value)
            env[a] = a.target(*args, **kwargs) if a.op == "call_function" else getattr(args[0], a.target)(*args[1:], **kwargs)
        return env[a] if isinstance(a, Node) else a

    pad = ids == 0
    for n in masks:
        masks[n] = _what(value(n), pad)
    return masks


def _what(t: Any, pad: np.ndarray) -> str:
    v = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    b, steps = pad.shape
    if v.shape == (b, steps):
        if v.dtype == bool:
            return "pad" if np.array_equal(v, pad) else "keep" if np.array_equal(v, ~pad) else "other"
        if np.array_equal(np.isneginf(v), pad) and not np.any(v[~pad]):
            return "pad"  # a float mask of -inf at padded steps: torch adds it, which masks them
        if np.array_equal(v, pad.astype(v.dtype)) or np.array_equal(v, (~pad).astype(v.dtype)):
            return "added"
        return "other"
    if v.shape == (b, steps, 1):
        return "pad3" if np.array_equal(v[..., 0] != 0, pad) and np.all(v[pad] == 1) else \
            "keep3" if np.array_equal(v[..., 0] != 0, ~pad) and np.all(v[~pad] == 1) else "other"  # fmt: skip
    if v.shape == (b, 1) and np.array_equal(v[:, 0], (~pad).sum(axis=1)):
        return "count"
    return "other"


def key_padding(ctx: _Ctx, node: Node, mask: Any, what: str) -> bool:
    """Whether the attention `node` is given a padding mask (`mask`: its key_padding_mask / src_key_padding_mask
    argument), checked to be ids == 0 in torch's polarity; the attention then counts as padded."""
    if mask is None:
        return False
    why = {"keep": "it is True at the valid steps, but torch's key_padding_mask means ignore (True = padded): torch "
                   "would attend the padding only; pass ids == 0",
           "added": "it is a float 0/1 mask, which torch adds to the scores (pytorch#90534): 1.0 masks nothing; pass "
                    "the bool mask ids == 0 (True = padded)"}  # fmt: skip
    kind = ctx.masks.get(mask) if isinstance(mask, Node) else None
    if kind != "pad":
        reason = why.get(kind or "", "it is not computed from the ids as ids == 0 (a buffer, a second input, another "
                                     "padding id): the description's padding mask is id 0 of the embedding's ids")  # fmt: skip
        raise ctx.refuse(node, f"its {what} {getattr(mask, 'name', mask)!r}: {reason}")
    ctx.padded.add(node)
    return True


def _only_user(n: Node) -> Node | None:
    users = list(n.users)
    return users[0] if len(users) == 1 else None


def masked_mean(ctx: _Ctx, node: Node) -> Step:
    """`(h * keep).sum(1) / keep.sum(1)` or `h.masked_fill(pad3, 0).sum(1) / count`: one global_avg_pool, masked."""
    args = list(node.args)
    mask = next((a for a in args if isinstance(a, Node) and a in ctx.masks), None)
    ok = (node.target in (operator.mul, torch.mul, "mul") and ctx.masks.get(mask) == "keep3") or \
        (node.target in ("masked_fill", torch.masked_fill) and ctx.masks.get(mask) == "pad3" and args[2:] in ([0], [0.0]))  # fmt: skip
    total = _only_user(node)
    ok = ok and total is not None and total.target in ("sum", torch.sum) and (list(total.args[1:]) or
                                                                            [total.kwargs.get("dim")]) in ([1], [(1,)]) and not total.kwargs.get("keepdim")  # fmt: skip
    div = _only_user(total) if ok else None
    if not ok or div is None or div.target not in (operator.truediv, torch.div, "div") or div.args[0] is not total \
            or ctx.masks.get(div.args[1]) != "count" or div.kwargs:  # fmt: skip
        raise ctx.refuse(node, "it reads the padding mask otherwise than as the mean over each row's valid steps, "
                               "(h * keep).sum(1) / keep.sum(1) with keep 1 at the valid steps (B, T, 1), or "
                               "h.masked_fill(pad[..., None], 0).sum(1) / count")  # fmt: skip
    if ctx.layout.kind != "plain" or len(ctx.shapes[node]) != 3:
        raise ctx.refuse(node, "the masked mean reads a (B, T, F) sequence held batch first only")
    ctx.padded.add(node)
    return _step(ctx, div, "global_avg_pool", {"masked": True}, nodes=[node, total, div])


def finish(ctx: _Ctx, model: Model) -> Model:
    """The embedding's mask_zero where torch's model reads a padding mask; then the checks the module docstring
    names. Raises UnsupportedLayer naming the layer."""
    if not ctx.padded:
        return model
    first = model.layers[0]
    if first.kind != "embedding" or model.sources(0) != (INPUT,):
        raise ctx.refuse(next(iter(ctx.padded)), "a padding mask from the ids needs an nn.Embedding reading them first")
    model = model.replace_layer(0, dataclasses.replace(first, options={**first.options, "mask_zero": True}))
    ctx.notes.append(f"{first.name}: the padding mask ids == 0 the module computes is the embedding's mask_zero "
                     "(torch's key_padding_mask True = ignore; the description's mask True = attend)")  # fmt: skip
    sources = model.mask_sources()
    for i, la in enumerate(model.layers):
        if la.kind == "multi_head_attention" and (la.name in ctx.padded_layers) != (sources[i] is not None):
            how = "torch gives it no key_padding_mask, but the padding mask reaches it in the description" \
                if sources[i] is not None else "torch gives it the padding mask, which does not reach it in the description"  # fmt: skip
            raise _refused(ctx, f"{la.label(i)}: {how}; import a model that masks every attention the padded ids reach")
        if la.kind == "global_avg_pool" and la.options.get("masked") and sources[i] is None:
            raise _refused(ctx, f"{la.label(i)}: the masked mean's mask does not reach it in the description")
    bad = model.unreadable_padding()
    if bad is not None:
        la = model.layers[bad]
        raise _refused(ctx, f"{la.label(bad)} ({la.kind}) reads every step of a padded sequence after an attention, "
                            "whose padded steps torch leaves undefined (zeros on the nested-tensor fast path in eval, "
                            "the attention over the valid keys otherwise): average over the valid steps, "
                            "(h * keep).sum(1) / keep.sum(1)")  # fmt: skip
    return model


def _refused(ctx: _Ctx, reason: str) -> Exception:
    from .. import UnsupportedLayer

    return UnsupportedLayer(f"{ctx.where}: {reason}")


__all__ = ["find_masks", "finish", "key_padding", "masked_mean", "probe_ids"]
