"""The torch port's code generator: a model description -> the source of an `nn.Module` and its state dict.

    code = generate(model, native_layout=False)
    code.source                   # model.py: imports only torch (and pathlib), one attribute per layer
    code.state                    # {"conv1.weight": array in torch's layout, ...}, what weights.pt holds
    code.back(layer, arrays)      # torch-layout arrays of one layer (weights or gradients) -> canonical ones

Every weight-layout fact comes from impls/convert.py: gate order and transposes (gru_to_torch, lstm_to_torch; one
nn.LSTM / nn.GRU per description layer, bidirectional as torch's `_reverse` weights), OIHW kernels
(hwio_to_oihw), depthwise as groups = C (depthwise_to_grouped), Linear's (out, in) (dense_to_torch), torch's NCHW
flatten order (flatten_rows_nhwc_to_nchw on the Linear after a flatten of a 4-D map) and F.pad's order
(pads_to_torch). Inside the module images are NCHW; `Layout` says what the port's boundary takes and returns.
Padded sequences: the layer that makes the mask (an embedding with mask_zero, a masking layer) computes `lengths`
(refusing a mask that is not post-padded, and an embedding an id outside its table, by name); a recurrent layer
the mask reaches packs the rows (pack_padded_sequence, enforce_sorted=False) and pads them back with zeros.
Nothing here imports torch: the source is text, the state NumPy.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import convert
from ..contract import spec
from ..contract.spec import GRUWeights, LSTMWeights
from ..layouts import PLAIN, Layout
from ..model.description import INPUT, Layer, Model, ModelError
from ..model.layers import conv1d as conv1d_layer
from ..model.layers import spec_of
from ..model.layers.conv2d import geometry_kwargs
from ..model.layers.pool2d import pool_kwargs

DTYPES = ("float32", "float64")
_MODULE_ATTRS = frozenset({"forward", "training", "eval", "train", "load", "state_dict", "parameters", "modules",
                           "children", "to", "double", "float", "half", "cuda", "cpu", "type", "apply", "zero_grad",
                           "register_buffer", "register_parameter", "add_module", "extra_repr", "dump_patches",
                           "call_super_init", "T_destination"})  # fmt: skip




@dataclass
class Code:
    """What `generate` wrote: the module's source, its state dict (torch layout), and per layer how to read
    torch-layout arrays back as canonical ones. `inputs` / `outputs`: the layout of the port's boundary."""

    source: str
    class_name: str
    dtype: str
    state: dict[str, np.ndarray]
    attrs: dict[str, str]  # layer name -> attribute
    inputs: Layout
    outputs: Layout
    backs: dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]] = field(default_factory=dict)

    def back(self, layer: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{state key: torch-layout array} (weights or their gradients) of `layer` -> {canonical weight name: array}."""
        prefix = self.attrs[layer] + "."
        return self.backs[layer]({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


@dataclass
class _Piece:
    init: str | None  # the attribute's constructor (None: the layer is a line of forward, no attribute)
    lines: list[str]  # forward lines, `{a}` for the attribute
    state: dict[str, np.ndarray]
    back: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    shape: tuple  # the output's torch shape, B for the batch
    layout: Layout
    uses_f: bool = False
    helpers: tuple[str, ...] = ()  # module-level helper functions the lines call (HELPERS' keys)


def attribute_names(model: Model) -> dict[str, str]:
    """Layer name -> a Python identifier for its attribute: non-word characters become _, a leading digit, a keyword
    or an nn.Module member gets a prefix or suffix, repeats get _2, _3 ..."""
    out, seen = {}, set()
    for layer in model.layers:
        a = re.sub(r"\W", "_", layer.name) or "layer"
        if a[0].isdigit():
            a = f"layer_{a}"
        if keyword.iskeyword(a) or a in _MODULE_ATTRS or a.startswith("_"):
            a = f"{a.strip('_') or 'layer'}_layer"
        base, n = a, 2
        while a in seen:
            a, n = f"{base}_{n}", n + 1
        seen.add(a)
        out[layer.name] = a
    return out


def class_name(model: Model) -> str:
    words = [w for w in re.split(r"\W|_", model.name) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return f"Model{name}" if name[0].isdigit() or keyword.iskeyword(name) else name


def _shape(s) -> str:
    return "(" + ", ".join(str(d) for d in s) + ")"


def _pair(p) -> str:
    return f"({p[0]}, {p[1]})"


def _act(name: str, expr: str, rank: int) -> str:
    """`expr` through the layer's activation= ; softmax on the canonical last axis (channels: dim 1 in NCHW, and in
    NCW where `rank` is given as 4: channels first)."""
    if name == "linear":
        return expr
    if name == "softmax":
        return f"torch.softmax({expr}, dim={1 if rank == 4 else -1})"
    return f"torch.{name}({expr})"


def _act_comment(name: str, rank: int) -> str:
    return ", softmax over channels" if name == "softmax" and rank == 4 else ""


def _tshape(canonical: tuple, layout: Layout) -> tuple:
    """A canonical shape (batch first) as torch holds it, with B for the batch."""
    if layout.kind == "nchw":
        _, h, w, c = canonical
        return ("B", c, h, w)
    if layout.kind == "ncw":
        _, length, c = canonical
        return ("B", c, length)
    return ("B", *canonical[1:])


# --------------------------------------------------------------------------- one emitter per kind


_GATES = {"lstm": "gates i, f, g, o", "gru": "gates r, z, n; reset_after"}


def _cells(layer: Layer, opts: dict) -> tuple[dict[str, np.ndarray], Callable]:
    """The nn.LSTM / nn.GRU state of one description layer (suffix l0, and l0_reverse bidirectional) and its back."""
    lstm = layer.kind == "lstm"
    to, frm, cls = ((convert.lstm_to_torch, convert.lstm_from_torch, LSTMWeights) if lstm
                    else (convert.gru_to_torch, convert.gru_from_torch, GRUWeights))  # fmt: skip
    dirs = [("", "l0")] + ([("_rev", "l0_reverse")] if opts["direction"] == "bidirectional" else [])
    state = {}
    for s, t in dirs:
        state |= to(cls(**{k: layer.weights[k + s] for k in ("W", "U", "b_x", "b_h")}), suffix=t)

    def back(a):
        out = {}
        for s, t in dirs:
            w = frm(a, suffix=t)
            out |= {"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h}
        return out

    return state, back


def _merge_halves(mode: str, H: int) -> str:
    """The line that merges a bidirectional sequence's halves (B, T, 2H), forward then backward, as merge_mode says."""
    a, b = f"x[..., :{H}]", f"x[..., {H}:]"
    return {"sum": f"x = {a} + {b}  # merge_mode sum: forward + backward",
            "ave": f"x = ({a} + {b}) * 0.5  # merge_mode ave: the mean of forward and backward",
            "mul": f"x = {a} * {b}  # merge_mode mul: forward * backward"}[mode]  # fmt: skip


def _merge_final(mode: str, bidirectional: bool) -> str:
    """The line that makes the layer's output of h_n (directions, B, H): forward h[0], backward h[1]."""
    if not bidirectional:
        return "x = h[0]  # the final state"
    return {"concat": "x = torch.cat((h[0], h[1]), dim=1)  # forward then backward final state",
            "sum": "x = h[0] + h[1]  # merge_mode sum of the final states",
            "ave": "x = (h[0] + h[1]) * 0.5  # merge_mode ave of the final states",
            "mul": "x = h[0] * h[1]  # merge_mode mul of the final states"}[mode]  # fmt: skip


def _recurrent(layer: Layer, opts: dict, shape: tuple, layout: Layout, masked: bool = False) -> _Piece:
    """nn.LSTM / nn.GRU, one per description layer (num_layers 1), batch_first, bidirectional where the layer is.
    Under a padding mask (`lengths` from the layer that made it) the rows are packed: each runs its valid steps only,
    the backward cell last valid step first, as the description's padded sequences say."""
    _, T, I = shape
    H, bi, lstm = opts["units"], opts["direction"] == "bidirectional", layer.kind == "lstm"
    mode, seq = opts["merge_mode"], opts["return_sequences"]
    state, back = _cells(layer, opts)
    cls = "LSTM" if lstm else "GRU"
    init = f"nn.{cls}({I}, {H}, batch_first=True{', bidirectional=True' if bi else ''})  # {_GATES[layer.kind]}"
    D = 2 if bi else 1
    out_units = 2 * H if bi and mode == "concat" else H
    h_out = "(h, _)" if lstm else "h"
    lines = []
    if masked:
        lines.append("x = nn.utils.rnn.pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, "
                     "enforce_sorted=False)  # valid steps only; torch refuses length 0: such a row runs one step, "
                     "zeroed below")  # fmt: skip
    if seq:
        lines.append("x, _ = self.{a}(x)")
        if masked:
            lines.append(f"x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length={T})  "
                         f"# (B, {T}, {D * H}); a padded step outputs 0")  # fmt: skip
            if opts["padded_outputs"] == "hold":
                lines.append(f"held = torch.minimum(torch.arange({T}, device=x.device), (lengths - 1).clamp(min=0)"
                             "[:, None].to(x.device))  # (B, T): each step's index, the last valid one after a row's end")
                fwd = f"x[..., :{H}].gather(1, held[:, :, None].expand(-1, -1, {H}))" if bi else \
                    f"x.gather(1, held[:, :, None].expand(-1, -1, {H}))"
                if bi:
                    lines.append(f"x = torch.cat(({fwd}, x[..., {H}:]), dim=-1)  # padded steps hold the forward "
                                 "output of the last valid step; the backward half's stay 0")  # fmt: skip
                else:
                    lines.append(f"x = {fwd}  # padded steps hold the output of the last valid step")
            lines.append("x = x.masked_fill((lengths == 0).to(x.device)[:, None, None], 0.0)  # a row of length 0 "
                         "outputs zeros")  # fmt: skip
        else:
            lines[-1] += f"  # (B, {T}, {D * H}): every step's state" + (", forward then backward" if bi else "")
        if bi and mode != "concat":
            lines.append(_merge_halves(mode, H))
        return _Piece(init, lines, state, back, ("B", T, out_units), PLAIN)
    what = ("forward's state after each row's last valid step, backward's after step 0" if bi else
            "the state after each row's last valid step") if masked else \
        ("forward's last state, backward's after step 0 (not out[:, -1])" if bi else "the last state")  # fmt: skip
    lines.append(f"_, {h_out} = self.{{a}}(x)  # h: ({D}, B, {H}), {what}")
    lines.append(_merge_final(mode, bi))
    if masked:
        lines.append("x = x.masked_fill((lengths == 0).to(x.device)[:, None], 0.0)  # a row of length 0: zeros")
    return _Piece(init, lines, state, back, ("B", out_units), PLAIN)


def _embedding(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    V, D = opts["input_dim"], opts["output_dim"]
    where = f"{layer.name!r} (embedding)"
    lines = [f"check_ids(x, {V}, {where!r})  # torch's own IndexError names neither the id nor the table's size"]
    if opts["mask_zero"]:
        lines.append(f"lengths = padded_lengths(x != 0, {where!r})  # id 0 is padding (mask_zero): valid steps per row")
    out = ("B", *shape[1:], D)
    lines.append(f"x = self.{{a}}(x)  # {_shape(out)}")

    def back(a):
        return {"embeddings": np.asarray(a["weight"])}

    helpers = ("check_ids", "padded_lengths") if opts["mask_zero"] else ("check_ids",)
    return _Piece(f"nn.Embedding({V}, {D})", lines, {"weight": np.asarray(layer.weights["embeddings"]).copy()}, back,
                  out, PLAIN, helpers=helpers)  # fmt: skip


def _masking(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    v = opts["mask_value"]
    where = f"{layer.name!r} (masking)"
    lines = [f"valid = (x != {v!r}).any(dim=-1)  # (B, T): a step whose features all equal {v!r} is padding",
             f"lengths = padded_lengths(valid, {where!r})  # valid steps per row",
             "x = x.masked_fill(~valid[:, :, None], 0.0)  # padding steps zeroed, as Keras' Masking outputs them"]
    return _Piece("nn.Identity()  # Masking: the mask is computed in forward", lines, {}, lambda a: {}, ("B", *shape[1:]),
                  PLAIN, helpers=("padded_lengths",))  # fmt: skip


def _take_step(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    i = opts["index"]
    return _Piece("nn.Identity()  # one time step", [f"x = self.{{a}}(x[:, {i}])  # (B, {shape[2]}): step {i}"], {},
                  lambda a: {}, ("B", shape[2]), PLAIN)  # fmt: skip


HELPERS = {
    "check_ids": '''def check_ids(ids, rows, layer):
    """Token ids must index the embedding table: an id outside [0, rows) is refused, named."""
    if ids.is_floating_point() or ids.is_complex():
        raise ValueError(f"{layer}: takes integer token ids, got dtype {ids.dtype}")
    bad = (ids < 0) | (ids >= rows)
    if bool(bad.any()):
        pos = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(f"{layer}: token id {int(ids[pos])} at position {pos} is outside the table of {rows} rows "
                         f"(ids must be in [0, {rows - 1}])")''',
    "padded_lengths": '''def padded_lengths(valid, layer):
    """Valid steps per row of a (B, T) padding mask, which must be post-padded (each row's valid steps first)."""
    lengths = valid.sum(dim=1)
    steps = torch.arange(valid.shape[1], device=valid.device)
    bad = (valid != (steps[None, :] < lengths[:, None])).any(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0, 0])
        raise ValueError(f"{layer}: row {row} is not post-padded (its padding must come after its last valid step; "
                         f"mask {valid[row].int().tolist()}): pre-padded or gapped sequences are not supported")
    return lengths''',
}  # fmt: skip


def _pad_call(pads: tuple[int, int, int, int], expr: str, value: str = "") -> str:
    return f"F.pad({expr}, {_shape(convert.pads_to_torch(pads))}{', value=' + value if value else ''})"


def _pad_reason(padding) -> str:
    return "TensorFlow's 'same': the odd pixel after" if padding == "same" else "explicit pads (left, right, top, bottom)"


def _conv(layer: Layer, opts: dict, shape: tuple, layout: Layout, depthwise: bool = False) -> _Piece:
    c = shape[3]
    groups = c if depthwise else opts["groups"]
    kernel = convert.depthwise_to_grouped(layer.weights["kernel"]) if depthwise else np.asarray(layer.weights["kernel"])
    o = kernel.shape[3]
    g = spec.check_conv2d(shape, kernel.shape, (o,), **geometry_kwargs({**opts, "groups": groups}))
    t, b, l, r = g.pads
    own_pad = t == b and l == r
    args = [str(c), str(o), f"kernel_size={_pair(opts['kernel_size'])}"]
    if g.stride != (1, 1):
        args.append(f"stride={_pair(g.stride)}")
    if own_pad and (t or l):
        args.append(f"padding={_pair((t, l))}")
    if g.dilation != (1, 1):
        args.append(f"dilation={_pair(g.dilation)}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not opts["use_bias"]:
        args.append("bias=False")
    expr = "self.{a}(x)" if own_pad else "self.{a}(" + _pad_call(g.pads, "x") + ")"
    out = ("B", o, g.OH, g.OW)
    comment = _shape(out) + ("" if own_pad else "; " + _pad_reason(opts["padding"])) + _act_comment(opts["activation"], 4)
    state = {"weight": convert.hwio_to_oihw(kernel)}
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        k = convert.oihw_to_hwio(a["weight"])
        w = {"kernel": convert.grouped_to_depthwise(k, c) if depthwise else k}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    init = f"nn.Conv2d({', '.join(args)})" + ("  # depthwise: one group per input channel" if depthwise else "")
    return _Piece(init, [f"x = {_act(opts['activation'], expr, 4)}  # {comment}"], state, back, out,
                  Layout("nchw"), not own_pad)  # fmt: skip


def _pool(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    g = spec.check_pool2d(shape, **pool_kwargs(opts), op=layer.kind)
    t, b, l, r = g.pads
    own_pad = t == b and l == r and 2 * t <= g.pool[0] and 2 * l <= g.pool[1]  # torch's pools: pad <= window / 2
    avg = layer.kind == "avg_pool2d"
    args = [_pair(g.pool), f"stride={_pair(g.stride)}"]
    if own_pad and (t or l):
        args.append(f"padding={_pair((t, l))}")
    if avg and (own_pad and (t or l)):
        args.append(f"count_include_pad={opts['count_include_pad']}")
    out = ("B", g.C, g.OH, g.OW)
    init = f"nn.{'AvgPool2d' if avg else 'MaxPool2d'}({', '.join(args)})"
    if own_pad:
        return _Piece(init, [f"x = self.{{a}}(x)  # {_shape(out)}"], {}, lambda a: {}, out, Layout("nchw"))
    why = _pad_reason(opts["padding"])
    if not avg:  # torch's MaxPool2d pads -inf but only symmetrically: the same -inf pads, explicitly
        padded = _pad_call(g.pads, "x", 'float("-inf")')
        lines = [f"x = self.{{a}}({padded})  # {_shape(out)}; {why}, -inf never wins"]
    elif opts["count_include_pad"]:
        lines = [f"x = self.{{a}}({_pad_call(g.pads, 'x')})  # {_shape(out)}; {why}, the zeros counted in the mean"]
    else:  # the mean over the cells inside the image: the zero-padded window sum over the share of real cells
        lines = [(f"inside = self.{{a}}({_pad_call(g.pads, 'torch.ones_like(x[:1, :1])')})  # each window's share of "
                  "cells inside the image"),
                 f"x = self.{{a}}({_pad_call(g.pads, 'x')}) / inside  # {_shape(out)}; {why}, pads not counted"]  # fmt: skip
    return _Piece(init, lines, {}, lambda a: {}, out, Layout("nchw"), True)


def _zero_pad(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    (t, b), (l, r) = opts["padding"]
    out = ("B", shape[3], shape[1] + t + b, shape[2] + l + r)
    init = f"nn.ZeroPad2d({_shape(convert.pads_to_torch((t, b, l, r)))})  # (left, right, top, bottom)"
    return _Piece(init, [f"x = self.{{a}}(x)  # {_shape(out)}"], {}, lambda a: {}, out, Layout("nchw"))


def _flatten(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    n = int(np.prod(shape[1:]))
    if layout.kind == "nchw":
        h, w, c = shape[1:]
        return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n}) in torch's (c, h, w) order"], {}, lambda a: {},
                      ("B", n), Layout("chw", (h, w, c)))  # fmt: skip
    if layout.kind == "ncw":
        length, c = shape[1:]
        return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n}) in torch's (c, l) order"], {}, lambda a: {},
                      ("B", n), Layout("chw", (1, length, c)))  # fmt: skip
    return _Piece("nn.Flatten()", [f"x = self.{{a}}(x)  # (B, {n})"], {}, lambda a: {}, ("B", n), layout)


def _dense(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    n_in, units = shape[-1], opts["units"]
    kernel = np.asarray(layer.weights["kernel"])
    fs = layout.feature if layout.kind == "chw" else None
    state = {"weight": convert.dense_to_torch(kernel if fs is None else convert.flatten_rows_nhwc_to_nchw(kernel, fs))}
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        k = convert.dense_from_torch(a["weight"])
        w = {"kernel": k if fs is None else convert.flatten_rows_nchw_to_nhwc(k, fs)}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    out = ("B", *shape[1:-1], units)
    init = f"nn.Linear({n_in}, {units}{'' if opts['use_bias'] else ', bias=False'})"
    if fs is not None:
        init += "  # its rows in (c, h, w) order: the flatten before it sees NCHW"
    return _Piece(init, [f"x = {_act(opts['activation'], 'self.{a}(x)', len(shape))}  # {_shape(out)}"], state, back, out, PLAIN)


def _activation(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    name, rank = opts["activation"], len(shape)
    init = {"linear": "nn.Identity()", "relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()",
            "softmax": f"nn.Softmax(dim={1 if layout.kind in ('nchw', 'ncw') else -1})"}[name]  # fmt: skip
    comment = "softmax over channels" if name == "softmax" and layout.kind in ("nchw", "ncw") else name
    out = _tshape(shape, layout) if rank in (3, 4) else ("B", *shape[1:])
    return _Piece(init, [f"x = self.{{a}}(x)  # {comment}"], {}, lambda a: {}, out, layout)


def _dropout(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    return _Piece(f"nn.Dropout(p={opts['rate']})", ["x = self.{a}(x)  # identity in eval mode"], {}, lambda a: {},
                  _tshape(shape, layout), layout)  # fmt: skip



def _conv1d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Conv1d on NCW; pads torch's own `padding` cannot hold (TensorFlow's 'same' with its odd pad after, causal,
    unequal explicit pads) by F.pad (left, right) before it."""
    _, length, c = shape
    k, o, groups = opts["kernel_size"], opts["filters"], opts["groups"]
    kernel = np.asarray(layer.weights["kernel"])  # (K, C / groups, O)
    g = spec.check_conv2d((1, 1, length, c), (1, k, c // groups, o), (o,), **conv1d_layer.conv2d_kwargs(opts, length))
    _, _, left, right = g.pads
    own_pad = left == right
    args = [str(c), str(o), f"kernel_size={k}"]
    if opts["strides"] != 1:
        args.append(f"stride={opts['strides']}")
    if own_pad and left:
        args.append(f"padding={left}")
    if opts["dilation"] != 1:
        args.append(f"dilation={opts['dilation']}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not opts["use_bias"]:
        args.append("bias=False")
    expr = "self.{a}(x)" if own_pad else "self.{a}(F.pad(x, " + _shape((left, right)) + "))"
    out = ("B", o, g.OW)
    why = {"same": "TensorFlow's 'same': the odd pad after", "causal": f"causal: all {left} pads before"}.get(
        opts["padding"] if isinstance(opts["padding"], str) else "", "explicit pads (left, right)")
    comment = _shape(out) + ("" if own_pad else "; " + why) + _act_comment(opts["activation"], 4)
    state = {"weight": kernel.transpose(2, 1, 0).copy()}  # (K, C/g, O) -> torch's (O, C/g, K)
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        w = {"kernel": np.asarray(a["weight"]).transpose(2, 1, 0)}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    return _Piece(f"nn.Conv1d({', '.join(args)})", [f"x = {_act(opts['activation'], expr, 4)}  # {comment}"], state,
                  back, out, Layout("ncw"), not own_pad)  # fmt: skip


def torch_momentum(momentum: float) -> float:
    """The description's momentum (the fraction of the old moving statistic kept) as torch's (that of the new one)."""
    m = 1.0 - float(momentum)
    short = float(f"{m:.12g}")
    return short if abs(short - m) <= 1e-15 else m


def _batch_norm(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.BatchNorm1d (B, C) or NCW / nn.BatchNorm2d NCHW over the channels; running_mean / running_var are the
    description's moving statistics. torch's momentum is 1 - the description's; torch moves running_var with the
    unbiased batch variance (variance_update 'unbiased')."""
    rank, c = len(shape), shape[-1]
    cls = "BatchNorm2d" if rank == 4 else "BatchNorm1d"
    affine = opts["scale"]  # torch_port.refusal refuses center != scale
    m = opts["momentum"]
    args = [str(c), f"eps={opts['epsilon']!r}", f"momentum={torch_momentum(m)!r}"] + ([] if affine else ["affine=False"])
    init = f"nn.{cls}({', '.join(args)})  # momentum: torch's share of the new batch statistic (1 - {m!r})"
    state = {}
    if affine:
        state["weight"] = np.asarray(layer.weights["gamma"]).copy()
        state["bias"] = np.asarray(layer.weights["beta"]).copy()
    state["running_mean"] = np.asarray(layer.weights["moving_mean"]).copy()
    state["running_var"] = np.asarray(layer.weights["moving_var"]).copy()
    state["num_batches_tracked"] = np.array(0, np.int64)

    def back(a):
        names = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_var"}
        return {names[k]: np.asarray(v) for k, v in a.items() if k in names}

    out = _tshape(shape, layout)
    return _Piece(init, [f"x = self.{{a}}(x)  # {_shape(out)}: over the channels"], state, back, out, layout)


def _layer_norm(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.LayerNorm over the canonical last axis (the features; the channels of a map): torch's LayerNorm normalises
    its input's last axis, so an NCW / NCHW map is permuted channels-last around it."""
    c = shape[-1]
    args = [str(c), f"eps={opts['epsilon']!r}"]
    if not opts["scale"]:
        args.append("elementwise_affine=False")  # torch_port.refusal refuses center without scale
    elif not opts["center"]:
        args.append("bias=False")
    state = {}
    if opts["scale"]:
        state["weight"] = np.asarray(layer.weights["gamma"]).copy()
    if opts["center"]:
        state["bias"] = np.asarray(layer.weights["beta"]).copy()

    def back(a):
        names = {"weight": "gamma", "bias": "beta"}
        return {names[k]: np.asarray(v) for k, v in a.items() if k in names}

    out = _tshape(shape, layout)
    if layout.kind == "nchw":
        line = "x = self.{a}(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # over the channels (torch's LayerNorm: the last axis)"
    elif layout.kind == "ncw":
        line = "x = self.{a}(x.permute(0, 2, 1)).permute(0, 2, 1)  # over the channels (torch's LayerNorm: the last axis)"
    else:
        line = f"x = self.{{a}}(x)  # {_shape(out)}: over the last axis"
    return _Piece(f"nn.LayerNorm({', '.join(args)})", [line], state, back, out, layout)


def _global_pool(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    avg, c = layer.kind == "global_avg_pool", shape[-1]
    what = "mean" if avg else "maximum"
    if layout.kind in ("nchw", "ncw"):
        cls = f"Adaptive{'Avg' if avg else 'Max'}Pool{'2d' if layout.kind == 'nchw' else '1d'}(1)"
        return _Piece(f"nn.{cls}", [f"x = self.{{a}}(x).flatten(1)  # (B, {c}): the {what} over every position"], {},
                      lambda a: {}, ("B", c), PLAIN)  # fmt: skip
    line = f"x = x.{'mean' if avg else 'amax'}(dim=1)  # {layer.name}: (B, {c}), the {what} over the steps"
    return _Piece(None, [line], {}, lambda a: {}, ("B", c), PLAIN)


def _reshape(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    out = tuple(spec_of("reshape").output_shape(opts, shape))
    dims = ", ".join(str(d) for d in out[1:])
    return _Piece(None, [f"x = x.reshape(x.shape[0], {dims})  # {layer.name}: reshape to (B, {dims}), row-major"], {},
                  lambda a: {}, ("B", *out[1:]), PLAIN)  # fmt: skip


def _permute(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    dims = opts["dims"]
    out = ("B", *(shape[d] for d in dims))
    return _Piece(None, [f"x = x.permute(0, {', '.join(map(str, dims))})  # {layer.name}: {_shape(out)}"], {},
                  lambda a: {}, out, PLAIN)  # fmt: skip


_TO_TORCH_DIM = {"nchw": {1: 2, 2: 3, 3: 1}, "ncw": {1: 2, 2: 1}}


def _merge(layer: Layer, opts: dict, shapes: tuple, exprs: list[str], layout: Layout) -> _Piece:
    """add / concatenate of `exprs` (already in one layout): `x = a + b`, `x = torch.cat((a, b), dim=d)`."""
    if layer.kind == "add":
        out = _tshape(shapes[0], layout)
        line = f"x = {' + '.join(exprs)}  # {layer.name}: {_shape(out)}"
    else:
        rank = len(shapes[0])
        axis = opts["axis"] % rank
        dim = _TO_TORCH_DIM.get(layout.kind, {}).get(axis, axis)
        canon = list(shapes[0])
        canon[axis] = sum(s[axis] for s in shapes)
        out = _tshape(tuple(canon), layout)
        line = f"x = torch.cat(({', '.join(exprs)}), dim={dim})  # {layer.name}: {_shape(out)}"
    return _Piece(None, [line], {}, lambda a: {}, out, layout)


MERGES = ("add", "concatenate")


RECURRENT = ("lstm", "gru")
EMITTERS: dict[str, Callable[..., _Piece]] = {
    "lstm": _recurrent, "gru": _recurrent, "embedding": _embedding, "masking": _masking, "take_step": _take_step, "conv2d": _conv, "depthwise_conv2d": lambda *a: _conv(*a, depthwise=True), "max_pool2d": _pool,
    "avg_pool2d": _pool, "zero_pad2d": _zero_pad, "flatten": _flatten, "dense": _dense, "activation": _activation,
    "dropout": _dropout, "conv1d": _conv1d, "batch_norm": _batch_norm, "layer_norm": _layer_norm,
    "global_avg_pool": _global_pool, "global_max_pool": _global_pool, "reshape": _reshape, "permute": _permute,
}  # fmt: skip


# --------------------------------------------------------------------------- the module


_IMAGE_KINDS = ("conv2d", "depthwise_conv2d", "max_pool2d", "avg_pool2d", "zero_pad2d")
_ANY = ("nchw", "ncw", "chw", "plain")
FEATURE_MAP_READERS = ("conv1d", "batch_norm", "global_avg_pool", "global_max_pool")
"""Kinds whose 3-D input is a feature map, which a channels_first source holds (B, C, L)."""


def _wants(kind: str, rank: int) -> tuple[str, ...]:
    """The torch layouts a kind takes for an input of `rank` (the first: what another is converted to)."""
    if kind in _IMAGE_KINDS:
        return ("nchw",)
    if kind == "conv1d":
        return ("ncw",)
    if kind == "batch_norm":
        return {4: ("nchw",), 3: ("ncw",)}.get(rank, ("plain",))
    if kind == "layer_norm":
        return ("nchw", "ncw", "plain")
    if kind in ("global_avg_pool", "global_max_pool"):
        return ("nchw",) if rank == 4 else ("ncw", "plain")
    if kind in ("flatten", "activation", "dropout"):
        return _ANY
    if kind == "dense":
        return ("plain", "chw")
    return ("plain",)


def _convert(expr: str, have: Layout, wants: tuple[str, ...], rank: int) -> tuple[str, Layout, str]:
    """`expr` (held as `have`) in one of `wants`: (the expression, its layout, what was done; '' for nothing)."""
    if have.kind in wants:
        return expr, have, ""
    if have.kind == "chw":
        h, w, c = have.feature
        expr = f"{expr}.reshape(-1, {c}, {h}, {w}).permute(0, 2, 3, 1).flatten(1)"
        done, have = "torch's (c, h, w) features in the description's (h, w, c) order", PLAIN
        if have.kind in wants:
            return expr, have, done
    else:
        done = ""
    if have.kind == "nchw":
        return f"{expr}.permute(0, 2, 3, 1)", PLAIN, "NCHW -> NHWC"
    if have.kind == "ncw":
        return f"{expr}.permute(0, 2, 1)", PLAIN, "NCW -> NWC"
    want = wants[0]
    if want == "nchw" and rank == 4:
        return f"{expr}.permute(0, 3, 1, 2)", Layout("nchw"), "NHWC -> NCHW"
    if want == "ncw" and rank == 3:
        return f"{expr}.permute(0, 2, 1)", Layout("ncw"), "NWC -> NCW"
    raise ModelError(f"torch port: a rank-{rank} tensor held {have.kind} cannot be given as {wants}")


def _var_names(model: Model, attrs: dict[str, str]) -> dict[str, str]:
    """Tensor name -> the variable that keeps it in forward where a later layer reads it again."""
    taken = set(attrs.values()) | {"x", "lengths", "held", "valid", "h", "F", "torch", "nn", "self", "inside"}
    out, seen = {}, set()
    for name in [INPUT, *(la.name for la in model.layers)]:
        v = "x_in" if name == INPUT else attrs[name]
        if v in ("x", "lengths", "held", "valid", "h", "F", "torch", "nn", "self", "inside") or (name == INPUT and v in taken):
            v = f"{v}_out"
        while v in seen:
            v += "_"
        seen.add(v)
        out[name] = v
    return out


def _reads_feature_map(model: Model) -> bool:
    """The input is a 3-D feature map (B, L, C) that a channels_first source holds (B, C, L)."""
    return len(model.input_shape) == 2 and any(model.layers[i].kind in FEATURE_MAP_READERS for i in model.consumers(INPUT))


def generate(model: Model, dtype: str | None = None, native_layout: bool = False) -> Code:
    """The port of `model` as source and state. dtype: the module's (DTYPE in the source), default the weights'.
    A graph is written as forward's lines in topological order; a tensor read by a layer other than the next one is
    kept in a variable named after its layer (the input: x_in)."""
    model.check(1)
    dtype = dtype or port_dtype(model)
    if dtype not in DTYPES:
        raise ModelError(f"torch port: dtype {dtype!r} is not one of {DTYPES}")
    attrs, shapes = attribute_names(model), model.shapes(1)
    in_shapes = model.input_shapes(1)
    shapes = [("B", *s[1:]) for s in shapes]
    image_in = len(model.input_shape) == 3
    keep_torch = native_layout or model.boundary == "channels_first"  # the boundary takes torch's own layout
    map_in = _reads_feature_map(model) and keep_torch
    layout = Layout("nchw") if image_in else Layout("ncw") if map_in else PLAIN
    inits, lines, state, backs, uses_f, helpers = [], [], {}, {}, False, []
    masked = model.mask_sources()  # per layer, the layer whose padding mask reaches it (its `lengths`), or None
    if image_in and not keep_torch:
        h, w, c = model.input_shape
        lines.append(f"x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW (B, {c}, {h}, {w}): torch's image layout")
    names = _var_names(model, attrs)
    layouts, current, last = {INPUT: layout}, INPUT, len(model.layers) - 1

    def keep(name: str, after: int) -> None:
        readers = model.consumers(name)
        if readers != [after + 1]:
            later = [repr(model.layers[j].name) for j in readers if j != after + 1]
            lines.append(f"{names[name]} = x  # kept: {', '.join(later)} read{'s' * (len(later) == 1)} it too")

    keep(INPUT, -1)
    for i, layer in enumerate(model.layers):
        kind = spec_of(layer.kind, layer.label(i))
        opts = kind.options(layer.options)
        srcs = model.sources(i)
        if layer.kind in MERGES:
            ranks = {len(s) for s in in_shapes[i]}
            held = [layouts[s] for s in srcs]
            rank = ranks.pop()
            if all(h == held[0] for h in held) and not (held[0].kind == "chw" and layer.kind == "concatenate"):
                wants = (held[0].kind,)
            else:
                wants = ("nchw",) if rank == 4 else ("plain",)
            exprs = []
            for s in srcs:
                e, lay, _ = _convert("x" if s == current else names[s], layouts[s], wants, rank)
                exprs.append(e)
            p = _merge(layer, opts, in_shapes[i], exprs, lay)
        else:
            try:
                emit = EMITTERS[layer.kind]
            except KeyError:
                raise ModelError(f"{layer.label(i)}: the torch port has no emitter for kind {layer.kind!r}") from None
            s = srcs[0]
            shape = tuple(in_shapes[i])
            src_expr = "x" if s == current else names[s]
            e, lay, done = _convert(src_expr, layouts[s], _wants(layer.kind, len(shape)), len(shape))
            if e != "x":
                note = done or f"{layer.name!r} reads {s!r}"
                if done and s != current:
                    note = f"{layer.name!r} reads {s!r}; {done}"
                lines.append(f"x = {e}  # {note}")
            extra = {"masked": masked[i] is not None} if layer.kind in RECURRENT else {}
            p = emit(layer, opts, tuple(1 if d == "B" else d for d in shape), lay, **extra)
        helpers += [h for h in p.helpers if h not in helpers]
        a = attrs[layer.name]
        if p.init is not None:
            inits.append(f"self.{a} = {p.init}")
        lines.extend(line.replace("{a}", a) for line in p.lines)
        state |= {f"{a}.{k}": np.ascontiguousarray(np.asarray(v, dtype) if np.asarray(v).dtype.kind == "f" else v)
                  for k, v in p.state.items()}
        backs[layer.name] = p.back
        uses_f = uses_f or p.uses_f
        layouts[layer.name], current = p.layout, layer.name
        if i < last:
            keep(layer.name, i)
    layout = layouts[current]
    out_layout, y_note = layout, ""
    out_rank = len(shapes[-1])
    if not keep_torch and layout.kind == "nchw":
        lines.append("x = x.permute(0, 2, 3, 1)  # NCHW -> NHWC, the source's layout")
        out_layout = PLAIN
    elif not keep_torch and layout.kind == "ncw":
        lines.append("x = x.permute(0, 2, 1)  # NCW -> NWC, the source's layout")
        out_layout = PLAIN
    elif not keep_torch and layout.kind == "chw":
        h, w, c = layout.feature
        lines.append(f"x = x.reshape(-1, {c}, {h}, {w}).permute(0, 2, 3, 1).flatten(1)  # (h, w, c) order, as the source flattens")
        out_layout, y_note = PLAIN, f", a {h}x{w}x{c} map flattened in (h, w, c) order"
    elif keep_torch and layout.kind == "plain" and out_rank == 4:
        lines.append("x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW, the source's layout")
        out_layout = Layout("nchw")
    in_layout = Layout("nchw") if image_in and keep_torch else Layout("ncw") if map_in else PLAIN
    cls = class_name(model)
    source = _module_source(model, cls, dtype, inits, lines, uses_f, native_layout, in_layout, out_layout, shapes, y_note,
                            helpers)
    return Code(source, cls, dtype, state, attrs, in_layout, out_layout, backs)


def _describe(shape: tuple, layout: Layout) -> str:
    if len(shape) == 4:
        _, h, w, c = shape
        return f"(B, {c}, {h}, {w}) NCHW" if layout.kind == "nchw" else f"(B, {h}, {w}, {c}) NHWC"
    if len(shape) == 3 and layout.kind == "ncw":
        _, length, c = shape
        return f"(B, {c}, {length}) NCW"
    if layout.kind == "chw":
        h, w, c = layout.feature
        if h == 1:
            return f"(B, {shape[1]}), a {w}-long {c}-channel map flattened in torch's (c, l) order"
        return f"(B, {shape[1]}), a {h}x{w}x{c} map flattened in torch's (c, h, w) order"
    return _shape(shape)


def _module_source(model, cls, dtype, inits, lines, uses_f, native_layout, in_layout, out_layout, shapes, y_note,
                   helpers=()) -> str:
    x_text = _describe(shapes[0], in_layout)
    ids = np.issubdtype(np.dtype(model.input_dtype), np.integer)
    x_dtype = f"{model.input_dtype} token ids" if ids else dtype
    y_text = _describe(shapes[-1], out_layout) + y_note
    if native_layout:
        layout_note = ["Native layout (--native-layout): it takes and returns torch's own layouts (NCHW images),",
                       f"not the source's ({model.boundary})."]  # fmt: skip
    elif len(model.input_shape) == 3 and model.boundary == "channels_last":
        layout_note = ["Drop-in for the source: it takes and returns NHWC images, as the source does; the transposes",
                       "to torch's NCHW are inside forward."]  # fmt: skip
    else:
        layout_note = ["Drop-in for the source: the same inputs and outputs, in the same layouts."]
    n_layers = len(model.layers)
    origin = ("written by nnparity from its model description" if model.source == "nnparity"
              else f"ported from {model.source} by nnparity")
    doc = [f'"""{model.name}: {n_layers} layer{"s" * (n_layers != 1)}, {origin}.', "",
           f"Takes x {x_text} ({x_dtype}) and returns {y_text}.", *layout_note, "",
           "    from model import load", "    m = load()  # the module with weights.pt loaded, in eval mode", "    y = m(x)",
           '"""']  # fmt: skip
    out = [*doc, "", "from pathlib import Path", "", "import torch"]
    if uses_f:
        out.append("import torch.nn.functional as F")
    out += ["from torch import nn", "", f"DTYPE = torch.{dtype}  # the dtype of weights.pt",
            f"INPUT_SHAPE = {tuple(shapes[0][1:])!r}  # one sample, batch left out: {x_text}", "", "",
            f"class {cls}(nn.Module):", "    def __init__(self):", "        super().__init__()"]  # fmt: skip
    if helpers:
        at = out.index(f"class {cls}(nn.Module):")
        out[at:at] = [part for h in helpers for part in (HELPERS[h], "", "")]
    out += [f"        {line}" for line in inits]
    out += ["", f"    def forward(self, x):  # x: {x_text}"]
    out += [f"        {line}" for line in lines]
    out += ["        return x", "", "",
            "def load(path=None):",
            f'    """The {cls} module with the weights in `path` (default: weights.pt beside this file), in eval mode."""',
            '    path = Path(__file__).with_name("weights.pt") if path is None else Path(path)',
            f"    model = {cls}().to(DTYPE)",
            '    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))',
            "    return model.eval()", ""]  # fmt: skip
    return "\n".join(out)


def port_dtype(model: Model) -> str:
    """The dtype a written port computes in: its weights' common float dtype, else the input's, else float32."""
    kinds = {np.asarray(w).dtype.name for la in model.layers for w in la.weights.values()}
    if len(kinds) == 1 and next(iter(kinds)) in DTYPES:
        return next(iter(kinds))
    if not kinds and model.input_dtype in DTYPES:
        return model.input_dtype
    return "float32"


__all__ = ["DTYPES", "EMITTERS", "FEATURE_MAP_READERS", "HELPERS", "MERGES", "RECURRENT", "Code", "Layout", "attribute_names", "class_name", "generate", "port_dtype", "torch_momentum"]
