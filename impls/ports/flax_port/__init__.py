"""The Flax port: a model description -> `OUT/model.py` (readable flax.linen code that imports only jax, flax and
numpy) and `OUT/variables.npz` (the params, flat, read with allow_pickle=False). The voice "flax" of the general
path is that very code, imported from a temporary folder and run under jax.jit.

    files = write(model, Path("out"))        # out/model.py, out/variables.npz
    from model import load                   # (with out/ on the path; no nnparity needed)
    module, variables = load()
    y = module.apply(variables, x)

Each layer kind is one line of linen (`_CODE`): GRU as nn.RNN(nn.GRUCell) (reset_after only, the z and r biases
folded: convert.gru_to_flax), LSTM as nn.RNN(nn.LSTMCell) (one bias per gate, b_x + b_h folded: convert.lstm_to_flax),
a bidirectional GRU or LSTM as nn.Bidirectional of two nn.RNNs (the backward one reverse=True, keep_order=True, so its
outputs come back aligned to the input's positions; concat is forward then backward, sum/ave/mul a merge_fn; final
states are the carries, the backward one after position 0), Embedding as nn.Embed, Masking as a multiply by the
mask, take_step as x[:, index], Conv2D as nn.Conv (strides, padding incl. explicit pairs, kernel_dilation,
feature_group_count), DepthwiseConv2D as nn.Conv with feature_group_count = C on the grouped kernel, pools as
nn.max_pool / nn.avg_pool, zero padding as jnp.pad, Flatten as a reshape (NHWC order, the canonical one), Dense as
nn.Dense (2-D or the last axis of 3-D), Dropout left out (identity at inference). Flax is NHWC: a model whose
`boundary` is channels_first gets its NCHW <-> NHWC transposes written at the port's boundary, unless
native_layout, which takes and returns NHWC and says so in the docstring.

Issue 18: the description is a graph, and __call__ keeps the values read again later (a merge's inputs, a tensor
read by a layer that is not the next one) in named variables (NAME_out; `inputs` for the model's input). Conv1D is
nn.Conv on NWC with a (K,) kernel (Flax's own layout, (K, C / groups, filters)), "same" as "SAME" (TensorFlow's),
"causal" and explicit pads written as padding pairs, kernel_dilation, feature_group_count. BatchNorm is
nn.BatchNorm (use_running_average=not train): its params scale/bias (gamma/beta, present as scale/center say) and
its moving statistics the "batch_stats" collection {mean, var} (variables.npz keys "batch_stats:LAYER/mean");
flax 0.12.8's momentum is the old value's share (the description's: convert.batch_norm_momentum_to_flax is the
identity) and it updates var with the biased batch variance, so variance_update "unbiased" (torch) is forward-exact
only (batch_norm_notes: a training step moves var in Flax's convention). use_fast_variance=False (E[(x - mu)^2], not E[x^2] - mu^2).
LayerNorm is nn.LayerNorm (use_bias/use_scale = center/scale). Global pools are jnp.mean over the spatial axes
and, for the maximum, argmax + take_along_axis (its gradient to the first maximum, the contract's; jnp.max would
share it between ties). Reshape, Permute (jnp.transpose), add (+) and concatenate (jnp.concatenate) are one line
each. A channels_first source's 1-D feature maps (feature_maps) are (B, C, L) at the boundary, as its images NCHW.

Padded sequences (an embedding with mask_zero or a masking layer first): the generated code computes each row's
`lengths` from the mask source (post-padded, which Model.check_input checks at every voice's boundary; the file
itself does not) and passes them to nn.RNN / nn.Bidirectional as seq_lengths. Flax then reverses only each row's
valid steps for the backward cell and picks each row's carry at step lengths - 1, but it does NOT zero the outputs
at padded steps (the cell runs on over the padding), and a row of length 0 gets the carry after the whole padding.
The file reproduces the contract (impls/model/layers/rnn.py) exactly on top: padded steps zeroed ("zero") or the
last valid step repeated ("hold", the backward half zero), and a length-0 row's final state zero.

Training (`train_step`) is optax.adam with its defaults (eps 1e-8 after the bias-corrected sqrt(v), eps_root 0:
optax/_src/transform.py's scale_by_adam, torch's convention), which is exact for every layer but a GRU or an LSTM: the
GRU cell holds b_x + b_h of the z and r gates as one parameter and the LSTM cell every gate's, so Adam moves their
sum by one step where two separate biases move by one step each. `train_step` returns that in its notes, and
`project_for_training` is the reference model in the cells' own parametrization to compare the step with.
"""

from __future__ import annotations

import importlib.util
import itertools
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import GRU_VARIANTS, convert, frameworks
from ..contract import limits
from ..contract.spec import GRUWeights, LSTMWeights
from ..model import training
from ..model.description import INPUT, Model
from ..model.layers import spec_of
from ..model.layers.rnn import CELL_WEIGHTS
from ..model.voices import Built

VOICE = "flax"
DTYPES = ("float32", "float64")
NOT_TRAINING_EXACT = (
    "not training-exact: flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each (four biases, not "
    "six), so one Adam step moves each folded sum by one step (~lr) where the reference moves b_x and b_h by one "
    "step each (~2 lr on the sum); the GRU biases returned are the cell's, read back as convert.flax_folded_bias "
    "(b_h of z and r zero)")
NOT_TRAINING_EXACT_LSTM = (
    "not training-exact: flax.linen.LSTMCell holds each gate's b_x + b_h as one bias (on its hidden Dense), so one "
    "Adam step moves each folded sum by one step (~lr) where the reference moves b_x and b_h by one step each (~2 lr "
    "on the sum); the LSTM biases returned are the cell's, read back as convert.flax_lstm_folded_bias (b_h zero)")
RECURRENT = ("gru", "lstm")
_CELL = {"gru": "nn.GRUCell", "lstm": "nn.LSTMCell"}
_ACTIVATION = {"relu": "nn.relu(x)", "softmax": "nn.softmax(x, axis=-1)", "tanh": "jnp.tanh(x)",
               "sigmoid": "nn.sigmoid(x)"}


# --------------------------------------------------------------------------- what the port can express


def refusal(model: Model, dtype: str) -> str | None:
    """Why the Flax port cannot express `model` in `dtype`, naming the layer; None when it can."""
    if str(dtype) not in DTYPES:
        return f"the Flax port builds float32 or float64 (float64 under jax_enable_x64), not {dtype}"
    for i, layer in enumerate(model.layers):
        if layer.kind not in _CODE:
            return f"{layer.label(i)}: the Flax port has no layer for kind {layer.kind!r}; it writes {', '.join(_CODE)}"
        opts = spec_of(layer.kind).options(layer.options)
        if layer.kind == "gru" and opts["variant"] not in GRU_VARIANTS[VOICE]:
            return (f"{layer.label(i)}: GRU variant {opts['variant']!r}: flax.linen.GRUCell computes "
                    f"{', '.join(GRU_VARIANTS[VOICE])} only (n = tanh(x W_in + b_in + r * (h W_hn + b_hn))); the "
                    "'jax' voice from primitives computes every variant")
        if i > 0 and layer.kind in ("embedding", "masking") and spec_of(layer.kind).makes_mask(opts, False):
            return (f"{layer.label(i)}: a padding mask made after the first layer: the port computes each row's "
                    "valid length as the mask's sum, which holds only for the post-padded masks that the model's "
                    "boundary check (Model.check_input) verifies at layer 0")
        op = {"depthwise_conv2d": "conv2d"}.get(layer.kind, layer.kind)
        declared = limits.refusal(VOICE, op, dtype, **_limit_options(layer.kind, opts))
        if declared is not None:
            return f"{layer.label(i)}: {declared}"
    return None


def _limit_options(kind: str, opts: dict) -> dict:
    """The options as impls/contract/limits.py names them (the op contract's keywords)."""
    if kind in ("conv2d", "depthwise_conv2d"):
        return {"stride": opts["strides"], "padding": opts["padding"], "dilation": opts["dilation"]}
    if kind in ("max_pool2d", "avg_pool2d"):
        return {"stride": opts["strides"], "padding": opts["padding"],
                **({"count_include_pad": opts["count_include_pad"]} if kind == "avg_pool2d" else {})}
    return {}


# --------------------------------------------------------------------------- the generated code, one kind a function


def _pad(padding: Any) -> str:
    return f'"{padding.upper()}"' if isinstance(padding, str) else repr(tuple(tuple(p) for p in padding))


def _pair(v: list[int]) -> str:
    return repr(tuple(v))


def _act(opts: dict) -> list[str]:
    a = opts.get("activation", "linear")
    return [] if a == "linear" else [f"x = {_ACTIVATION[a]}"]


def backward_name(name: str) -> str:
    """The Flax name of a bidirectional layer's backward cell (the forward one is the layer's own name)."""
    return f"{name}_backward"


def _merge(mode: str, a: str, b: str) -> str:
    return {"concat": f"jnp.concatenate([{a}, {b}], axis=-1)", "sum": f"{a} + {b}", "ave": f"({a} + {b}) * 0.5",
            "mul": f"{a} * {b}"}[mode]


def _recurrent(kind: str, name: str, opts: dict, in_shape, masked: bool = False) -> list[str]:
    """nn.RNN (forward) or nn.Bidirectional; under a mask, seq_lengths and the contract's padded steps on top."""
    cell = lambda n: f'{_CELL[kind]}({opts["units"]}, param_dtype=x.dtype, name="{n}")'
    seq, lengths = opts["return_sequences"], (", seq_lengths=lengths" if masked else "")
    h = "(_, {})" if kind == "lstm" else "{}"  # the LSTM's carry is (c, h)
    what = "h, the last valid step's" if masked else "h_T"
    if opts["direction"] == "forward":
        rnn = f"nn.RNN({cell(name)}"
        if seq and not masked:
            return [f"x = {rnn})(x)  # the sequence of states"]
        if seq:
            fix = "padded_zero" if opts["padded_outputs"] == "zero" else "padded_hold"
            return [f"x = {fix}({rnn})(x{lengths}), lengths)  # padded steps: {opts['padded_outputs']}"]
        lines = [f"{h.format('x')}, _ = {rnn}, return_carry=True)(x{lengths})  # the final state {what} (the carry)"]
        return [*lines, "x = nonempty(x, lengths)  # a row of length 0: zeros"] if masked else lines
    mode = opts["merge_mode"]
    fn = "" if mode == "concat" else f", merge_fn=lambda f, b: {_merge(mode, 'f', 'b')}"
    pair = ", merge_fn=lambda f, b: (f, b)"
    bi = "nn.Bidirectional(forward, backward"
    head = [f"# bidirectional, merge {mode}: the backward RNN runs each row's valid steps last first (reverse=True,",
            "# keep_order=True: its outputs aligned back to the input positions)",
            f"forward = nn.RNN({cell(name)})", f"backward = nn.RNN({cell(backward_name(name))})"]
    if seq and not masked:
        return [*head, f"x = {bi}{fn})(x)"]
    if seq and opts["padded_outputs"] == "zero":
        return [*head, f"x = padded_zero({bi}{fn})(x{lengths}), lengths)  # padded steps zero in both halves"]
    if seq:
        return [*head, f"fwd, bwd = {bi}{pair})(x{lengths})",
                "# padded steps: the forward half holds the row's last valid step, the backward half is zero",
                f"x = {_merge(mode, 'padded_hold(fwd, lengths)', 'padded_zero(bwd, lengths)')}"]
    carry = f"({h.format('fwd')}, {h.format('bwd')})"
    lines = [*head, f"{carry}, _ = {bi}, return_carry=True)(x{lengths})",
             "# final states: forward after the last (valid) step, backward after position 0"]
    if masked:
        return [*lines, f"x = {_merge(mode, 'nonempty(fwd, lengths)', 'nonempty(bwd, lengths)')}  # length 0: zeros"]
    return [*lines, f"x = {_merge(mode, 'fwd', 'bwd')}"]


def _gru(name, opts, in_shape, masked=False):
    return _recurrent("gru", name, opts, in_shape, masked)


def _lstm(name, opts, in_shape, masked=False):
    return _recurrent("lstm", name, opts, in_shape, masked)


def _embedding(name, opts, in_shape):
    lines = []
    if opts["mask_zero"]:
        lines.append("lengths = jnp.sum(x != 0, axis=1)  # mask_zero: id 0 is padding, each row's valid ids first")
    return [*lines, f'x = nn.Embed({opts["input_dim"]}, {opts["output_dim"]}, name="{name}")(x)  # ids (B, T) -> rows']


def _masking(name, opts, in_shape):
    v = opts["mask_value"]
    return [f"mask = jnp.any(x != {v!r}, axis=-1)  # a step is padding when all its features are {v!r}",
            "lengths = jnp.sum(mask, axis=1)  # each row's valid steps first",
            "x = x * mask[:, :, None].astype(x.dtype)  # the padded steps zeroed, as Keras' Masking outputs"]


def _take_step(name, opts, in_shape):
    return [f"x = x[:, {opts['index']}]  # one time step"]


def _conv2d(name, opts, in_shape, groups=None, filters=None, note=""):
    groups = opts["groups"] if groups is None else groups
    filters = opts["filters"] if filters is None else filters
    first = (f"x = nn.Conv({filters}, {_pair(opts['kernel_size'])}, strides={_pair(opts['strides'])}, "
             f"padding={_pad(opts['padding'])}, kernel_dilation={_pair(opts['dilation'])},{note}")
    second = f'            feature_group_count={groups}, use_bias={opts["use_bias"]}, name="{name}")(x)'
    return [first, second, *_act(opts)]


def _depthwise(name, opts, in_shape):
    c = in_shape[3]
    return _conv2d(name, opts, in_shape, groups=c, filters=c * opts["depth_multiplier"],
                   note=f"  # depthwise: groups = C = {c}, kernel (KH, KW, 1, C * M)")


def _max_pool(name, opts, in_shape):
    return [(f"x = nn.max_pool(x, {_pair(opts['pool_size'])}, strides={_pair(opts['strides'])}, "
             f"padding={_pad(opts['padding'])})")]


def _avg_pool(name, opts, in_shape):
    return ["# avg_pool divides by a count in JAX's default float dtype (float64 under x64): keep the input's",
            (f"x = nn.avg_pool(x, {_pair(opts['pool_size'])}, strides={_pair(opts['strides'])}, "
             f"padding={_pad(opts['padding'])}, count_include_pad={opts['count_include_pad']}).astype(x.dtype)")]


def _zero_pad(name, opts, in_shape):
    (t, b), (l, r) = opts["padding"]
    return [f"x = jnp.pad(x, ((0, 0), ({t}, {b}), ({l}, {r}), (0, 0)))  # zeros: (top, bottom), (left, right)"]


def _flatten(name, opts, in_shape):
    order = "(h, w, c)" if len(in_shape) == 4 else "(l, c)" if len(in_shape) == 3 else "row-major"
    return [f"x = x.reshape((x.shape[0], -1))  # flattened in the canonical {order} order"]


def _dense(name, opts, in_shape):
    return [f'x = nn.Dense({opts["units"]}, use_bias={opts["use_bias"]}, name="{name}")(x)', *_act(opts)]


def _activation(name, opts, in_shape):
    return _act(opts) or ["pass  # linear: the identity"]


def _dropout(name, opts, in_shape):
    return [f"# dropout (rate {opts['rate']}): the identity at inference, so the port leaves it out"]


def _conv1d(name, opts, in_shape):
    p = opts["padding"]
    K, d = opts["kernel_size"], opts["dilation"]
    if p == "causal":
        pad, note = repr((((K - 1) * d, 0),)), f"  # causal: (K - 1) * dilation = {(K - 1) * d} before, none after"
    elif isinstance(p, str):
        pad, note = f'"{p.upper()}"', ("  # TensorFlow's SAME: the odd pad after" if p == "same" else "")
    else:
        pad, note = repr(((p[0], p[1]),)), "  # (left, right)"
    first = (f"x = nn.Conv({opts['filters']}, ({K},), strides=({opts['strides']},), padding={pad}, "
             f"kernel_dilation=({d},),")
    second = f'            feature_group_count={opts["groups"]}, use_bias={opts["use_bias"]}, name="{name}")(x)'
    return [f"# NWC, kernel (K, C / groups, filters){';' + note[3:] if note else ''}", first, second, *_act(opts)]


def _batch_norm(name, opts, in_shape):
    m = convert.batch_norm_momentum_to_flax(opts["momentum"])
    return [(f"x = nn.BatchNorm(use_running_average=not train, momentum={m!r}, epsilon={opts['epsilon']!r}, "
             f"use_bias={opts['center']}, use_scale={opts['scale']},"),
            f'                 use_fast_variance=False, name="{name}")(x)  # the last (channel) axis']


def _layer_norm(name, opts, in_shape):
    return [(f"x = nn.LayerNorm(epsilon={opts['epsilon']!r}, use_bias={opts['center']}, use_scale={opts['scale']}, "
             f'use_fast_variance=False, name="{name}")(x)  # the last axis')]


def _spatial(in_shape) -> str:
    return repr(tuple(range(1, len(in_shape) - 1)))


def _global_avg_pool(name, opts, in_shape):
    return [f"x = jnp.mean(x, axis={_spatial(in_shape)})  # global average over the spatial axes -> (B, C)"]


def _global_max_pool(name, opts, in_shape):
    return ["# global maximum over the spatial axes -> (B, C), its gradient to the first maximum (row-major), as the",
            "# contract's (jnp.max would share it between tied maxima)",
            "flat = x.reshape((x.shape[0], -1, x.shape[-1]))",
            "x = jnp.take_along_axis(flat, jnp.argmax(flat, axis=1)[:, None, :], axis=1)[:, 0, :]"]


def _reshape(name, opts, in_shape):
    return [f"x = x.reshape((x.shape[0], {', '.join(map(str, opts['target_shape']))}))  # row-major, batch kept"]


def _permute(name, opts, in_shape):
    return [f"x = jnp.transpose(x, {(0, *opts['dims'])!r})  # Keras' Permute{tuple(opts['dims'])!r}, batch kept"]


def _add(name, opts, in_shape, ins):
    return [f"x = {' + '.join(ins)}"]


def _concatenate(name, opts, in_shape, ins):
    return [f"x = jnp.concatenate([{', '.join(ins)}], axis={opts['axis']})"]


_CODE: dict[str, Callable[..., list[str]]] = {
    "gru": _gru, "lstm": _lstm, "embedding": _embedding, "masking": _masking, "take_step": _take_step, "conv2d": _conv2d, "depthwise_conv2d": _depthwise, "max_pool2d": _max_pool, "avg_pool2d": _avg_pool,
    "zero_pad2d": _zero_pad, "flatten": _flatten, "dense": _dense, "activation": _activation, "dropout": _dropout,
    "conv1d": _conv1d, "batch_norm": _batch_norm, "layer_norm": _layer_norm, "global_avg_pool": _global_avg_pool,
    "global_max_pool": _global_max_pool, "reshape": _reshape, "permute": _permute, "add": _add,
    "concatenate": _concatenate,
}  # fmt: skip
MERGES = ("add", "concatenate")
NORMS = ("batch_norm", "layer_norm")


def _bidirectional(layer) -> bool:
    return layer.kind in RECURRENT and spec_of(layer.kind).options(layer.options)["direction"] == "bidirectional"


def flax_names(model: Model) -> list[str]:
    """Each layer's name in the Flax tree: the source's name made an identifier, unique (a bidirectional layer's
    backward cell, backward_name(name), too)."""
    out: list[str] = []
    taken: set[str] = set()
    for layer in model.layers:
        base = re.sub(r"\W", "_", layer.name) or layer.kind
        base = f"_{base}" if base[0].isdigit() else base
        name = base
        for n in itertools.count(1):
            if name not in taken and not (_bidirectional(layer) and backward_name(name) in taken):
                break
            name = f"{base}_{n}"
        out.append(name)
        taken |= {name, *([backward_name(name)] if _bidirectional(layer) else [])}
    return out


MAP_READERS = ("conv1d", "batch_norm", "global_avg_pool", "global_max_pool")
"""Kinds that read a 3-D tensor as a feature map (B, L, C): a channels_first source holds it (B, C, L)."""
MAP_KEEPERS = ("batch_norm", "activation", "dropout", "add", "concatenate")
"""Kinds whose 3-D output is a feature map where their (first) input is one."""


def feature_maps(model: Model) -> list[bool]:
    """[the input, layer 0's output, ...]: whether the tensor is a feature map a channels_first source holds channels
    first (docs/DESIGN.md, "Layouts"): every 4-D image; a 3-D tensor that a conv1d makes, that a batch_norm /
    activation / dropout / merge passes on from a map, or the model's 3-D input where a conv1d, a batch_norm or a
    global pool reads it. A sequence read by a recurrent layer or a dense stays (B, T, F)."""
    shapes = model.shapes(1)
    maps = [len(shapes[0]) == 4 or (len(shapes[0]) == 3 and any(
        model.layers[i].kind in MAP_READERS for i in model.consumers(INPUT)))]
    for i, la in enumerate(model.layers):
        rank = len(shapes[i + 1])
        first = model.source_indices(i)[0] + 1
        maps.append(rank == 4 or (rank == 3 and (la.kind == "conv1d" or (la.kind in MAP_KEEPERS and maps[first]))))
    return maps


def _transposes(model: Model, native_layout: bool) -> tuple[bool, bool]:
    """(transpose the input NC... -> N...C, transpose the output N...C -> NC...) at the port's boundary: a
    channels_first source's feature maps (feature_maps: images, 1-D maps)."""
    if native_layout or model.boundary != "channels_first":
        return False, False
    maps = feature_maps(model)
    return maps[0], maps[-1]


def _boundary_shape(shape: tuple[int, ...], transposed: bool) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if transposed else tuple(shape)


def _first_perm(rank: int) -> tuple[int, ...]:
    """N...C -> NC...: (0, 3, 1, 2) for an image, (0, 2, 1) for a 1-D map."""
    return (0, rank - 1, *range(1, rank - 1))


def _last_perm(rank: int) -> tuple[int, ...]:
    """NC... -> N...C: (0, 2, 3, 1) for an image, (0, 2, 1) for a 1-D map."""
    return (0, *range(2, rank), 1)


def _fmt_shape(shape: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(str(d) for d in shape[1:]) + ")"


def _masked(model: Model) -> bool:
    """Whether a padding mask reaches a recurrent layer (the generated code then needs its helpers)."""
    return any(s is not None and la.kind in RECURRENT for s, la in zip(model.mask_sources(), model.layers, strict=True))


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


def _has_state(model: Model) -> bool:
    """Whether the model holds state (a BatchNorm's moving statistics: Flax's "batch_stats" collection)."""
    return bool(model.state())


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


def port_dtype(model: Model) -> str:
    """The dtype the port loads its params in by default: the source's input dtype where it is a float."""
    return model.input_dtype if model.input_dtype in DTYPES else "float32"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, 110)


def source(model: Model, native_layout: bool = False) -> str:
    """The text of model.py."""
    shapes = model.shapes(1)
    t_in, t_out = _transposes(model, native_layout)
    x_shape, y_shape = _boundary_shape(shapes[0], t_in), _boundary_shape(shapes[-1], t_out)
    if native_layout:
        layout = ("Native layout (--native-layout): it takes and returns Flax's own layout, images NHWC and "
                  "sequences (B, T, F), with no transposes at its boundary.")
    elif t_in or t_out:
        layout = ("It keeps the source's layout: feature maps channels first at its boundary (NCHW images, NCW 1-D "
                  "maps: the source is channels_first), transposed to Flax's channels last inside" + (", and its flattened output in the source's (c, h, w) order."
                                                        if model.flattened_output() else "."))
    else:
        layout = "It keeps the source's layout (images NHWC, sequences (B, T, F)), which is Flax's own."
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
    if any(_bidirectional(la) for la in model.layers):
        notes.append("A bidirectional layer is nn.Bidirectional: its backward cell (named NAME_backward) runs each "
                     "row's valid steps last first and its outputs are aligned back to the input positions; its final "
                     "state is the one after position 0.")
    if any(la.kind == "embedding" for la in model.layers):
        notes.append("Embedding is nn.Embed, which looks ids up with jnp.take: an id >= input_dim gives a row of NaN "
                     "and a negative id wraps to a row from the end, with no error (the source raises or differs); "
                     "pass ids in [0, input_dim).")
    if _masked(model):
        notes.append("Padded sequences: each row's valid steps must come first (post-padded); the code takes each "
                     "row's length as the mask's sum, so a pre-padded or gapped mask is computed as if its valid "
                     "steps came first. nn.RNN gets the lengths as seq_lengths; what it leaves at padded steps "
                     "(the cell run on over the padding) is replaced as the source computes it: zeros, or the "
                     "last valid step held (padded_zero, padded_hold), and a row of length 0 gives zeros.")
    if any(la.kind == "dropout" for la in model.layers):
        notes.append("Dropout is the identity at inference and is left out.")
    if _has_state(model):
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
        *(_MASK_HELPERS if _masked(model) else []),
        "class Model(nn.Module):",
        "    @nn.compact",
        "    def __call__(self, x, train: bool = False):" if _has_state(model) else "    def __call__(self, x):",
    ]
    if _has_state(model):
        lines += ['        """train=True: BatchNorm normalises by the batch and updates "batch_stats" (apply with',
                  '        mutable=["batch_stats"]); False (inference): the moving statistics."""']
    body = []
    rank_in, rank_out = len(shapes[0]), len(shapes[-1])
    if t_in:
        body.append(f"x = jnp.transpose(x, {_last_perm(rank_in)!r})  # channels first -> last: Flax's layout inside")
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
        extra = {"masked": sources[i] is not None} if layer.kind in RECURRENT else {}
        if layer.kind in MERGES:
            extra = {"ins": [var[s] for s in srcs]}
        elif srcs[0] != (model.layers[i - 1].name if i else INPUT):
            body.append(f"x = {var[srcs[0]]}")
        body.extend(_CODE[layer.kind](name, opts, in_shapes[i], **extra))
        if layer.name in kept:
            body.append(f"{var[layer.name]} = x")
    if t_out:
        body.append(f"x = jnp.transpose(x, {_first_perm(rank_out)!r})  # channels last -> first: the source's layout out")
    flat = None if native_layout else model.flattened_output()
    if flat:
        body.append(f"x = jnp.transpose(x.reshape((x.shape[0], {', '.join(map(str, flat))})), (0, 3, 1, 2)).reshape((x.shape[0], -1))"
                    "  # the flattened features in the source's (c, h, w) order")
    body.append("return x")
    lines += ["        " + b for b in body]
    lines += [
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
    return "\n".join(lines)


# --------------------------------------------------------------------------- weights both ways


def _cells(layer, name: str) -> list[tuple[str, str]]:
    """A recurrent layer's (Flax cell name, canonical weight suffix) per direction."""
    return [(name, ""), *([(backward_name(name), "_rev")] if _bidirectional(layer) else [])]


_TO_FLAX = {"gru": lambda w: convert.gru_to_flax(GRUWeights(*w)), "lstm": lambda w: convert.lstm_to_flax(LSTMWeights(*w))}
_FROM_FLAX = {("gru", False): convert.gru_from_flax, ("gru", True): convert.gru_grads_from_flax,
              ("lstm", False): convert.lstm_from_flax, ("lstm", True): convert.lstm_grads_from_flax}


def params(model: Model) -> dict[str, dict]:
    """The Flax params tree of `model`'s canonical weights (NumPy): {flax layer name: {...}}; a bidirectional
    layer's backward cell is its own entry, backward_name(name)."""
    out: dict[str, dict] = {}
    for layer, name in zip(model.layers, flax_names(model), strict=True):
        w = {k: np.asarray(v) for k, v in layer.weights.items()}
        if layer.kind in RECURRENT:
            for cell, suffix in _cells(layer, name):
                out[cell] = _TO_FLAX[layer.kind]([w[k + suffix] for k in CELL_WEIGHTS])
        elif layer.kind == "embedding":
            out[name] = {"embedding": w["embeddings"]}
        elif layer.kind == "depthwise_conv2d":
            out[name] = {**w, "kernel": convert.depthwise_to_grouped(w["kernel"])}
        elif layer.kind in NORMS:
            tree = convert.norm_to_flax(w)[0]  # {scale, bias}; absent where the layer has neither
            if tree:
                out[name] = tree
        elif w:
            out[name] = dict(w)  # conv2d HWIO, conv1d (K, C / groups, F), dense (in, out): the canonical layouts
    return out


def batch_stats(model: Model) -> dict[str, dict]:
    """Flax's "batch_stats" collection of `model`'s state: {flax layer name: {mean, var}} per batch_norm."""
    return {name: convert.norm_to_flax({k: np.asarray(v) for k, v in layer.weights.items()})[1]
            for layer, name in zip(model.layers, flax_names(model), strict=True) if layer.kind == "batch_norm"}


def canonical(model: Model, tree: dict, gradients: bool, stats: dict | None = None) -> dict[tuple[str, str], np.ndarray]:
    """A Flax params tree (weights, or their gradients when `gradients`) -> {(layer, weight): canonical array}.
    A folded GRU or LSTM bias's gradient goes to both b_x and b_h of its gate (convert.gru_grads_from_flax,
    convert.lstm_grads_from_flax); read as weights, the folded sum is b_x and that b_h zero. `stats`: a
    "batch_stats" collection, read back as the BatchNorms' moving_mean / moving_var (without it, state is left out)."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for layer, name in zip(model.layers, flax_names(model), strict=True):
        if not layer.weights:
            continue
        if layer.kind in NORMS:
            got = convert.norm_from_flax(tree.get(name, {}), (stats or {}).get(name) if stats is not None else None)
            out |= {(layer.name, k): v for k, v in got.items() if k in layer.weights}
            continue
        if layer.kind in RECURRENT:
            for cell, suffix in _cells(layer, name):
                g = _FROM_FLAX[(layer.kind, gradients)]({k: {kk: np.asarray(vv) for kk, vv in v.items()}
                                                         for k, v in tree[cell].items()})
                out |= {(layer.name, k + suffix): np.asarray(getattr(g, k)) for k in CELL_WEIGHTS}
            continue
        node = {k: (dict(v) if isinstance(v, dict) else np.asarray(v)) for k, v in tree[name].items()}
        if layer.kind == "embedding":
            node = {"embeddings": node["embedding"]}
        if layer.kind == "depthwise_conv2d":
            node["kernel"] = convert.grouped_to_depthwise(node["kernel"], int(np.shape(layer.weights["kernel"])[2]))
        out |= {(layer.name, k): np.asarray(node[k]) for k in layer.weights}
    return out


def _flat(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}/")
        else:
            out[f"{prefix}{k}"] = np.asarray(v)
    return out


# --------------------------------------------------------------------------- write, build, train


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Write the port at `out` (a folder): model.py and variables.npz. Returns the files written."""
    model.check(1)
    why = refusal(model, port_dtype(model))
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    code, npz = out / "model.py", out / "variables.npz"
    code.write_text(source(model, native_layout))
    np.savez(npz, **_flat(params(model)), **{f"batch_stats:{k}": v for k, v in _flat(batch_stats(model)).items()})
    return [code, npz]


_COUNTER = itertools.count()


def _import(folder: Path) -> Any:
    """The generated model.py as a fresh module of its own name (ports of different models never collide)."""
    name = f"nnparity_flax_port_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # flax's dataclass transform looks the module up while the class is made
    spec.loader.exec_module(module)
    return module


def load_port(model: Model, dtype: str, native_layout: bool = False) -> tuple[Any, dict]:
    """(module, variables in `dtype`): what write() writes, written to a temporary folder and loaded by its own load()."""
    frameworks.load("flax")  # JAX configured first (x64: float64 stays float64)
    with tempfile.TemporaryDirectory(prefix="nnparity-flax-") as tmp:
        write(model, Path(tmp) / "port", native_layout)
        code = _import(Path(tmp) / "port")
        return code.load(Path(tmp) / "port", dtype=dtype)


class _Layout:
    """Canonical <-> the port's boundary layout (NCHW where the source is channels_first)."""

    def __init__(self, model: Model):
        self.t_in, self.t_out = _transposes(model, native_layout=False)
        self.flat = model.flattened_output()  # the output's features in the source's (c, h, w) order

    @staticmethod
    def _first(a: np.ndarray) -> np.ndarray:  # N...C -> NC... (NHWC -> NCHW, NWC -> NCW)
        return np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1))

    @staticmethod
    def _last(a: np.ndarray) -> np.ndarray:  # NC... -> N...C
        return np.ascontiguousarray(np.moveaxis(np.asarray(a), 1, -1))

    def x(self, a: np.ndarray) -> np.ndarray:
        return self._first(a) if self.t_in else np.asarray(a)

    def dx(self, a: np.ndarray) -> np.ndarray:
        return self._last(a) if self.t_in else np.asarray(a)

    def y(self, a: np.ndarray) -> np.ndarray:
        if self.flat:
            return convert.features_nhwc_to_nchw(a, self.flat)
        return self._first(a) if self.t_out else np.asarray(a)

    def dy(self, a: np.ndarray) -> np.ndarray:
        if self.flat:
            return convert.features_nchw_to_nhwc(a, self.flat)
        return self._last(a) if self.t_out else np.asarray(a)


def _notes(model: Model) -> list[str]:
    notes = []
    if any(la.kind == "gru" for la in model.layers):
        notes.append("GRU: flax.linen.GRUCell's four biases, the z and r gates' b_x + b_h folded "
                     "(convert.gru_to_flax): exact for the forward; gradients go to both b_x and b_h")
    if any(la.kind == "lstm" for la in model.layers):
        notes.append("LSTM: flax.linen.LSTMCell's one bias per gate, b_x + b_h folded (convert.lstm_to_flax): exact "
                     "for the forward, NOT training-exact against a two-bias source (torch, ONNX: Adam moves one "
                     "bias per gate where the source moves b_x and b_h); gradients go to both b_x and b_h")
    if any(_bidirectional(la) for la in model.layers):
        notes.append("bidirectional: nn.Bidirectional, the backward nn.RNN reverse=True, keep_order=True")
    if _masked(model):
        notes.append("padded sequences: seq_lengths from the mask source to nn.RNN / nn.Bidirectional; padded steps "
                     "zeroed or held and length-0 rows' final states zeroed in the generated code, as the contract "
                     "says (Flax leaves the cell's run over the padding there)")
    if any(la.kind == "embedding" for la in model.layers):
        notes.append("embedding: nn.Embed (jnp.take: an out-of-range id would give NaN or wrap; the voice refuses "
                     "it at the boundary, Model.check_input)")
    t_in, t_out = _transposes(model, native_layout=False)
    if t_in or t_out:
        notes.append("the port takes / returns the source's channels-first maps (NCHW, NCW) and transposes to "
                     "channels last inside (timed with it)")
    if any(la.kind == "dropout" for la in model.layers):
        notes.append("dropout left out (identity at inference)")
    if _has_state(model):
        notes.append("batch_norm: nn.BatchNorm (momentum = the old value's share, as the description's; its "
                      "batch_stats collection holds moving_mean / moving_var; inference on them)")
    notes += [f"forward-exact only: {n}" for n in batch_norm_notes(model)]
    if any(la.kind == "global_max_pool" for la in model.layers):
        notes.append("global_max_pool: argmax + take_along_axis, its gradient to the first maximum as the contract's")
    if not model.is_chain():
        notes.append("a graph: named intermediate values in __call__")
    return notes


def _integer_input(model: Model) -> bool:
    return bool(np.issubdtype(np.dtype(model.input_dtype), np.integer))


def build(model: Model, dtype: str) -> Built:
    """The port itself (the code write() writes, imported), under jax.jit; canonical layout in and out."""
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    jax = frameworks.load("jax")
    jnp = jax.numpy
    module, variables = load_port(model, dtype)
    layout = _Layout(model)
    apply = jax.jit(module.apply)  # inference: a BatchNorm on its moving statistics (batch_stats, read only)
    ids = _integer_input(model)
    with_params = lambda v, p: {**v, "params": p}  # gradients of the params only: batch_stats is state
    if ids:  # token ids: no gradient for them (the reference's dx is None)
        pull = jax.jit(lambda v, x, dy: (*jax.vjp(lambda p: module.apply(with_params(v, p), x), v["params"])[1](dy),
                                         None))
    else:
        pull = jax.jit(lambda v, x, dy: jax.vjp(lambda p, x: module.apply(with_params(v, p), x), v["params"], x)[1](dy))
    in_dtype = model.input_dtype if ids else dtype

    def to_native(x: np.ndarray) -> Any:
        return jnp.asarray(layout.x(np.asarray(x)), dtype=in_dtype)

    def call(x: Any) -> Any:
        return jax.block_until_ready(apply(variables, x))

    def to_numpy(y: Any) -> np.ndarray:
        return layout.dy(np.asarray(y))

    def dy_to_native(dy: np.ndarray) -> Any:
        return jnp.asarray(layout.y(np.asarray(dy)), dtype=dtype)

    def vjp(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        gp, gx = pull(variables, to_native(x), dy_to_native(dy))
        grads = canonical(model, jax.tree_util.tree_map(np.asarray, gp), gradients=True)
        return (None if gx is None else layout.dx(np.asarray(gx))), {k: grads[k] for k in model.parameters()}

    def step(x: Any, dy: Any) -> Any:
        return jax.block_until_ready(pull(variables, x, dy))

    return Built(VOICE, dtype, to_native, call, to_numpy, vjp, step, "jit", _notes(model), dy_to_native=dy_to_native)


class TrainStep(tuple):
    """(loss before the step, {(layer, weight): canonical weight after it}), unpacking as that pair; `.exact` says
    whether the step is the reference's exactly, and `.notes` what differs where it is not."""

    exact: bool
    notes: list[str]

    def __new__(cls, loss: float, weights: dict, notes: list[str]):
        self = super().__new__(cls, (loss, weights))
        self.exact, self.notes = not notes, list(notes)
        return self


def batch_norm_notes(model: Model) -> list[str]:
    """flax.linen.BatchNorm updates batch_stats' var with the biased batch variance (the one it normalises by): a
    description whose variance_update is torch's "unbiased" (n / (n - 1) times it) ports forward-exact (inference
    reads the moving statistics as they are), but a training step moves var otherwise. One note per such layer."""
    return [f"{la.label(i)}: variance_update 'unbiased' (torch's running_var) has no flax.linen form: nn.BatchNorm "
            "moves batch_stats' var by the biased batch variance; forward-exact, but a training step's moving_var "
            "differs from the source's by the factor n / (n - 1) on the batch variance's share"
            for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and spec_of(la.kind).options(la.options)["variance_update"] == "unbiased"]


def train_step(model: Model, x: np.ndarray, t: np.ndarray, dtype: str = "float64") -> TrainStep:
    """One optax.adam(training.LR) step (its defaults: eps 1e-8, torch's convention) of the port on the loss
    training.loss_kind(model) names, with optax's own losses: cross-entropy as optax.softmax_cross_entropy on the
    log of the softmax output (log_softmax(log p) = log p where p sums to 1), else optax.squared_error's mean.
    A model with BatchNorm steps in training mode (module.apply(..., train=True, mutable=["batch_stats"]): the
    batch's statistics normalise and the moving ones move); dropout is left out of the port, so it is off.
    Returns (loss before the step, every canonical weight after it, and a BatchNorm's moving_mean / moving_var
    after it), with `.notes` where it is not exact (batch_norm_notes: an unbiased variance update, which the step
    makes in Flax's biased convention)."""
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    jax = frameworks.load("jax")
    optax = frameworks.load("optax")
    jnp = jax.numpy
    module, variables = load_port(model, dtype)
    layout, kind = _Layout(model), training.loss_kind(model)
    stateful = _has_state(model)

    def loss_fn(p, s, x, t):
        if stateful:
            y, moved = module.apply({"params": p, "batch_stats": s}, x, train=True, mutable=["batch_stats"])
            s = moved["batch_stats"]
        else:
            y = module.apply({"params": p}, x)
        if kind == "categorical_crossentropy":
            return jnp.mean(optax.softmax_cross_entropy(jnp.log(y), t)), s
        return jnp.mean(optax.squared_error(y, t)), s

    opt = optax.adam(training.LR)

    @jax.jit
    def step(p, s, x, t):
        (loss, s), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, s, x, t)
        updates, _ = opt.update(grads, opt.init(p), p)
        return loss, optax.apply_updates(p, updates), s

    xn = jnp.asarray(layout.x(np.asarray(x)), dtype=model.input_dtype if _integer_input(model) else dtype)
    tn = jnp.asarray(layout.y(np.asarray(t)), dtype=dtype)
    loss, new, stats = step(variables["params"], variables.get("batch_stats", {}), xn, tn)
    new, stats = jax.tree_util.tree_map(np.asarray, (new, stats))
    weights = canonical(model, new, gradients=False, stats=stats if stateful else None)
    notes = [note for kind, note in (("gru", NOT_TRAINING_EXACT), ("lstm", NOT_TRAINING_EXACT_LSTM))
             if any(la.kind == kind for la in model.layers)]
    notes += batch_norm_notes(model)
    return TrainStep(float(loss), {k: weights[k] for k in (*model.parameters(), *model.state())}, notes)


def project_for_training(model: Model) -> tuple[Model, dict[tuple[str, str], slice], list[str]]:
    """The model as the Flax port's cells hold it, for comparing train_step with the reference step (what
    nnparity/trainref.project("flax", model) gives for a forward GRU, extended to LSTMs and backward cells):
    (the projected model, {(layer, "b_h" + suffix): entries the step must hold at zero}, a note per layer).
    GRU: convert.flax_folded_bias (b_h of z and r held at 0); LSTM: convert.flax_lstm_folded_bias (all of b_h held
    at 0). The projection changes no output, so the loss is the same."""
    import dataclasses

    from ..model.layers.rnn import directions

    layers, frozen, notes = [], {}, []
    for i, la in enumerate(model.layers):
        if la.kind in RECURRENT:
            opts = spec_of(la.kind).options(la.options)
            H, w = opts["units"], dict(la.weights)
            fold, kept, cls = ((convert.flax_folded_bias, 2, GRUWeights) if la.kind == "gru" else
                               (convert.flax_lstm_folded_bias, 4, LSTMWeights))
            for suffix in directions(opts):
                f = fold(cls(*(np.asarray(w[k + suffix]) for k in CELL_WEIGHTS)))
                w |= {k + suffix: getattr(f, k) for k in CELL_WEIGHTS}
                frozen[(la.name, "b_h" + suffix)] = slice(0, kept * H)
            la = dataclasses.replace(la, weights=w)
            notes.append(f"{la.label(i)}: " + (
                "flax.linen.GRUCell holds the z and r gates' b_x + b_h as one bias each: compared with the reference "
                "step on convert.flax_folded_bias's projection, b_h of z and r held at 0" if la.kind == "gru" else
                "flax.linen.LSTMCell holds each gate's b_x + b_h as one bias: compared with the reference step on "
                "convert.flax_lstm_folded_bias's projection, b_h held at 0"))
        layers.append(la)
    return dataclasses.replace(model, layers=tuple(layers)), frozen, notes


__all__ = ["DTYPES", "MERGES", "NORMS", "NOT_TRAINING_EXACT", "NOT_TRAINING_EXACT_LSTM", "RECURRENT", "TrainStep",
           "backward_name", "batch_norm_notes", "batch_stats", "build", "canonical", "feature_maps", "flax_names",
           "load_port", "params", "port_dtype", "project_for_training", "refusal", "source", "train_step", "write"]
