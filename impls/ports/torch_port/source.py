"""The text of the torch port's model.py around the layers' lines: the attribute and class names, the module-level
helper functions forward may call, the docstring that says what the module takes and returns, and `load()`; and the
text the emitters write their lines with (pair_text, activated, torch_shape, pad_call ...).

    source = module_source(model, cls, dtype, inits, lines, ...)   # generate's (impls/ports/torch_port/code.py)

Nothing here imports torch: the source is text.
"""

from __future__ import annotations

import keyword
import re

import numpy as np

from ... import convert
from ...layouts import Layout
from ...model.description import Model

_MODULE_ATTRS = frozenset({"forward", "training", "eval", "train", "load", "state_dict", "parameters", "modules",
                           "children", "to", "double", "float", "half", "cuda", "cpu", "type", "apply", "zero_grad",
                           "register_buffer", "register_parameter", "add_module", "extra_repr", "dump_patches",
                           "call_super_init", "T_destination"})  # fmt: skip


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


def shape_text(s) -> str:
    """A shape as the source writes it: (B, 3, 4)."""
    return "(" + ", ".join(str(d) for d in s) + ")"


HELPERS = {  # name -> the source of a module-level function forward calls (a _Piece's `helpers`)
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


# what the emitters write with


def pair_text(p) -> str:
    """A pair as the source writes it: (2, 1)."""
    return f"({p[0]}, {p[1]})"


def activated(name: str, expr: str, rank: int) -> str:
    """`expr` through the layer's activation= ; softmax on the canonical last axis (channels: dim 1 in NCHW, and in
    NCW where `rank` is given as 4: channels first)."""
    if name == "linear":
        return expr
    if name == "softmax":
        return f"torch.softmax({expr}, dim={1 if rank == 4 else -1})"
    if name in _FUNCTIONAL:
        return _FUNCTIONAL[name].format(expr)
    return f"torch.{name}({expr})"


_FUNCTIONAL = {"relu6": "torch.nn.functional.relu6({})", "hard_sigmoid": "torch.nn.functional.relu6({} + 3.0) / 6.0",
               "hard_swish": "torch.nn.functional.hardswish({})", "silu": "torch.nn.functional.silu({})",
               "gelu": "torch.nn.functional.gelu({})", "gelu_tanh": "torch.nn.functional.gelu({}, approximate='tanh')"}
"""issue 24's activations as a layer's activation= (torch.nn.functional's own, with its defaults: gelu the erf one;
hard_sigmoid as relu6(x + 3) / 6 itself, since F.hardsigmoid's float64 backward multiplies by float32(1 / 6): measured
2.8e-9 off, where the relu6 form's gradient is exact)."""


def act_comment(name: str, rank: int) -> str:
    """What a layer's line says of its activation: only a softmax over the channels is worth saying."""
    return ", softmax over channels" if name == "softmax" and rank == 4 else ""


def torch_shape(canonical: tuple, layout: Layout) -> tuple:
    """A canonical shape (batch first) as torch holds it, with B for the batch."""
    if layout.kind == "nchw":
        _, h, w, c = canonical
        return ("B", c, h, w)
    if layout.kind == "ncw":
        _, length, c = canonical
        return ("B", c, length)
    return ("B", *canonical[1:])


def pad_call(pads: tuple[int, int, int, int], expr: str, value: str = "") -> str:
    """F.pad of `expr` by the description's (top, bottom, left, right) `pads`, in F.pad's order (convert.pads_to_torch)."""
    return f"F.pad({expr}, {shape_text(convert.pads_to_torch(pads))}{', value=' + value if value else ''})"


def pad_reason(padding) -> str:
    """Why a layer pads by F.pad before it, not by its own symmetric `padding`."""
    return "TensorFlow's 'same': the odd pixel after" if padding == "same" else "explicit pads (left, right, top, bottom)"


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
    return shape_text(shape)


def module_source(model, cls, dtype, inits, lines, uses_f, native_layout, in_layout, out_layout, shapes, y_note,
                  helpers=(), returns="x") -> str:
    """model.py: the docstring (what x and y are, their layouts), the imports, DTYPE and INPUT_SHAPE, the helpers,
    the class with `inits` in __init__ and `lines` in forward (which returns `returns`), and load()."""
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
    out += [f"        return {returns}", "", "",
            "def load(path=None):",
            f'    """The {cls} module with the weights in `path` (default: weights.pt beside this file), in eval mode."""',
            '    path = Path(__file__).with_name("weights.pt") if path is None else Path(path)',
            f"    model = {cls}().to(DTYPE)",
            '    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))',
            "    return model.eval()", ""]  # fmt: skip
    return "\n".join(out)


__all__ = ["HELPERS", "act_comment", "activated", "attribute_names", "class_name", "module_source", "pad_call", "pad_reason",
           "pair_text", "shape_text", "torch_shape"]
