"""The torch port's code generator: a model description -> the source of an `nn.Module` and its state dict.

    code = generate(model, native_layout=False)
    code.source                   # model.py: imports only torch (and pathlib), one attribute per layer
    code.state                    # {"conv1.weight": array in torch's layout, ...}, what weights.pt holds
    code.back(layer, arrays)      # torch-layout arrays of one layer (weights or gradients) -> canonical ones
    code.held                     # per layer, the layout forward holds its output in
    generate(model, taps=True)    # the recording variant (in process only): forward returns (y, every layer's output)
    restate(code, model2)         # model2, of the same structure, as code's module holds it: its state, no source

One emitter per layer kind writes that layer's piece (its attribute's constructor, its lines of forward, its state
in torch's layout and how to read that back), registered in EMITTERS by the module of its family (recurrent,
embedding, convolution, pooling, normalization, activation, dense, shape); `generate` walks the graph and never
names a kind. Every weight-layout fact comes from impls/convert.py, called as `convert.<fn>` by the emitters.
Inside the module images are NCHW (and 1-D feature maps NCW); each emitter declares the torch layouts its input may
be held in (`takes`), and `generate` permutes a tensor held otherwise; `Layout` says what the port's boundary takes
and returns. A tensor read by a layer other than the next one is kept in a variable named after its layer.
Nothing here imports torch: the source is text, the state NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ... import convert  # noqa: F401  (the emitters' module; tests plant bugs in it as torch_code.convert)
from ...layouts import PLAIN, Layout
from ...model.description import INPUT, Model, ModelError
from ...model.layers import spec_of
from ...registry import Entry, Registry
from .source import HELPERS, attribute_names, class_name, module_source

VOICE = "torch_nn"
DTYPES = ("float32", "float64")


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
    held: list[Layout] = field(default_factory=list)  # per layer, in order: the layout forward holds its output in
    native_layout: bool = False

    def back(self, layer: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{state key: torch-layout array} (weights or their gradients) of `layer` -> {canonical weight name: array}."""
        prefix = self.attrs[layer] + "."
        return self.backs[layer]({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


@dataclass
class _Piece:
    """One layer's part of the module, as its emitter writes it."""

    init: str | None  # the attribute's constructor (None: the layer is a line of forward, no attribute)
    lines: list[str]  # forward lines, `{a}` for the attribute
    state: dict[str, np.ndarray]
    back: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    shape: tuple  # the output's torch shape, B for the batch
    layout: Layout
    uses_f: bool = False  # the lines call F (torch.nn.functional): the source imports it
    helpers: tuple[str, ...] = ()  # module-level helper functions the lines call (HELPERS' keys)


EMITTERS = Registry("the torch port", "layer kind")
"""Layer kind -> its emitter, `(layer, opts, shape, layout) -> _Piece`: `shape` the input's canonical shape (batch
1), `layout` how the input is held, one of the emitter's `takes`. What a registration may say besides:
    check=fn        fn(layer) -> None, or why torch.nn cannot hold this layer's options (torch_port.refusal asks it)
    takes=...       the torch layouts its input may be held in (the first: what another is converted to), or
                    fn(rank) -> them; default ("plain",). A merge's: the layouts its sources may share as held
    masked=True     it is called with masked= whether a padding mask reaches it (then `lengths` is in forward)
    merge=True      it is called as (layer, opts, shapes, exprs, layout) with every source in one layout
    reads_map=True  its 3-D input is a feature map, which a channels_first source holds (B, C, L)"""

ANY_LAYOUT = ("nchw", "ncw", "chw", "plain")


# --------------------------------------------------------------------------- the module


def _wants(entry: Entry, rank: int) -> tuple[str, ...]:
    """The torch layouts a kind takes for an input of `rank` (the first: what another is converted to)."""
    takes = entry.meta.get("takes", ("plain",))
    return takes(rank) if callable(takes) else takes


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
    readers = (EMITTERS.get(model.layers[i].kind) for i in model.consumers(INPUT))
    return len(model.input_shape) == 2 and any(e is not None and e.meta.get("reads_map") for e in readers)


def generate(model: Model, dtype: str | None = None, native_layout: bool = False, taps: bool = False) -> Code:
    """The port of `model` as source and state. dtype: the module's (DTYPE in the source), default the weights'.
    A graph is written as forward's lines in topological order; a tensor read by a layer other than the next one is
    kept in a variable named after its layer (the input: x_in). taps: the recording variant, for the in-process
    build only (never written): after each layer's lines one line appends `x` to a list, and forward returns
    (its output, that list); each entry is held as `Code.held` says."""
    w = _walk(model, dtype, native_layout, taps)
    source = module_source(model, w.cls, w.dtype, w.inits, w.lines, w.uses_f, native_layout, w.in_layout,
                           w.out_layout, w.shapes, w.y_note, w.helpers, w.returns)
    return Code(source, w.cls, w.dtype, w.state, w.attrs, w.in_layout, w.out_layout, w.backs, w.held, native_layout)


def restate(code: Code, model: Model) -> Code:
    """`model`, of the same structure as the model `code` was generated for (voices.structure: other weights, other
    layer names), as the module `code` describes holds it: its state dict under `code`'s attributes (layer by layer
    in order), its own back maps. The emitters lay out the weights; no source is written (source is code's)."""
    w = _walk(model, code.dtype, code.native_layout, False)
    mine = dict(zip(w.attrs.values(), code.attrs.values(), strict=True))  # model's attribute -> code's, by layer
    state = {f"{mine[k.split('.', 1)[0]]}.{k.split('.', 1)[1]}": v for k, v in w.state.items()}
    attrs = {name: code.attrs[old] for name, old in zip(w.attrs, code.attrs, strict=True)}
    return Code(code.source, code.class_name, code.dtype, state, attrs, code.inputs, code.outputs, w.backs, w.held,
                code.native_layout)


@dataclass
class _Walked:
    """What `_walk` wrote: the pieces of model.py's class and the state, before the source's text is put together."""

    cls: str
    dtype: str
    attrs: dict[str, str]
    shapes: list
    inits: list[str]
    lines: list[str]
    state: dict[str, np.ndarray]
    backs: dict
    held: list[Layout]
    uses_f: bool
    helpers: list[str]
    in_layout: Layout
    out_layout: Layout
    y_note: str
    returns: str


def _walk(model: Model, dtype: str | None, native_layout: bool, taps: bool) -> _Walked:
    """generate's walk of the graph: every layer's emitter, the layout conversions between them, and the boundary's."""
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
    tap = "taps"
    while tap in names.values():
        tap += "_"
    if taps:
        lines.insert(0, f"{tap} = []  # every layer's output, as forward holds it")

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
        entry = EMITTERS.get(layer.kind)
        if entry is None:
            raise ModelError(f"{layer.label(i)}: the torch port has no emitter for kind {layer.kind!r}")
        if entry.meta.get("merge"):
            ranks = {len(s) for s in in_shapes[i]}
            held = [layouts[s] for s in srcs]
            rank = ranks.pop()
            if all(h == held[0] for h in held) and held[0].kind in _wants(entry, rank):
                wants = (held[0].kind,)
            else:
                wants = ("nchw",) if rank == 4 else ("plain",)
            exprs = []
            for s in srcs:
                e, lay, _ = _convert("x" if s == current else names[s], layouts[s], wants, rank)
                exprs.append(e)
            extra = {"masked": masked[i] is not None} if entry.meta.get("masked") else {}
            p = entry.fn(layer, opts, in_shapes[i], exprs, lay, **extra)
        else:
            s = srcs[0]
            shape = tuple(in_shapes[i])
            src_expr = "x" if s == current else names[s]
            e, lay, done = _convert(src_expr, layouts[s], _wants(entry, len(shape)), len(shape))
            if e != "x":
                note = done or f"{layer.name!r} reads {s!r}"
                if done and s != current:
                    note = f"{layer.name!r} reads {s!r}; {done}"
                lines.append(f"x = {e}  # {note}")
            extra = {"masked": masked[i] is not None} if entry.meta.get("masked") else {}
            p = entry.fn(layer, opts, tuple(1 if d == "B" else d for d in shape), lay, **extra)
        helpers += [h for h in p.helpers if h not in helpers]
        a = attrs[layer.name]
        if p.init is not None:
            inits.append(f"self.{a} = {p.init}")
        lines.extend(line.replace("{a}", a) for line in p.lines)
        if taps:
            lines.append(f"{tap}.append(x)  # {layer.name!r}, held {p.layout.kind}")
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
    held = [layouts[la.name] for la in model.layers]
    return _Walked(class_name(model), dtype, attrs, shapes, inits, lines, state, backs, held, uses_f, helpers, in_layout,
                   out_layout, y_note, f"x, {tap}" if taps else "x")


def port_dtype(model: Model) -> str:
    """The dtype a written port computes in: its weights' common float dtype, else the input's, else float32."""
    kinds = {np.asarray(w).dtype.name for la in model.layers for w in la.weights.values()}
    if len(kinds) == 1 and next(iter(kinds)) in DTYPES:
        return next(iter(kinds))
    if not kinds and model.input_dtype in DTYPES:
        return model.input_dtype
    return "float32"


__all__ = ["ANY_LAYOUT", "DTYPES", "EMITTERS", "HELPERS", "VOICE", "Code", "Layout", "attribute_names", "class_name", "generate",
           "port_dtype", "restate"]
