"""The Flax port's code generator: a model description -> the text of model.py (`source`): its docstring (the
layout at its boundary, what each layer family translates), the imports, the mask helpers where a padding mask reaches a
recurrent layer, the linen Module whose __call__ runs each layer's emitter (impls/ports/flax_port/emit.py's EMITTERS),
and load().

Issue 18: the description is a graph, and __call__ keeps the values read again later (a merge's inputs, a tensor
read by a layer that is not the next one) in named variables (NAME_out; `inputs` for the model's input).

Issue 27: `source(model, record=True)` is the recording variant the built voice runs for Built.outputs, never
written: the same text, but __call__ also appends every layer's value but the last to `taps`, where Flax holds it
(channels last: the canonical layout, the boundary's transposes coming after the last layer), and returns
(the output, taps). The written model.py (record=False) is unchanged, byte for byte.
"""

from __future__ import annotations

import textwrap

from ...model.description import INPUT, Model
from ...model.layers import spec_of
from .emit import EMITTERS, MERGES, RECURRENT, bidirectional, flax_names, has_state, masked, port_dtype
from .layout import boundary_shape, first_perm, last_perm, transposes
from .normalization import batch_norm_notes


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(str(d) for d in shape[1:]) + ")"


_MASK_HELPERS = textwrap.dedent('''\
    def padded_zero(y, lengths):
        """y (B, T, H) with each row's padded steps (t >= lengths[b]) zero. nn.RNN leaves there what the cell
        computes running on over the padding."""
        valid = jnp.arange(y.shape[1])[None, :] < lengths[:, None]
        return jnp.where(valid[:, :, None], y, 0.0)


    def padded_hold(y, lengths):
        """y (B, T, H) with each padded step repeating its row's last valid step; a row of length 0 all zeros."""
        last = jnp.clip(jnp.minimum(jnp.arange(y.shape[1])[None, :], lengths[:, None] - 1), 0, None)
        held = jnp.take_along_axis(y, last[:, :, None], axis=1)
        return jnp.where((lengths > 0)[:, None, None], held, 0.0)


    def nonempty(h, lengths):
        """A final state h (B, H) with the rows of length 0 zero: nn.RNN's carry for such a row is the one at index
        lengths - 1 = -1, after the whole padding."""
        return jnp.where((lengths > 0)[:, None], h, 0.0)


    ''').splitlines()


def _helpers(model: Model) -> list[str]:
    """The module-level text (a small linen Module) that the emitters of the model's kinds call, registered with
    their emitter as `helper=` (layer_scale's ChannelScale), once each, before the Model."""
    entries = (EMITTERS.get(la.kind) for la in model.layers)
    texts = dict.fromkeys(e.meta.get("helper") for e in entries if e is not None)
    return [line for text in texts if text for line in (*text.splitlines(), "", "")]


def _kept(model: Model) -> set[str]:
    """Tensors (INPUT or layer names) the generated code keeps in a named value: those a merge reads, or a layer
    that is not the next one."""
    out = set()
    for i, la in enumerate(model.layers):
        previous = model.layers[i - 1].name if i else INPUT
        for s in model.sources(i):
            if la.kind in MERGES or s != previous:
                out.add(s)
    return out


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 110)


def _layout(model: Model, native_layout: bool, t_in: bool, t_out: bool) -> str:
    """The docstring's sentence on the layout at the boundary."""
    if native_layout:
        return ("Native layout (--native-layout): it takes and returns Flax's own layout, images NHWC and "
                "sequences (B, T, F), with no transposes at its boundary.")
    if t_in or t_out:
        flat = ", and its flattened output in the source's (c, h, w) order." if model.flattened_output() else "."
        return ("It keeps the source's layout: feature maps channels first at its boundary (NCHW images, NCW 1-D "
                "maps: the source is channels_first), transposed to Flax's channels last inside" + flat)
    return "It keeps the source's layout (images NHWC, sequences (B, T, F)), which is Flax's own."


def _notes(model: Model) -> list[str]:
    """The docstring's paragraphs: what the port translates, one a layer family the model holds."""
    notes = []
    if any(la.kind == "gru" for la in model.layers):
        notes.append("GRU layers are flax.linen.GRUCell (reset_after) under nn.RNN, zero initial state. The cell has "
                     "four biases: each of the z and r gates' two biases (input and recurrent) is held folded as one "
                     "sum, which computes the same forward exactly; a training step then sees four biases instead "
                     "of six.")
    if any(la.kind == "lstm" for la in model.layers):
        notes.append("LSTM layers are flax.linen.LSTMCell under nn.RNN, zero initial state, gates (i, f, g, o). The "
                     "cell has one bias per gate (on its hidden Dense): each gate's two biases (input and recurrent) "
                     "are held folded as one sum, which computes the same forward exactly; a training step then "
                     "moves one bias where the source moves two.")
    if any(bidirectional(la) for la in model.layers):
        notes.append("A bidirectional layer is nn.Bidirectional: its backward cell (named NAME_backward) runs each "
                     "row's valid steps last first and its outputs are aligned back to the input positions; its final "
                     "state is the one after position 0.")
    if any(la.kind == "embedding" for la in model.layers):
        notes.append("Embedding is nn.Embed, which looks ids up with jnp.take: an id >= input_dim gives a row of NaN "
                     "and a negative id wraps to a row from the end, with no error (the source raises or differs); "
                     "pass ids in [0, input_dim).")
    if masked(model):
        notes.append("Padded sequences: each row's valid steps must come first (post-padded); the code takes each "
                     "row's length as the mask's sum, so a pre-padded or gapped mask is computed as if its valid "
                     "steps came first. nn.RNN gets the lengths as seq_lengths; what it leaves at padded steps "
                     "(the cell run on over the padding) is replaced as the source computes it: zeros, or the "
                     "last valid step held (padded_zero, padded_hold), and a row of length 0 gives zeros.")
    if any(la.kind == "dropout" for la in model.layers):
        notes.append("Dropout is the identity at inference and is left out.")
    if has_state(model):
        notes.append("BatchNorm is nn.BatchNorm on the last (channel) axis; its moving statistics are the "
                     "\"batch_stats\" collection (variables.npz keys batch_stats:LAYER/mean, /var). Inference "
                     "(train=False) uses them; module.apply(variables, x, train=True, mutable=[\"batch_stats\"]) "
                     "normalises by the batch and returns the updated statistics: momentum is the old value's share, "
                     "and Flax updates var with the biased batch variance.")
        if batch_norm_notes(model):
            notes.append("The source updates a BatchNorm's running variance with the UNBIASED batch variance "
                         "(torch's convention), which nn.BatchNorm cannot: this port is forward-exact, but a "
                         "training step here moves var by the biased one.")
    if not model.is_chain():
        notes.append("The model is a graph: __call__ keeps the values read again later in named variables "
                     "(NAME_out).")
    return notes


def _body(model: Model, native_layout: bool, t_in: bool, t_out: bool, record: bool = False) -> list[str]:
    """The lines of __call__: each layer's emitter, the named values, the boundary transposes; with `record`, the
    taps too (every layer's value but the last, which is the output) and (x, taps) returned."""
    shapes = model.shapes(1)
    body = [TAPS] if record else []
    rank_in, rank_out = len(shapes[0]), len(shapes[-1])
    if t_in:
        body.append(f"x = jnp.transpose(x, {last_perm(rank_in)!r})  # channels first -> last: Flax's layout inside")
    names = flax_names(model)
    kept = _kept(model)
    var = {INPUT: "inputs", **{la.name: f"{n}_out" for la, n in zip(model.layers, names, strict=True)}}
    if INPUT in kept:
        body.append("inputs = x  # the model's input, read again below")
    sources, in_shapes = model.mask_sources(), model.input_shapes(1)
    for i, (layer, name) in enumerate(zip(model.layers, names, strict=True)):
        opts = spec_of(layer.kind).options(layer.options)
        srcs = model.sources(i)
        reads = "" if model.is_chain() else f" <- {', '.join(srcs)}"
        body.append(f"# {i} {layer.name!r} ({layer.kind}){reads} -> {_fmt_shape(shapes[i + 1])}")
        extra = {"masked": sources[i] is not None} if layer.kind in RECURRENT or (
            layer.kind not in MERGES and EMITTERS.get(layer.kind).meta.get("masked")) else {}  # a masked mean's too
        if layer.kind in MERGES:
            extra = {"ins": [var[s] for s in srcs]}
            if EMITTERS.get(layer.kind).meta.get("masked"):  # attention: its keys' padding
                extra["masked"] = sources[i] is not None
        elif srcs[0] != (model.layers[i - 1].name if i else INPUT):
            body.append(f"x = {var[srcs[0]]}")
        body.extend(EMITTERS.get(layer.kind).fn(name, opts, in_shapes[i], **extra))
        if layer.name in kept:
            body.append(f"{var[layer.name]} = x")
        if record and i < len(model.layers) - 1:
            body.append(TAP)
    if t_out:
        body.append(f"x = jnp.transpose(x, {first_perm(rank_out)!r})  # channels last -> first: the source's layout out")
    flat = None if native_layout else model.flattened_output()
    if flat:
        body.append(f"x = jnp.transpose(x.reshape((x.shape[0], {', '.join(map(str, flat))})), (0, 3, 1, 2)).reshape((x.shape[0], -1))"
                    "  # the flattened features in the source's (c, h, w) order")
    body.append("return x, taps" if record else "return x")
    return body


TAPS = "taps = []  # the recording variant: every layer's value but the last, as held here (channels last, canonical)"
TAP = "taps.append(x)"


_LOAD = [  # load(): reads variables.npz into the variables tree
    "",
    "",
    "def load(path=None, dtype=DTYPE):",
    '    """(module, variables), so that module.apply(variables, x) runs the model. path: the params\' .npz or its',
    '    folder (default: variables.npz beside this file); dtype: the params\' dtype (float64 turns on',
    '    jax_enable_x64, without which JAX computes float64 inputs in float32)."""',
    "    if np.dtype(dtype) == np.float64 and not jax.config.read(\"jax_enable_x64\"):",
    "        jax.config.update(\"jax_enable_x64\", True)  # else JAX casts float64 params and inputs to float32",
    "    path = Path(__file__).with_name(\"variables.npz\") if path is None else Path(path)",
    "    path = path / \"variables.npz\" if path.is_dir() else path",
    "    variables = {}",
    "    with np.load(path, allow_pickle=False) as arrays:",
    "        for key in arrays.files:  # 'layer/weight', 'layer/gate/weight' (params) or 'batch_stats:layer/mean'",
    "            collection, _, key_path = key.rpartition(\":\")",
    "            *parents, leaf = key_path.split(\"/\")",
    "            node = variables.setdefault(collection or \"params\", {})",
    "            for p in parents:",
    "                node = node.setdefault(p, {})",
    "            node[leaf] = jnp.asarray(arrays[key], dtype=dtype)",
    "    return Model(), variables",
    "",
]


def source(model: Model, native_layout: bool = False, record: bool = False) -> str:
    """The text of model.py; with `record`, its recording variant (the built voice's Built.outputs; never written)."""
    shapes = model.shapes(1)
    t_in, t_out = transposes(model, native_layout)
    x_shape, y_shape = boundary_shape(shapes[0], t_in), boundary_shape(shapes[-1], t_out)
    layout = _layout(model, native_layout, t_in, t_out)
    notes = _notes(model)
    lines = [
        '"""' + f"Flax port of the model {model.name!r} (source: {model.source}), written by nnparity.",
        "",
        *_wrap(f"Input x {_fmt_shape(x_shape)}, output {_fmt_shape(y_shape)}. {layout}"),
        *(line for note in notes for line in ("", *_wrap(note))),
        "",
        "    from model import load",
        "    module, variables = load()          # params in DTYPE; a float64 load() turns on jax_enable_x64",
        "    y = module.apply(variables, x)",
        "",
        'Imports only jax, flax and numpy; the params are variables.npz beside this file, read with allow_pickle=False.',
        '"""',
        "",
        "from pathlib import Path",
        "",
        "import flax.linen as nn",
        "import jax",
        "import jax.numpy as jnp",
        "import numpy as np",
        "",
        f"INPUT_SHAPE = {tuple(x_shape[1:])!r}  # one sample, batch left out, in this port's layout",
        f"OUTPUT_SHAPE = {tuple(y_shape[1:])!r}",
        f'DTYPE = "{port_dtype(model)}"',
        "",
        "",
        *(_MASK_HELPERS if masked(model) else []),
        *_helpers(model),
        "class Model(nn.Module):",
        "    @nn.compact",
        "    def __call__(self, x, train: bool = False):" if has_state(model) else "    def __call__(self, x):",
    ]
    if has_state(model):
        lines += ['        """train=True: BatchNorm normalises by the batch and updates "batch_stats" (apply with',
                  '        mutable=["batch_stats"]); False (inference): the moving statistics."""']
    lines += ["        " + b for b in _body(model, native_layout, t_in, t_out, record)]
    return "\n".join(lines + _LOAD)


__all__ = ["source"]
