"""nn.LSTM and nn.GRU (batch_first=True): one description layer per torch layer, a take_step where one is read.

Recurrences become one description layer per torch layer (num_layers > 1 is a stack; bidirectional=True one layer
with both directions), every one but the last returning its sequence. The last one's return_sequences is what the
pattern reading it says: `out` used whole is the sequence; a one-direction `out[:, -1]`, h[-1] and h.squeeze(0) are
the final state (return_sequences False); a bidirectional `out[:, -1]` is NOT its final states (the backward half is
the backward cell's first step): the sequence and a take_step(-1) layer; `torch.cat((h[-2], h[-1]), dim=1)` is a
bidirectional layer's final states (concat). h[-1] of a bidirectional h_n (the backward final state alone), c_n,
proj_size, an initial state computed in forward or one that differs between batch rows, and batch_first=False are
refused, with the reason; a given initial state a tensor the module holds (a buffer or parameter (L D, B, H), the same
in every row, or (L D, 1, H) expanded over the batch) is initial_state "weights"; bias=False is zero biases and the
inter-layer dropout is identity at inference. The weights become canonical arrays through impls/convert.py
(lstm_from_torch, gru_from_torch).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import convert
from ...layouts import PLAIN
from ...model.description import Layer
from .context import REGISTRY, Node, Step, _arg, _Ctx, _tensor_users, fetch, nn, torch

_SAME_STATE = ("expand", "contiguous")  # methods that hand a held state on unchanged but for the batch it spans


def feeds_a_state(ctx: _Ctx, node: Node) -> bool:
    """`node` is an .expand / .contiguous of a tensor the module holds read only as a recurrence's initial state (its
    converter reads it there; the walk passes it by)."""

    def held(n: Any) -> bool:  # n hands on a tensor the module holds
        return isinstance(n, Node) and (n.op == "get_attr" or n.op == "call_method" and n.target in _SAME_STATE
                                        and held(n.args[0]))  # fmt: skip

    def only_state(n: Node) -> bool:  # every user reads n as a recurrence's hx
        return all(u.op == "call_module" and isinstance(ctx.gm.get_submodule(u.target), (nn.GRU, nn.LSTM))
                   and u.args[0] is not n or u.op == "call_method" and u.target in _SAME_STATE and only_state(u)
                   for u in n.users)  # fmt: skip

    return node.op == "call_method" and node.target in _SAME_STATE and held(node) and only_state(node)


def _given_state(ctx: _Ctx, node: Node, lstm: bool, count: int, H: int) -> tuple[dict[str, np.ndarray], list[Node]]:
    """The recurrence's hx as {"h0", "c0": (L D, H)} and the nodes that read it: a tensor the module holds (a
    get_attr: buffer or parameter), maybe .expand(...) / .contiguous(), the same in every batch row. {} where none is
    given or it is all zero."""
    extra = sorted(set(node.kwargs) - {"hx"})
    if extra or len(node.args) > 2:
        raise ctx.refuse(node, f"it is called with {', '.join(extra) or 'more arguments'}: rnn(x) or rnn(x, hx) only")
    hx = node.args[1] if len(node.args) > 1 else node.kwargs.get("hx")
    if hx is None:
        return {}, []
    parts = list(hx) if isinstance(hx, (tuple, list)) else [hx]
    if len(parts) != (2 if lstm else 1):
        raise ctx.refuse(node, "its initial state is not " + ("(h_0, c_0)" if lstm else "one h_0 tensor"))
    out, nodes = {}, []
    for name, n in zip(("h0", "c0"), parts):
        while isinstance(n, Node) and n.op == "call_method" and n.target in _SAME_STATE:
            nodes.append(n)
            n = n.args[0]
        if not isinstance(n, Node) or n.op != "get_attr":
            raise ctx.refuse(node, f"its initial {name[0]}_0 is computed in forward ({getattr(n, 'name', n)!r}); the "
                             "description's given state is a tensor the module holds (a buffer or parameter), the "
                             "same in every batch row")  # fmt: skip
        nodes.append(n)
        obj = fetch(ctx.gm, n)
        a = obj.detach().cpu().numpy()
        if a.ndim != 3 or a.shape[0] != count or a.shape[2] != H:
            raise ctx.refuse(node, f"its initial {name[0]}_0 {n.target!r} has shape {a.shape}; ({count}, B or 1, {H}) expected")
        if np.any(a != a[:, :1]):
            raise ctx.refuse(node, f"its initial {name[0]}_0 {n.target!r} differs between the rows of the batch; the "
                             "description's given state is one (H,) per layer and direction, broadcast over the batch")  # fmt: skip
        out[name] = a[:, 0].astype(ctx.dtype)
        if not isinstance(obj, nn.Parameter):
            ctx.notes.append(f"{node.name}: its initial {name[0]}_0 is the buffer {n.target!r}, which torch never trains; "
                             "the description holds it as a weight (initial_state 'weights'), trained by its steps")  # fmt: skip
    if not any(np.any(a != 0) for a in out.values()):
        return {}, nodes
    return out, nodes


def _getitems(node: Node) -> dict:
    """{index: the getitem node} of a tuple-valued node (the recurrence's (out, h_n) or LSTM's (h_n, c_n))."""
    picks = {}
    for u in node.users:
        if u.op != "call_function" or u.target is not operator.getitem or not isinstance(u.args[1], int):
            return {None: u}
        picks[u.args[1] % 2] = u
    return picks


def _state_index(n: Node, count: int) -> int | None:
    """The row of h_n (count, B, H) that n picks: h[i] or h.squeeze(0) (count 1); None for anything else."""
    if n.op == "call_function" and n.target is operator.getitem and isinstance(n.args[1], int):
        return n.args[1] % count if -count <= n.args[1] < count else None
    if n.op == "call_method" and n.target == "squeeze" and _arg(n, 1, "dim", None) == 0 and count == 1:
        return 0
    return None


def _final_concat(ctx: _Ctx, h: Node, count: int) -> tuple[list, Node] | None:
    """torch.cat((h[-2], h[-1]), dim=1): the last layer's forward then backward final state; (the picks, the cat)."""
    users = _tensor_users(h)
    if len(users) != 2 or any(_state_index(u, count) is None for u in users):
        return None
    cats = {c for u in users for c in _tensor_users(u)}
    if len(cats) != 1:
        return None
    cat = next(iter(cats))
    if cat.op != "call_function" or cat.target is not torch.cat or not isinstance(cat.args[0], (tuple, list)):
        return None
    parts = list(cat.args[0])
    dim = _arg(cat, 1, "dim", 0)
    if len(parts) != 2 or dim not in (1, -1) or [_state_index(p, count) for p in parts] != [count - 2, count - 1]:
        return None
    return parts, cat


def _rnn_weights(ctx: _Ctx, m: Any, layer: int, lstm: bool) -> dict:
    """One layer's canonical weights of nn.LSTM / nn.GRU (both directions: `_rev` for torch's `_reverse`)."""
    out = {}
    for s, t in [("", f"l{layer}")] + ([("_rev", f"l{layer}_reverse")] if m.bidirectional else []):
        state = {f"{k}_{t}": ctx.array(getattr(m, f"{k}_{t}")) for k in ("weight_ih", "weight_hh")}
        G = state[f"weight_ih_{t}"].shape[0]
        for k in ("bias_ih", "bias_hh"):  # bias=False: zero biases
            state[f"{k}_{t}"] = ctx.array(getattr(m, f"{k}_{t}")) if m.bias else np.zeros(G, ctx.dtype)
        w = (convert.lstm_from_torch if lstm else convert.gru_from_torch)(state, suffix=t)
        out |= {"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h}
    return out


def _one_layer(m: Any, layer: int, seq: bool, states: dict | None = None) -> Callable:
    """Layer `layer` of the user's stacked recurrence alone: a one-layer copy of torch's own class holding that
    layer's weights, from its given initial states (`states`: {"h0", "c0": (D, H)}) where there are, returning the
    sequence or the final state(s) (forward, then backward, concatenated)."""
    lstm = isinstance(m, nn.LSTM)
    ref = getattr(m, f"weight_ih_l{layer}")
    one = type(m)(ref.shape[1], m.hidden_size, batch_first=True, bidirectional=m.bidirectional, bias=m.bias)
    one = one.to(ref.dtype).eval()
    with torch.no_grad():
        for sfx in ("", "_reverse") if m.bidirectional else ("",):
            for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if m.bias else ("weight_ih", "weight_hh"):
                getattr(one, f"{k}_l0{sfx}").copy_(getattr(m, f"{k}_l{layer}{sfx}"))

    def run(t: Any) -> Any:
        hx = [torch.from_numpy(np.ascontiguousarray(states[k])).to(t.dtype)[:, None].expand(-1, t.shape[0], -1).contiguous()
              for k in ("h0", "c0") if k in (states or {})]  # fmt: skip
        out, hn = one(t, (tuple(hx) if lstm else hx[0]) if hx else None)
        if seq:
            return out
        h = hn[0] if lstm else hn
        return torch.cat((h[0], h[1]), dim=1) if m.bidirectional else h[0]

    return run


@REGISTRY.register(nn.GRU, kinds=("gru", "take_step"))
@REGISTRY.register(nn.LSTM, kinds=("lstm", "take_step"))  # take_step: after a bidirectional out[:, -1]
def _recurrent(ctx: _Ctx, node: Node, m: Any) -> Step:
    """nn.LSTM / nn.GRU: one description layer per torch layer (both directions in one), the last one's
    return_sequences as the pattern that reads it decides: `out` whole, `out[:, -1]`, h_n's rows, or
    torch.cat((h[-2], h[-1]), dim=1) (a bidirectional layer's final states)."""
    lstm = isinstance(m, nn.LSTM)
    kind = "lstm" if lstm else "gru"
    if not m.batch_first:
        raise ctx.refuse(node, "batch_first=False: the module takes (T, B, I); the description's sequences are "
                               "batch first (B, T, I): build it with batch_first=True (the same weights)")  # fmt: skip
    if lstm and m.proj_size > 0:
        raise ctx.refuse(node, f"proj_size={m.proj_size}: a projected LSTM (h = W_hr h) is not in the description")
    L, D, H = int(m.num_layers), 2 if m.bidirectional else 1, int(m.hidden_size)
    given, state_nodes = _given_state(ctx, node, lstm, L * D, H)
    if len(ctx.shapes[node.args[0]]) != 3:
        raise ctx.refuse(node, f"its input {ctx.shapes[node.args[0]]} is not batched (B, T, I)")
    T = ctx.shapes[node.args[0]][1]
    picks = _getitems(node)
    if None in picks:
        raise ctx.refuse(node, f"its (output, h_n) tuple is used whole by {picks[None].name!r}; unpack it: out, h = rnn(x)")
    nodes = [*state_nodes, node, *picks.values()]
    hn = picks.get(1)
    if lstm and hn is not None:  # (h_n, c_n)
        sub = _getitems(hn)
        if None in sub:
            raise ctx.refuse(node, f"its (h_n, c_n) is used whole by {sub[None].name!r}; unpack it: out, (h, c) = lstm(x)")
        if 1 in sub and _tensor_users(sub[1]):
            raise ctx.refuse(node, "its cell state c_n is used; the description's LSTM gives the hidden state only")
        nodes += list(sub.values())
        hn = sub.get(0)
    used = [g for g in (picks.get(0), hn) if g is not None and _tensor_users(g)]
    if len(used) != 1:
        raise ctx.refuse(node, "both its output and h_n are used: a branch (a chain uses one of them)"
                         if used else "neither its output nor h_n is used")
    pick, after = used[0], _tensor_users(used[0])
    take_step = False
    if pick is picks.get(0):  # out (B, T, D H): whole, or out[:, -1]
        last = after[0] if len(after) == 1 else None
        at_end = last is not None and last.op == "call_function" and last.target is operator.getitem \
            and _is_last_step(last.args[1], T)  # fmt: skip
        seq = not at_end or D == 2
        take_step = at_end and D == 2  # a bidirectional out[:, -1] is not the final states: its backward half is
        out_node = last if at_end else pick  # the backward cell's first step
    else:  # h_n (L D, B, H)
        seq, count = False, L * D
        both = _final_concat(ctx, pick, count) if D == 2 else None
        if both is not None:
            nodes += both[0]
            out_node = both[1]
        else:
            rows = [_state_index(u, count) for u in after]
            if len(after) != 1 or rows[0] is None:
                hint = "torch.cat((h[-2], h[-1]), dim=1)" if D == 2 else "h[-1]"
                raise ctx.refuse(node, f"h_n ({count}, B, {H}) is used as {', '.join(u.name for u in after)}; the "
                                       f"chain's final state is {hint}")  # fmt: skip
            if D == 2:
                raise ctx.refuse(node, f"h[{rows[0]}] of a bidirectional h_n is one direction's final state alone "
                                       f"({'backward' if rows[0] % 2 else 'forward'}); the description's "
                                       "bidirectional layer gives both (torch.cat((h[-2], h[-1]), dim=1), or a merge)")  # fmt: skip
            if rows[0] != count - 1:
                raise ctx.refuse(node, f"h[{rows[0]}] is layer {rows[0]}'s final state, not the last layer's: a "
                                       "branch out of the stack")  # fmt: skip
            out_node = after[0]
    nodes = sorted(set(nodes) | {out_node}, key=ctx.order.__getitem__)
    nodes.remove(out_node)
    nodes.append(out_node)
    if L > 1 and m.dropout:
        ctx.notes.append(f"{node.name}: dropout={m.dropout} between its {L} layers is identity at inference (eval mode)")
    if m.bias is False:
        ctx.notes.append(f"{node.name}: bias=False imports as zero biases")
    base = ctx.name(node)
    layers, fns = [], []
    for j in range(L):
        last_layer = j == L - 1
        opts = {"units": H, "return_sequences": True if not last_layer else seq}
        if D == 2:
            opts["direction"] = "bidirectional"
        if not lstm:
            opts["variant"] = "reset_after"
        name = base if L == 1 else f"{base}.l{j}"
        weights = _rnn_weights(ctx, m, j, lstm)
        states = {k: v[j * D : j * D + D] for k, v in given.items()}
        if given:
            opts["initial_state"] = "weights"
            weights |= {k + s: v[d] for k, v in states.items() for d, s in enumerate(("", "_rev")[:D])}
        layers.append(Layer(kind, name, opts, weights))
        fns.append(_one_layer(m, j, opts["return_sequences"], states))
    if take_step:
        ctx.notes.append(f"{node.name}: out[:, -1] of a bidirectional layer is its sequence's last step (the backward "
                         "half is the backward cell's FIRST step, not its final state): a take_step(-1) layer")  # fmt: skip
        step_name = f"{base}_last_step"
        while step_name in ctx.names:
            step_name += "_"
        ctx.names.add(step_name)
        layers.append(Layer("take_step", step_name, {"index": -1}, {}))
        fns.append(lambda t: t[:, -1])
    if len(layers) == 1:
        return Step(layers[0], nodes, PLAIN)
    return Step(layers[-1], nodes, PLAIN, parts=list(zip(layers, fns, strict=True)))


def _is_last_step(index: Any, T: int) -> bool:
    full = slice(None, None, None)
    return isinstance(index, tuple) and len(index) in (2, 3) and index[0] == full and index[1] in (-1, T - 1) \
        and (len(index) == 2 or index[2] == full)  # fmt: skip

