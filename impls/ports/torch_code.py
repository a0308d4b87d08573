"""The torch port's code generator: a model description -> the source of an `nn.Module` and its state dict.

    code = generate(model, native_layout=False)
    code.source                   # model.py: imports only torch (and pathlib), one attribute per layer
    code.state                    # {"conv1.weight": array in torch's layout, ...}, what weights.pt holds
    code.back(layer, arrays)      # torch-layout arrays of one layer (weights or gradients) -> canonical ones

Every weight-layout fact comes from impls/convert.py: gate order and transposes (gru_to_torch), OIHW kernels
(hwio_to_oihw), depthwise as groups = C (depthwise_to_grouped), Linear's (out, in) (dense_to_torch), torch's NCHW
flatten order (flatten_rows_nhwc_to_nchw on the Linear after a flatten of a 4-D map) and F.pad's order
(pads_to_torch). Inside the module images are NCHW; `Layout` says what the port's boundary takes and returns.
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
from ..contract.spec import GRUWeights
from ..model.description import Layer, Model, ModelError
from ..model.layers import spec_of
from ..model.layers.conv2d import geometry_kwargs
from ..model.layers.pool2d import pool_kwargs

DTYPES = ("float32", "float64")
_MODULE_ATTRS = frozenset({"forward", "training", "eval", "train", "load", "state_dict", "parameters", "modules",
                           "children", "to", "double", "float", "half", "cuda", "cpu", "type", "apply", "zero_grad",
                           "register_buffer", "register_parameter", "add_module", "extra_repr", "dump_patches",
                           "call_super_init", "T_destination"})  # fmt: skip


@dataclass(frozen=True)
class Layout:
    """How one tensor is laid out in torch: 'nchw' (a 4-D map), 'chw' (a flattened 4-D map in torch's (c, h, w)
    order, `feature` its canonical (h, w, c)) or 'plain' (sequences, vectors: the canonical layout itself)."""

    kind: str
    feature: tuple[int, int, int] | None = None

    def to_torch(self, a: np.ndarray) -> np.ndarray:
        """A canonical array -> this layout, with a fresh array's strides, as a user's tensor has: a transposed
        view's (and np.ascontiguousarray's, which keeps a one-channel view's stride 1 on C) read as channels_last
        to torch, whose conv then returns channels_last memory, on which the module's own x.view(B, -1) raises."""
        if self.kind == "nchw":
            return np.array(convert.nhwc_to_nchw(a), order="C")  # copied: every stride the C-order one
        if self.kind == "chw":
            h, w, c = self.feature
            return np.ascontiguousarray(a.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(a.shape[0], -1))
        return np.ascontiguousarray(a)

    def to_canonical(self, a: np.ndarray) -> np.ndarray:
        if self.kind == "nchw":
            return convert.nchw_to_nhwc(a)
        if self.kind == "chw":
            h, w, c = self.feature
            return np.ascontiguousarray(a.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1))
        return np.ascontiguousarray(a)


PLAIN = Layout("plain")


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
    init: str  # the attribute's constructor
    lines: list[str]  # forward lines, `{a}` for the attribute
    state: dict[str, np.ndarray]
    back: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    shape: tuple  # the output's torch shape, B for the batch
    layout: Layout
    uses_f: bool = False


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
    """`expr` through the layer's activation= ; softmax on the canonical last axis (channels: dim 1 in NCHW)."""
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
    return ("B", *canonical[1:])


# --------------------------------------------------------------------------- one emitter per kind


def _gru(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    _, T, I = shape
    H = opts["units"]
    state = convert.gru_to_torch(GRUWeights(**{k: layer.weights[k] for k in ("W", "U", "b_x", "b_h")}))

    def back(a):
        w = convert.gru_from_torch(a)
        return {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}

    init = f"nn.GRU({I}, {H}, batch_first=True)  # gates r, z, n; reset_after"
    if opts["return_sequences"]:
        return _Piece(init, [f"x, _ = self.{{a}}(x)  # (B, {T}, {H}): every step's state"], state, back, ("B", T, H), PLAIN)
    lines = [f"_, h = self.{{a}}(x)  # h: (1, B, {H}), the last state", f"x = h[0]  # (B, {H})"]
    return _Piece(init, lines, state, back, ("B", H), PLAIN)


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
            "softmax": f"nn.Softmax(dim={1 if layout.kind == 'nchw' else -1})"}[name]  # fmt: skip
    comment = "softmax over channels" if name == "softmax" and layout.kind == "nchw" else name
    return _Piece(init, [f"x = self.{{a}}(x)  # {comment}"], {}, lambda a: {}, _tshape(shape, layout) if rank == 4 else ("B", *shape[1:]), layout)


def _dropout(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    return _Piece(f"nn.Dropout(p={opts['rate']})", ["x = self.{a}(x)  # identity in eval mode"], {}, lambda a: {},
                  _tshape(shape, layout), layout)  # fmt: skip


EMITTERS: dict[str, Callable[..., _Piece]] = {
    "gru": _gru, "conv2d": _conv, "depthwise_conv2d": lambda *a: _conv(*a, depthwise=True), "max_pool2d": _pool,
    "avg_pool2d": _pool, "zero_pad2d": _zero_pad, "flatten": _flatten, "dense": _dense, "activation": _activation,
    "dropout": _dropout,
}  # fmt: skip


# --------------------------------------------------------------------------- the module


def generate(model: Model, dtype: str | None = None, native_layout: bool = False) -> Code:
    """The port of `model` as source and state. dtype: the module's (DTYPE in the source), default the weights'."""
    model.check(1)
    dtype = dtype or port_dtype(model)
    if dtype not in DTYPES:
        raise ModelError(f"torch port: dtype {dtype!r} is not one of {DTYPES}")
    attrs, shapes = attribute_names(model), model.shapes(1)
    shapes = [("B", *s[1:]) for s in shapes]
    image_in = len(model.input_shape) == 3
    layout = Layout("nchw") if image_in else PLAIN
    keep_torch = native_layout or model.boundary == "channels_first"  # the boundary takes torch's own layout
    inits, lines, state, backs, uses_f = [], [], {}, {}, False
    if image_in and not keep_torch:
        h, w, c = model.input_shape
        lines.append(f"x = x.permute(0, 3, 1, 2)  # NHWC -> NCHW (B, {c}, {h}, {w}): torch's image layout")
    for i, layer in enumerate(model.layers):
        kind = spec_of(layer.kind, layer.label(i))
        opts = kind.options(layer.options)
        try:
            p = EMITTERS[layer.kind](layer, opts, tuple(1 if d == "B" else d for d in shapes[i]), layout)
        except KeyError:
            raise ModelError(f"{layer.label(i)}: the torch port has no emitter for kind {layer.kind!r}") from None
        a = attrs[layer.name]
        inits.append(f"self.{a} = {p.init}")
        lines.extend(line.replace("{a}", a) for line in p.lines)
        state |= {f"{a}.{k}": np.ascontiguousarray(np.asarray(v, dtype)) for k, v in p.state.items()}
        backs[layer.name] = p.back
        layout, uses_f = p.layout, uses_f or p.uses_f
    out_layout, y_note = layout, ""
    if not keep_torch and layout.kind == "nchw":
        lines.append("x = x.permute(0, 2, 3, 1)  # NCHW -> NHWC, the source's layout")
        out_layout = PLAIN
    elif not keep_torch and layout.kind == "chw":
        h, w, c = layout.feature
        lines.append(f"x = x.view(-1, {c}, {h}, {w}).permute(0, 2, 3, 1).flatten(1)  # (h, w, c) order, as the source flattens")
        out_layout, y_note = PLAIN, f", a {h}x{w}x{c} map flattened in (h, w, c) order"
    in_layout = Layout("nchw") if image_in and keep_torch else PLAIN
    cls = class_name(model)
    source = _module_source(model, cls, dtype, inits, lines, uses_f, native_layout, in_layout, out_layout, shapes, y_note)
    return Code(source, cls, dtype, state, attrs, in_layout, out_layout, backs)


def _describe(shape: tuple, layout: Layout) -> str:
    if len(shape) == 4:
        _, h, w, c = shape
        return f"(B, {c}, {h}, {w}) NCHW" if layout.kind == "nchw" else f"(B, {h}, {w}, {c}) NHWC"
    if layout.kind == "chw":
        h, w, c = layout.feature
        return f"(B, {shape[1]}), a {h}x{w}x{c} map flattened in torch's (c, h, w) order"
    return _shape(shape)


def _module_source(model, cls, dtype, inits, lines, uses_f, native_layout, in_layout, out_layout, shapes, y_note) -> str:
    x_text = _describe(shapes[0], in_layout)
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
           f"Takes x {x_text} ({dtype}) and returns {y_text}.", *layout_note, "",
           "    from model import load", "    m = load()  # the module with weights.pt loaded, in eval mode", "    y = m(x)",
           '"""']  # fmt: skip
    out = [*doc, "", "from pathlib import Path", "", "import torch"]
    if uses_f:
        out.append("import torch.nn.functional as F")
    out += ["from torch import nn", "", f"DTYPE = torch.{dtype}  # the dtype of weights.pt",
            f"INPUT_SHAPE = {tuple(shapes[0][1:])!r}  # one sample, batch left out: {x_text}", "", "",
            f"class {cls}(nn.Module):", "    def __init__(self):", "        super().__init__()"]  # fmt: skip
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


__all__ = ["DTYPES", "EMITTERS", "Code", "Layout", "attribute_names", "class_name", "generate", "port_dtype"]
