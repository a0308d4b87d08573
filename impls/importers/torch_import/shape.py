"""The layers that move values without computing on them: nn.ZeroPad2d, the flattens (nn.Flatten, torch.flatten,
x.view / x.reshape to (B, -1)), the other reshapes, x.permute / x.transpose; and the merges that join paths: x + y /
torch.add (add, registered in elementwise.py beside x + 3) and torch.cat(dim=d) (concatenate on the description's
axis of torch's dim d).

A flatten of an NCHW map holds its features in torch's (c, h, w) order (Layout 'chw'; the next Linear reads its rows
back). Reshapes are those of a tensor torch holds as the description does. A permute is no layer where the result is
the same tensor in another layout (x.permute(0, 2, 3, 1) of an NCHW map, x.permute(0, 2, 1) of a (B, T, F) sequence
that a Conv1d then reads); else a permute layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...layouts import PLAIN, Layout
from ...model.description import Layer
from . import slicing
from . import tokens
from .context import REGISTRY, F, Node, Step, _arg, _Ctx, _image_input, _step, held_expand, nn, torch


@REGISTRY.register(nn.ZeroPad2d, kinds=("zero_pad2d", "crop2d"))
def _zero_pad(ctx: _Ctx, node: Node, m: Any) -> Step:
    """nn.ZeroPad2d: zeros around H and W (zero_pad2d); negative pads crop (crop2d), as torch computes them."""
    _image_input(ctx, node)
    l, r, t, b = (int(p) for p in m.padding)  # F.pad's order (left, right, top, bottom)
    if max(l, r, t, b) <= 0 and min(l, r, t, b) < 0:
        return _step(ctx, node, "crop2d", {"cropping": [[-t, -b], [-l, -r]]}, layout=Layout("nchw"))
    if min(l, r, t, b) < 0:
        raise ctx.refuse(node, f"padding {m.padding!r} both pads and crops; pad or crop (zero_pad2d, crop2d) in two steps")
    return _step(ctx, node, "zero_pad2d", {"padding": [[t, b], [l, r]]}, layout=Layout("nchw"))


@REGISTRY.register(F.pad, kinds=("zero_pad2d", "crop2d"))
def _pad_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    """F.pad(x, (left, right, top, bottom)) of an NCHW map with zeros (mode 'constant', value 0 or None)."""
    pads, mode, value = _arg(node, 1, "pad", ()), _arg(node, 2, "mode", "constant"), _arg(node, 3, "value", None)
    if mode != "constant" or value not in (None, 0, 0.0) or len(pads) not in (2, 4):
        raise ctx.refuse(node, f"F.pad with pad={pads!r}, mode={mode!r}, value={value!r}: zeros on H and W only "
                               "(mode 'constant', value 0, 2 or 4 pads)")  # fmt: skip
    return _zero_pad(ctx, node, nn.ZeroPad2d((*pads, 0, 0) if len(pads) == 2 else tuple(pads)))


def _flatten_step(ctx: _Ctx, node: Node) -> Step:
    shape = ctx.shapes[node.args[0]]
    if len(shape) < 2:
        raise ctx.refuse(node, f"it flattens {shape}, which has no batch axis")
    if ctx.layout.kind == "nchw":
        _, c, h, w = shape
        ctx.notes.append(f"{node.name}: torch flattens the (B, {c}, {h}, {w}) map in (c, h, w) order; the next Linear's "
                         "rows are read back in the description's (h, w, c) order")  # fmt: skip
        return _step(ctx, node, "flatten", layout=Layout("chw", (h, w, c)))
    if ctx.layout.kind == "ncw":
        _, c, length = shape
        ctx.notes.append(f"{node.name}: torch flattens the (B, {c}, {length}) map in (c, l) order; the next Linear's "
                         "rows are read back in the description's (l, c) order")  # fmt: skip
        return _step(ctx, node, "flatten", layout=Layout("chw", (1, length, c)))
    return _step(ctx, node, "flatten", layout=PLAIN if ctx.layout.kind != "chw" else ctx.layout)


@REGISTRY.register(nn.Flatten, kinds=("flatten",))
def _flatten_module(ctx: _Ctx, node: Node, m: Any) -> Step:
    rank = len(ctx.shapes[node.args[0]])
    if m.start_dim != 1 or m.end_dim not in (-1, rank - 1):
        raise ctx.refuse(node, f"start_dim={m.start_dim}, end_dim={m.end_dim}; a flatten keeps the batch: (B, -1)")
    return _flatten_step(ctx, node)


@REGISTRY.register(torch.flatten, "flatten", kinds=("flatten",))
def _flatten_call(ctx: _Ctx, node: Node, f: Any) -> Step:
    start, end = _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
    if start != 1 or end not in (-1, len(ctx.shapes[node.args[0]]) - 1):
        raise ctx.refuse(node, f"start_dim={start}, end_dim={end}; a flatten keeps the batch: flatten(x, 1)")
    return _flatten_step(ctx, node)


@REGISTRY.register("view", "reshape", torch.reshape, kinds=("flatten", "reshape", "channel_shuffle"))
def _reshape(ctx: _Ctx, node: Node, f: Any) -> Step:
    """A reshape to (B, -1) is a flatten (any layout); any other keeps the batch and reads row-major memory, which is
    the description's reshape where torch holds the tensor as the description does (a sequence, a vector, a
    channels-last map); a channels-first map's (c, h, w) memory is not the description's (h, w, c), and is refused."""
    before, after = ctx.shapes[node.args[0]], ctx.shapes[node]
    if len(before) < 2 or after[0] != before[0]:
        raise ctx.refuse(node, f"it reshapes {before} to {after}; the description's reshape keeps the batch axis")
    if len(after) == 2:
        return _flatten_step(ctx, node)
    shuffle = slicing.shuffle_step(ctx, node)  # ShuffleNet's view to 5-D, transpose(1, 2), view back
    if shuffle is not None:
        return shuffle
    if ctx.layout.kind == "nchw" and len(before) == 4 and tuple(after) == (before[0], before[1], before[2] * before[3]):
        # (B, C, H, W) -> (B, C, H * W): H and W joined in their order, each channel apart (a ViT's patches): the
        # description's (B, H * W, C), which torch holds channels-first (ncw); x.permute(0, 2, 1) then is no layer
        return _step(ctx, node, "reshape", {"target_shape": [int(before[2] * before[3]), int(before[1])]},
                     layout=Layout("ncw"))
    if ctx.layout.kind != "plain":
        raise ctx.refuse(node, f"it reshapes the {ctx.layout.kind.upper()} map {before} to {after}: torch reshapes its "
                               "channels-first memory, the description its channels-last one; permute it channels-last "
                               "first (x.permute(0, 2, 3, 1) / x.permute(0, 2, 1))")  # fmt: skip
    return _step(ctx, node, "reshape", {"target_shape": [int(d) for d in after[1:]]}, layout=PLAIN)


_CANON = {"nchw": (0, 2, 3, 1), "ncw": (0, 2, 1)}
"""torch axis order -> the description's: canonical = torch.permute(_CANON[layout])."""


def _layouts_for(rank: int) -> list[Layout]:
    return {4: [Layout("nchw"), PLAIN], 3: [Layout("ncw"), PLAIN]}.get(rank, [PLAIN])


@REGISTRY.register("permute", torch.permute, "transpose", torch.transpose, kinds=("permute",))
def _permute(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x.permute(...) / x.transpose(a, b): where the permuted tensor is the same description tensor held in another
    layout (x.permute(0, 2, 3, 1) of an NCHW map is its channels-last form; x.permute(0, 2, 1) turns a (B, T, F)
    sequence into the (B, C, L) map a Conv1d reads) it is no layer; otherwise a permute layer on the description's
    axes. The batch axis stays."""
    rank = len(ctx.shapes[node.args[0]])
    if node.target in ("transpose", torch.transpose):
        a, b = (int(_arg(node, 1, "dim0", 0)) % rank, int(_arg(node, 2, "dim1", 1)) % rank)
        perm = list(range(rank))
        perm[a], perm[b] = perm[b], perm[a]
    else:
        dims = node.args[1:] if node.target == "permute" else (_arg(node, 1, "dims", ()),)
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        perm = [int(d) % rank for d in dims]
    if rank == 3 and perm == [1, 0, 2] and ctx.layout.kind in ("plain", "tbf"):  # batch first <-> time major
        return Step(None, [node], Layout("tbf") if ctx.layout.kind == "plain" else PLAIN)
    if sorted(perm) != list(range(rank)) or perm[0] != 0:
        raise ctx.refuse(node, f"it permutes the axes {perm}, moving the batch axis; the description keeps it first")
    have = _CANON.get(ctx.layout.kind, tuple(range(rank)))
    # the result r = t.permute(perm); t = canonical.permute(inverse(have)); so r holds canonical axes inv_have[perm[k]]
    inv_have = list(np.argsort(have))
    held = [int(inv_have[p]) for p in perm]  # torch axis k of the result is canonical axis held[k]
    for lay in _layouts_for(rank):
        want = _CANON.get(lay.kind, tuple(range(rank)))
        if [held[w] for w in want] == list(range(rank)):  # the result in `lay` is the same canonical tensor
            return Step(None, [node], lay)
    out = PLAIN if rank != 4 else Layout("nchw")
    want = _CANON.get(out.kind, tuple(range(rank)))
    dims = [held[w] for w in want]  # canonical' axis k = canonical axis dims[k]
    return _step(ctx, node, "permute", {"dims": [int(d) for d in dims[1:]]}, layout=out)

# --------------------------------------------------------------------------- the merges: layers that join paths


def _joined(ctx: _Ctx, node: Node, parts: list) -> Layout:
    """How torch holds the tensors a merge joins: each one a layer's output (or the input), all in one layout."""
    for a in parts:
        if a not in ctx.tensors:
            raise ctx.refuse(node, f"it reads {a.name!r}, which is no layer's output here")
    layouts = [ctx.tensors[a][1] for a in parts]
    if any(lay != layouts[0] for lay in layouts):
        raise ctx.refuse(node, f"it joins tensors torch holds in different layouts ({[lay.kind for lay in layouts]}): "
                               "the description's channels-last inputs would not line up the same way")  # fmt: skip
    return layouts[0]


def _add(ctx: _Ctx, node: Node, f: Any) -> Step:
    """x + y / torch.add(x, y) / x.add(y) -> add: the plain sum of one shape. Registered by elementwise.py, which
    reads a tensor plus a constant (x + 3) as a rescale and hands the sum of two paths here."""
    parts = list(node.args[:2])
    if len(node.args) > 2 or set(node.kwargs) - {"alpha"} or node.kwargs.get("alpha", 1) != 1:
        raise ctx.refuse(node, "an add with alpha= or out=: the description's add is the plain sum")
    if not all(isinstance(a, Node) for a in parts):
        raise ctx.refuse(node, "it adds a constant to a tensor; the description's add sums layers' outputs")
    layout = _joined(ctx, node, parts)
    shapes = [ctx.shapes[a] for a in parts]
    if len(set(shapes)) != 1:
        raise ctx.refuse(node, f"it adds {shapes} by broadcasting; the description's add takes one shape")
    return Step(Layer("add", ctx.name(node), {}, {}), [node], layout, joined=parts)


@REGISTRY.register(torch.cat, torch.concat, kinds=("concatenate", "class_token"), joins=True, alone=True)
def _cat(ctx: _Ctx, node: Node, f: Any) -> Step:
    """torch.cat([...], dim) -> concatenate on the canonical axis of that dim; of a list holding one tensor (densenet's
    torch.cat([x], 1)), no layer: that tensor."""
    seq = _arg(node, 0, "tensors", None)
    if not isinstance(seq, (list, tuple)) or not all(isinstance(a, Node) for a in seq):
        raise ctx.refuse(node, "torch.cat of something other than a list of tensors")
    parts = list(seq)
    if any(held_expand(a) for a in parts):
        return tokens.class_token(ctx, node, parts)
    layout = _joined(ctx, node, parts)
    if len(parts) == 1:
        return Step(None, [node], layout, joined=parts)
    rank = len(ctx.shapes[parts[0]])
    dim = _arg(node, 1, "dim", 0) % rank
    if dim == 0:
        raise ctx.refuse(node, "torch.cat on dim 0, the batch; the description concatenates features")
    if layout.kind == "chw":
        raise ctx.refuse(node, "torch.cat of flattened channels-first maps: their (c, h, w) features concatenated "
                               "are not the description's (h, w, c) ones concatenated")  # fmt: skip
    axis = {"nchw": {1: -1, 2: 1, 3: 2}, "ncw": {1: -1, 2: 1}}.get(layout.kind, {}).get(dim, dim)
    if axis == rank - 1:
        axis = -1
    return Step(Layer("concatenate", ctx.name(node), {"axis": axis}, {}), [node], layout, joined=parts)
