"""The Keras port (voice "keras"): a model description as a keras.Sequential (a chain) or a functional keras.Model (a
graph: merges, a tensor read twice, wired as Layer.inputs say) of Keras' own built-in layers.

    net = keras_model(model, "float32")          # the port itself, weights set through impls/convert.py
    write(model, Path("net.keras"))              # keras.saving.load_model("net.keras") loads it, no custom objects
    built = build(model, "float64")              # the same net, canonical arrays in and out, tf.function

One description layer is one Keras layer named after it (each character that Keras or TensorFlow's name scopes refuse,
'/', ' ', ':', '(', as '_'), except where Keras needs a ZeroPadding2D in front
(explicit conv pads; average pools that count their pads), named "<layer>_pad". GRU(reset_after=True) computes
reset_after, GRU(reset_after=False) reset_before with its one bias b_x + b_h (convert.gru_to_keras); the other
variants and the options impls/contract/limits.py declares have no Keras layer and are refused. LSTM is
keras.layers.LSTM with one bias b_x + b_h per direction (convert.lstm_to_keras: forward-exact; a training step moves
one bias where the canonical model moves two, lstm_notes says so). A bidirectional layer is
Bidirectional(GRU | LSTM, merge_mode) with Keras' own mirrored backward layer. Padding masks are Keras' own: an
Embedding(mask_zero=True) or Masking makes one, Dense, Activation, Dropout and sequence-returning RNNs carry it;
padded_outputs 'zero' is zero_output_for_mask=True, 'hold' False (Bidirectional forces True when it returns
sequences, so 'hold' there under a mask is refused). An Embedding's Keras lookup (ops.take) wraps a negative id to a
row from the end: the written file cannot refuse one, the built voice refuses it at its boundary (Model.check_input).
take_step is Cropping1D then Reshape ("<layer>_crop", "<layer>"). A model whose source
takes NCHW images (model.boundary "channels_first") starts with Permute((2, 3, 1)) and, where it returns a 4-D map,
ends with Permute((3, 1, 2)); where it returns a Flatten of a map, it ends with Reshape, Permute((3, 1, 2)) and
Flatten, so the features come out in the source's (c, h, w) order (model.flattened_output); native_layout=True
leaves them out (Keras' own NHWC) and says so in the model name. A channels_first source's 3-D feature map (B, C, L:
what a conv1d, batch_norm or global pool reads) comes in through Permute((2, 1)) and, returned, goes out through one.

Issue 18's kinds: conv1d is Conv1D (valid / same / causal its own; explicit pads a ZeroPadding1D "<layer>_pad" then
valid); batch_norm is BatchNormalization(axis=-1, momentum, epsilon, center, scale) holding gamma, beta and the moving
statistics (state: no gradient); its moving_variance moves by the biased batch variance, so a description whose
variance_update is "unbiased" (a torch source) ports forward-exact only (batch_norm_notes says so; trainref compares
its step in Keras' convention); layer_norm is LayerNormalization(axis=-1); global pools GlobalAverage/MaxPooling1D/2D;
reshape, permute, add, concatenate are Reshape, Permute, Add, Concatenate(axis). train_step runs a model with state in
training mode (BatchNormalization on the batch) on a copy whose Dropout layers have rate 0.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import GRU_VARIANTS, convert, frameworks
from ..builtin.keras_builtin import KERAS_GRU, REC_INIT
from ..contract import limits, spec
from ..contract.limits import Refused
from ..model import training
from ..model.description import INPUT, Layer, Model
from ..model.layers import spec_of
from ..model.layers.base import spec_padding
from ..model.layers.gru import weights as gru_weights
from ..model.layers.lstm import weights as lstm_weights
from ..model.layers.rnn import cell_weights, directions
from ..model.voices import Built
from ..primitives import tf_impl

keras = frameworks.load("keras")
tf = frameworks.load("tensorflow")

VOICE = "keras"
DTYPES = ("float32", "float64")
WEIGHTED = ("gru", "lstm", "embedding", "conv2d", "depthwise_conv2d", "dense", "conv1d", "batch_norm", "layer_norm")
RECURRENT = ("gru", "lstm")
TO_NHWC, TO_NCHW = (2, 3, 1), (3, 1, 2)  # keras.layers.Permute's dims (batch excluded)
TO_NWC = TO_NCW = (2, 1)  # a 3-D feature map's
MAP_READERS = ("conv1d", "batch_norm", "global_avg_pool", "global_max_pool")
"""Kinds whose 3-D input a channels_first source (torch, ONNX) holds (B, C, L); a sequence read by a recurrent layer
or a dense stays (B, T, F)."""
MAP_MAKERS = ("conv1d",)
MAP_KEEPERS = ("activation", "dropout", "batch_norm", "add", "concatenate")
KERAS_NAMES = {"moving_var": "moving_variance"}  # canonical weight name -> the Keras layer's attribute, where not the same


# --------------------------------------------------------------------------- what Keras cannot express


def _conv_limits(opts: dict) -> str | None:
    return limits.refusal(VOICE, "conv2d", stride=tuple(opts["strides"]), dilation=tuple(opts["dilation"]))


def _same_pools(kind: str, opts: dict, in_shape: tuple) -> dict:
    """A pool's explicit pads that are TensorFlow's 'same' pads on this input, as 'same' (which the Keras pools have):
    an ONNX exporter writes a Keras AveragePooling2D(padding='same') as pads [1, 0, 1, 1], which read as explicit
    pads had no Keras layer. An average pool that counts its pads keeps them (ZeroPadding2D then 'valid')."""
    if kind not in ("max_pool2d", "avg_pool2d") or isinstance(opts["padding"], str) or opts.get("count_include_pad"):
        return opts
    same = [list(spec.same_pads(n, k, st)) for n, k, st in zip(in_shape[1:3], opts["pool_size"], opts["strides"])]
    return {**opts, "padding": "same"} if [list(p) for p in opts["padding"]] == same else opts


def _layer_refusal(layer: Layer, opts: dict, in_shape: tuple, masked: bool = False) -> str | None:
    kind = layer.kind
    opts = _same_pools(kind, opts, in_shape)
    if (kind in RECURRENT and masked and opts["direction"] == "bidirectional" and opts["return_sequences"]
            and opts["padded_outputs"] == "hold"):  # fmt: skip
        return ("keras.layers.Bidirectional sets zero_output_for_mask=True on both of its layers when they return "
                "sequences: a padded step outputs zeros, never the held last valid output (padded_outputs 'hold')")
    if kind == "gru" and opts["variant"] not in GRU_VARIANTS[VOICE]:
        return (f"keras.layers.GRU computes {' and '.join(GRU_VARIANTS[VOICE])} only "
                f"({', '.join(f'{v}: reset_after={f}' for v, f in KERAS_GRU.items())}); variant {opts['variant']!r} "
                "has no Keras layer")  # fmt: skip
    if kind in ("conv2d", "depthwise_conv2d"):
        return _conv_limits(opts)
    if kind == "conv1d":
        return limits.refusal(VOICE, "conv2d", stride=(1, opts["strides"]), dilation=(1, opts["dilation"]))
    if kind == "max_pool2d":
        return limits.refusal(VOICE, "max_pool2d", padding=opts["padding"])
    if kind == "avg_pool2d":
        return limits.refusal(VOICE, "avg_pool2d", padding=opts["padding"], count_include_pad=opts["count_include_pad"])
    return None


def refusal(model: Model, dtype: str) -> str | None:
    """Why Keras' built-in layers cannot compute `model` in `dtype`, naming the layer; None when they can."""
    if str(dtype) not in DTYPES:
        return f"the Keras port builds {' and '.join(DTYPES)} models; {dtype!r} is not one of them"
    shapes = model.input_shapes(1)
    masks = model.mask_sources()
    for i, layer in enumerate(model.layers):
        why = _layer_refusal(layer, spec_of(layer.kind, layer.label(i)).options(layer.options), shapes[i], masks[i] is not None)
        if why is not None:
            return f"{layer.label(i)}: {why}"
    return None


def _check(model: Model, dtype: str) -> None:
    why = refusal(model, dtype)
    if why is not None:
        raise Refused(f"{VOICE}: {why}")


# --------------------------------------------------------------------------- one description layer -> Keras layers


def _pads(padding: list) -> tuple:
    (t, b), (l, r) = padding
    return ((t, b), (l, r))


def _conv_layers(layer: Layer, opts: dict, dt: str, pad_name: str) -> list:
    explicit = not isinstance(opts["padding"], str)
    common = {"strides": tuple(opts["strides"]), "padding": "valid" if explicit else opts["padding"],
              "dilation_rate": tuple(opts["dilation"]), "activation": opts["activation"],
              "use_bias": opts["use_bias"], "dtype": dt, "name": layer.name}  # fmt: skip
    if layer.kind == "depthwise_conv2d":
        main = keras.layers.DepthwiseConv2D(tuple(opts["kernel_size"]), depth_multiplier=opts["depth_multiplier"], **common)
    else:
        main = keras.layers.Conv2D(opts["filters"], tuple(opts["kernel_size"]), groups=opts["groups"], **common)
    pre = [keras.layers.ZeroPadding2D(_pads(opts["padding"]), dtype=dt, name=pad_name)] if explicit else []
    return [*pre, main]


def _avg_pool_layers(layer: Layer, opts: dict, in_shape: tuple, dt: str, pad_name: str) -> list:
    """AveragePooling2D divides by the input cells only ('same' as TensorFlow): count_include_pad=False with
    'same' is its own padding; counting pads is ZeroPadding2D (the 'same' or explicit pads) then 'valid'."""
    padding, cip = opts["padding"], opts["count_include_pad"]
    own = padding if padding == "valid" or (padding == "same" and not cip) else "valid"
    pool = keras.layers.AveragePooling2D(tuple(opts["pool_size"]), tuple(opts["strides"]), padding=own, dtype=dt,
                                         name=layer.name)  # fmt: skip
    if own == padding:
        return [pool]
    g = spec.check_pool2d(in_shape, tuple(opts["pool_size"]), tuple(opts["strides"]), spec_padding(padding), op="avg_pool2d")
    t, b, l, r = g.pads
    return [keras.layers.ZeroPadding2D(((t, b), (l, r)), dtype=dt, name=pad_name), pool]


def _keras_layers(layer: Layer, opts: dict, in_shape: tuple, dt: str, pad_name: str, dropout: bool = True) -> list:
    """The Keras layers computing one description layer; the last one holds its weights. dropout=False makes a
    Dropout rate 0 (the training step's copy: BatchNorm in training mode, dropout off)."""
    kind, name, L = layer.kind, layer.name, keras.layers
    opts = _same_pools(kind, opts, in_shape)
    if kind == "conv1d":
        explicit = not isinstance(opts["padding"], str)
        conv = L.Conv1D(opts["filters"], opts["kernel_size"], strides=opts["strides"],
                        padding="valid" if explicit else opts["padding"], dilation_rate=opts["dilation"],
                        groups=opts["groups"], activation=opts["activation"], use_bias=opts["use_bias"], dtype=dt,
                        name=name)  # fmt: skip
        return [*([L.ZeroPadding1D(tuple(opts["padding"]), dtype=dt, name=pad_name)] if explicit else []), conv]
    if kind == "batch_norm":  # Keras' momentum is the description's (the old value's share); epsilon as is
        return [L.BatchNormalization(axis=-1, momentum=opts["momentum"], epsilon=opts["epsilon"], center=opts["center"],
                                     scale=opts["scale"], dtype=dt, name=name)]  # fmt: skip
    if kind == "layer_norm":
        return [L.LayerNormalization(axis=-1, epsilon=opts["epsilon"], center=opts["center"], scale=opts["scale"],
                                     dtype=dt, name=name)]  # fmt: skip
    if kind in ("global_avg_pool", "global_max_pool"):
        cls = {("global_avg_pool", 3): L.GlobalAveragePooling1D, ("global_avg_pool", 4): L.GlobalAveragePooling2D,
               ("global_max_pool", 3): L.GlobalMaxPooling1D, ("global_max_pool", 4): L.GlobalMaxPooling2D}[(kind, len(in_shape))]
        return [cls(dtype=dt, name=name)]
    if kind == "reshape":
        return [L.Reshape(tuple(opts["target_shape"]), dtype=dt, name=name)]
    if kind == "permute":
        return [L.Permute(tuple(opts["dims"]), dtype=dt, name=name)]
    if kind == "add":
        return [L.Add(dtype=dt, name=name)]
    if kind == "concatenate":
        return [L.Concatenate(axis=opts["axis"], dtype=dt, name=name)]
    if kind in RECURRENT:
        return [_recurrent_layer(kind, name, opts, dt)]
    if kind == "embedding":
        return [L.Embedding(opts["input_dim"], opts["output_dim"], mask_zero=opts["mask_zero"], dtype=dt, name=name)]
    if kind == "masking":
        return [L.Masking(opts["mask_value"], dtype=dt, name=name)]
    if kind == "take_step":  # x[:, index] from built-in layers: crop the other steps, drop the time axis
        T, F = in_shape[1], in_shape[2]
        i = opts["index"] % T
        return [L.Cropping1D((i, T - 1 - i), dtype=dt, name=pad_name), L.Reshape((F,), dtype=dt, name=name)]
    if kind in ("conv2d", "depthwise_conv2d"):
        return _conv_layers(layer, opts, dt, pad_name)
    if kind == "max_pool2d":
        return [L.MaxPooling2D(tuple(opts["pool_size"]), tuple(opts["strides"]), padding=opts["padding"], dtype=dt, name=name)]
    if kind == "avg_pool2d":
        return _avg_pool_layers(layer, opts, in_shape, dt, pad_name)
    if kind == "zero_pad2d":
        return [L.ZeroPadding2D(_pads(opts["padding"]), dtype=dt, name=name)]
    if kind == "flatten":
        return [L.Flatten(dtype=dt, name=name)]
    if kind == "dense":
        return [L.Dense(opts["units"], activation=opts["activation"], use_bias=opts["use_bias"], dtype=dt, name=name)]
    if kind == "activation":
        return [L.Activation(opts["activation"], dtype=dt, name=name)]
    if kind == "dropout":
        return [L.Dropout(opts["rate"] if dropout else 0.0, dtype=dt, name=name)]
    raise Refused(f"{VOICE}: layer kind {kind!r} ({name!r}) has no Keras layer here")


def _recurrent_layer(kind: str, name: str, opts: dict, dt: str) -> Any:
    """keras.layers.GRU / LSTM, or Bidirectional of one (its backward layer Keras' own mirror, go_backwards=True).
    padded_outputs 'zero' is zero_output_for_mask=True (Keras reads it only with return_sequences under a mask;
    Bidirectional forces it so itself), 'hold' is Keras' default False."""
    L = keras.layers
    common = {"return_sequences": opts["return_sequences"], "recurrent_initializer": REC_INIT, "dtype": dt,
              "zero_output_for_mask": opts["padded_outputs"] == "zero" and opts["return_sequences"]}  # fmt: skip
    bidir = opts["direction"] == "bidirectional"
    inner = name if not bidir else f"{name}_cell"
    if kind == "gru":
        rnn = L.GRU(opts["units"], reset_after=KERAS_GRU[opts["variant"]], name=inner, **common)
    else:
        rnn = L.LSTM(opts["units"], name=inner, **common)
    return L.Bidirectional(rnn, merge_mode=opts["merge_mode"], dtype=dt, name=name) if bidir else rnn


def _cells(main: Any) -> list:
    """The Keras cells of a recurrent layer: [forward] or, Bidirectional, [forward, backward]."""
    if isinstance(main, keras.layers.Bidirectional):
        return [main.forward_layer.cell, main.backward_layer.cell]
    return [main.cell]


# --------------------------------------------------------------------------- weights both ways


def _names(kind: str, opts: dict) -> list[str]:
    """The canonical weights of a non-recurrent weighted layer in the order of its Keras variables (get_weights')."""
    if kind == "embedding":
        return ["embeddings"]
    if kind in ("batch_norm", "layer_norm"):
        return [*(["gamma"] if opts["scale"] else []), *(["beta"] if opts["center"] else []),
                *(["moving_mean", "moving_var"] if kind == "batch_norm" else [])]  # fmt: skip
    return ["kernel", *(["bias"] if opts["use_bias"] else [])]


def _variables(kind: str, main: Any, opts: dict | None = None, trainable: bool = False) -> list:
    """The Keras variables of a weighted layer, in the order _to_keras gives their arrays; trainable=True leaves a
    BatchNormalization's moving statistics out (what gradients are taken of)."""
    if kind in RECURRENT:
        return [v for cell in _cells(main) for v in (cell.kernel, cell.recurrent_kernel, cell.bias)]
    if opts is None:  # the layer's own flags
        opts = {"scale": bool(getattr(main, "scale", False)), "center": bool(getattr(main, "center", False)),
                "use_bias": bool(getattr(main, "use_bias", False))}  # fmt: skip
    state = spec_of(kind).STATE if trainable else ()
    return [getattr(main, KERAS_NAMES.get(n, n)) for n in _names(kind, opts) if n not in state]


def _to_keras(layer: Layer, opts: dict) -> list[np.ndarray]:
    if layer.kind == "gru":
        return [a for s in directions(opts)
                for a in convert.gru_to_keras(gru_weights(cell_weights(layer.weights, s)), reset_after=KERAS_GRU[opts["variant"]])]
    if layer.kind == "lstm":  # one bias b_x + b_h per direction
        return [a for s in directions(opts) for a in convert.lstm_to_keras(lstm_weights(cell_weights(layer.weights, s)))]
    # conv2d HWIO, conv1d (K, C / groups, F), depthwise (KH, KW, C, M) and dense (in, out) kernels are Keras' own
    # layouts; a BatchNormalization holds gamma, beta, moving_mean, moving_variance (the description's moving_var)
    return [layer.weights[n] for n in _names(layer.kind, opts)]


def _from_keras(layer: Layer, opts: dict, arrays: list[np.ndarray], grads: bool) -> dict[str, np.ndarray]:
    """Keras' arrays of one layer -> canonical weights, or canonical gradients (grads=True: the one bias of
    GRU(reset_after=False) and of an LSTM is the gradient of b_x and of b_h alike)."""
    if layer.kind in RECURRENT:
        out = {}
        for n, s in enumerate(directions(opts)):
            part = arrays[3 * n : 3 * n + 3]
            if layer.kind == "gru":
                ra = KERAS_GRU[opts["variant"]]
                w = convert.gru_grads_from_keras(part, ra) if grads else convert.gru_from_keras(part, ra)
            else:
                w = convert.lstm_grads_from_keras(part) if grads else convert.lstm_from_keras(part)
            out.update({"W" + s: w.W, "U" + s: w.U, "b_x" + s: w.b_x, "b_h" + s: w.b_h})
        return out
    names = _names(layer.kind, opts)
    if grads:
        names = [n for n in names if n not in spec_of(layer.kind).STATE]
    if len(names) != len(arrays):
        raise ValueError(f"{layer.name!r}: {len(arrays)} Keras arrays for its weights {names}")
    return dict(zip(names, arrays, strict=True))


# --------------------------------------------------------------------------- the whole model


def _safe(name: str) -> str:
    """A name Keras takes and TensorFlow's name scopes take under tf.function (model.predict, fit): every other
    character as '_' (Keras itself accepts 'conv 1' or 'dense:é', whose scope then raises in predict)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "model"


def _root(name: str) -> str:
    """A model name, TensorFlow's root scope: it also starts with a letter, digit or '.'."""
    name = _safe(name)
    return name if re.match(r"[A-Za-z0-9.]", name) else f"model{name}"


def _unique(name: str, used: set[str]) -> str:
    out, n = name, 1
    while out in used:
        out, n = f"{name}_{n}", n + 1
    used.add(out)
    return out


def _maps3(model: Model) -> list[bool]:
    """Per tensor ([input, layer 0, ...]), whether a channels_first source holds it as a 3-D feature map (B, C, L):
    the input where a conv1d, batch_norm or global pool reads it; a conv1d's output, and what an activation, dropout,
    batch_norm or merge makes of maps. A sequence (B, T, F) read by a recurrent layer or a dense is not one."""
    shapes = model.shapes(1)
    out = [len(shapes[0]) == 3 and any(model.layers[i].kind in MAP_READERS for i in model.consumers(INPUT))]
    for i, la in enumerate(model.layers):
        srcs = model.source_indices(i)
        is_map = la.kind in MAP_MAKERS or (la.kind in MAP_KEEPERS and all(out[j + 1] for j in srcs))
        out.append(len(shapes[i + 1]) == 3 and is_map)
    return out


def boundary_perms(model: Model, native_layout: bool) -> tuple[tuple | None, tuple | None]:
    """(the Permute dims at the input, at the output) that a drop-in port of a channels_first source needs, or None."""
    if model.boundary != "channels_first" or native_layout:
        return None, None
    shapes, maps = model.shapes(1), _maps3(model)
    first = TO_NHWC if len(shapes[0]) == 4 else TO_NWC if maps[0] else None
    last = TO_NCHW if len(shapes[-1]) == 4 else TO_NCW if maps[-1] else None
    return first, last


def permutes(model: Model, native_layout: bool) -> tuple[bool, bool]:
    """(a Permute to channels last at the input, a Permute back to channels first at the output): the boundary's
    transposes (4-D images, and 3-D feature maps a channels_first source holds (B, C, L))."""
    first, last = boundary_perms(model, native_layout)
    return first is not None, last is not None


def model_name(model: Model, native_layout: bool) -> str:
    """The Keras model's name, which says what layout it takes: native_layout is Keras' own NHWC."""
    if not native_layout:
        return _root(model.name)
    return _root(f"{model.name}_native_layout_NHWC" if model.boundary == "channels_first" else f"{model.name}_native_layout")


def _integer(dtype: str) -> bool:
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


def _dense_grads(gs: list) -> list:
    """An Embedding's gradient is tf.IndexedSlices (the rows its ids picked): as a dense table, as canonical holds it."""
    return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in gs]


def keras_model(model: Model, dtype: str = "float32", native_layout: bool = False):
    """The port: a keras.Sequential (a chain) or a functional keras.Model (a graph) of built-in layers holding the
    model's weights in `dtype`. What write() saves and build() runs."""
    return assemble(model, dtype, native_layout)[0]


Mains = list  # [(description layer, its options, the Keras layer holding its weights)] for the weighted layers


def assemble(model: Model, dtype: str = "float32", native_layout: bool = False, dropout: bool = True) -> tuple[Any, Mains]:
    """(keras_model's net, its Mains): what canonical_weights reads weights or gradients back through. A chain is a
    keras.Sequential, a graph (merges, a tensor read twice) a functional keras.Model wired as the description's
    `inputs` say. dropout=False: every Dropout rate 0 (the training step's copy)."""
    _check(model, dtype)
    shapes = model.input_shapes(1)
    first, last = boundary_perms(model, native_layout)
    used: set[str] = set()
    knames = [_unique(_safe(layer.name), used) for layer in model.layers]  # Keras forbids '/', TF's scopes ' ', ':'...
    in_shape = tuple(model.input_shape)
    if first is not None:  # the source's channels-first shape
        in_shape = tuple(model.input_shape[i - 1] for i in (TO_NCHW if first == TO_NHWC else TO_NCW))
    in_dtype = model.input_dtype if _integer(model.input_dtype) else dtype  # token ids stay integers
    inp = keras.Input(shape=in_shape, dtype=in_dtype, name=_unique("input", used))
    head = [keras.layers.Permute(first, dtype=dtype, name=_unique("to_nhwc" if len(first) == 3 else "to_nwc", used))] if first else []
    per_layer, mains = [], []
    for i, (layer, kname) in enumerate(zip(model.layers, knames, strict=True)):
        opts = spec_of(layer.kind, layer.label(i)).options(layer.options)
        pad_name = _unique(f"{kname}_{'crop' if layer.kind == 'take_step' else 'pad'}", used)
        pieces = _keras_layers(dataclasses.replace(layer, name=kname), opts, shapes[i], dtype, pad_name, dropout)
        per_layer.append(pieces)
        mains.append((layer, opts, pieces[-1]))
    tail = [keras.layers.Permute(last, dtype=dtype, name=_unique("to_nchw" if len(last) == 3 else "to_ncw", used))] if last else []
    flat = None if native_layout else model.flattened_output()
    if flat:  # the channels_first source's flattened features come out in its (c, h, w) order
        tail += [keras.layers.Reshape(flat, dtype=dtype, name=_unique("to_chw_map", used)),
                 keras.layers.Permute(TO_NCHW, dtype=dtype, name=_unique("to_chw", used)),
                 keras.layers.Flatten(dtype=dtype, name=_unique("to_chw_flat", used))]  # fmt: skip
    if model.is_chain():
        net = keras.Sequential([inp, *head, *(p for ps in per_layer for p in ps), *tail], name=model_name(model, native_layout))
    else:
        t = inp
        for la in head:
            t = la(t)
        env = {INPUT: t}
        for i, (layer, pieces) in enumerate(zip(model.layers, per_layer, strict=True)):
            ins = [env[s] for s in model.sources(i)]
            y = ins[0] if spec_of(layer.kind).ARITY == 1 else ins
            for piece in pieces:
                y = piece(y)
            env[layer.name] = y
        for la in tail:
            y = la(y)
        net = keras.Model(inp, y, name=model_name(model, native_layout))
    for layer, opts, main in mains:
        if layer.kind in WEIGHTED:
            for v, a in zip(_variables(layer.kind, main, opts), _to_keras(layer, opts), strict=True):
                v.assign(np.asarray(a, dtype=dtype))
    return net, [(la, o, m) for la, o, m in mains if la.kind in WEIGHTED]


def arrays(model: Model) -> list[np.ndarray]:
    """`model`'s canonical weights (a BatchNorm's moving statistics too) as the Keras port's arrays, layer by layer
    in the description's order (each layer's in get_weights' order): no Keras needed."""
    return [a for layer in model.layers if layer.kind in WEIGHTED
            for a in _to_keras(layer, spec_of(layer.kind).options(layer.options))]  # fmt: skip


def _count(layer: Layer, opts: dict, grads: bool) -> int:
    if layer.kind in RECURRENT:
        return len(_to_keras(layer, opts))
    return len([n for n in _names(layer.kind, opts) if not (grads and n in spec_of(layer.kind).STATE)])


def canonical(model: Model, keras_arrays: list, grads: bool = False) -> dict[tuple[str, str], np.ndarray]:
    """The Keras port's arrays (weights, or their gradients when `grads`: trainable weights only), in arrays()'
    order -> canonical {(layer, weight): array}: the inverse of arrays(), and for gradients the one bias of
    GRU(reset_after=False) is the gradient of b_x and of b_h alike."""
    out, k = {}, 0
    for layer in model.layers:
        if layer.kind not in WEIGHTED:
            continue
        opts = spec_of(layer.kind).options(layer.options)
        n = _count(layer, opts, grads)
        for name, a in _from_keras(layer, opts, [np.asarray(v) for v in keras_arrays[k : k + n]], grads).items():
            out[(layer.name, name)] = a
        k += n
    if k != len(keras_arrays):
        raise ValueError(f"model {model.name!r}: {len(keras_arrays)} Keras arrays where its port holds {k}")
    return out


def canonical_weights(mains: Mains, grads: list | None = None) -> dict[tuple[str, str], np.ndarray]:
    """The Keras layers' weights, a BatchNorm's moving statistics included (or `grads`, one per trainable variable
    in variables()' order), as canonical {(layer, weight): array}."""
    out, k = {}, 0
    for layer, opts, main in mains:
        vs = _variables(layer.kind, main, opts, trainable=grads is not None)
        arrays = [np.asarray(v) for v in vs] if grads is None else [np.asarray(g) for g in grads[k : k + len(vs)]]
        k += len(vs)
        for name, a in _from_keras(layer, opts, arrays, grads is not None).items():
            out[(layer.name, name)] = a
    return out


def variables(mains: Mains) -> list:
    """The Keras variables holding the weighted layers' trainable weights (what gradients are taken of), in
    arrays()' order less the moving statistics."""
    return _all_variables(mains)


def _all_variables(mains: Mains) -> list:
    return [v for layer, opts, main in mains for v in _variables(layer.kind, main, opts, trainable=True)]


def _finished(fn):
    """fn, synchronised where TensorFlow may return before its kernels ran (a GPU, async execution)."""
    if not tf.config.list_physical_devices("GPU") and tf.config.experimental.get_synchronous_execution():
        return fn

    def call(*a):
        out = fn(*a)
        tf_impl.synchronize()
        return out

    return call


def build(model: Model, dtype: str = "float32") -> Built:
    """The port (keras_model(model, dtype), as write() saves it) run under tf.function; canonical arrays in and
    out: NHWC images (and a channels_first source's 3-D feature maps, NWC) are transposed to the port's channels-first
    boundary in to_native and back in to_numpy."""
    net, mains = assemble(model, dtype, native_layout=False)
    cf = model.boundary == "channels_first"
    first, last = boundary_perms(model, False)
    flat = model.flattened_output()  # 2-D arrays here are the output and its dy: features in (c, h, w) order
    variables = _all_variables(mains)
    ids = _integer(model.input_dtype)  # token ids in: no gradient with respect to the input

    def _swap3(a, on):
        return np.swapaxes(a, 1, 2) if on is not None and len(on) == 2 and a.ndim == 3 else a

    def dy_to_native(a):
        a = np.asarray(a, dtype=dtype)
        a = convert.nhwc_to_nchw(a) if cf and a.ndim == 4 else convert.features_nhwc_to_nchw(a, flat) if flat and a.ndim == 2 else a
        return tf.convert_to_tensor(np.ascontiguousarray(_swap3(a, last)))

    def to_native(a):
        if ids:
            return tf.convert_to_tensor(np.asarray(a, dtype=model.input_dtype))
        a = np.asarray(a, dtype=dtype)
        a = convert.nhwc_to_nchw(a) if cf and a.ndim == 4 else a
        return tf.convert_to_tensor(np.ascontiguousarray(_swap3(a, first)))

    def to_numpy(t) -> np.ndarray:
        a = tf_impl.to_numpy(t)
        a = convert.nchw_to_nhwc(a) if cf and a.ndim == 4 else convert.features_nchw_to_nhwc(a, flat) if flat and a.ndim == 2 else a
        return np.ascontiguousarray(_swap3(a, last))

    def dx_to_numpy(t) -> np.ndarray:
        a = tf_impl.to_numpy(t)
        return np.ascontiguousarray(_swap3(convert.nchw_to_nhwc(a) if cf and a.ndim == 4 else a, first))

    def eager(x):
        return net(x, training=False)

    def grads(x, dy):
        with tf.GradientTape() as tape:
            if not ids:
                tape.watch(x)
            y = net(x, training=False)
        wrt = variables if ids else [x, *variables]
        g = tape.gradient(y, wrt, output_gradients=dy, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [None, *_dense_grads(g)] if ids else _dense_grads(g)

    def vjp(x, dy):  # eager: one call, no trace to pay for
        gx, *gw = grads(to_native(x), dy_to_native(dy))
        return (None if gx is None else dx_to_numpy(gx)), canonical_weights(mains, gw)

    notes = [f"{la.label(i)}: keras.layers.GRU(reset_after=False) holds one bias b_x + b_h" for i, la in enumerate(model.layers)
             if la.kind == "gru" and la.options.get("variant") == "reset_before"]  # fmt: skip
    notes += lstm_notes(model)
    notes += batch_norm_notes(model)
    notes += [f"{la.label(i)}: keras.layers.Embedding looks ids up with ops.take, which wraps a negative id to a row "
              "from the end; the written .keras file cannot refuse it, this voice refuses it at the boundary "
              "(Model.check_input)" for i, la in enumerate(model.layers) if la.kind == "embedding"]  # fmt: skip
    notes += [f"takes {'NCHW' if len(first) == 3 else 'NCW'} through Permute({first})"] if first else []
    notes += [f"returns {'NCHW' if len(last) == 3 else 'NCW'} through Permute({last})"] if last else []
    return Built(VOICE, dtype, to_native, _finished(tf.function(eager)), to_numpy, vjp, _finished(tf.function(grads)),
                 "tf.function", notes, eager=eager, native_model=net, dy_to_native=dy_to_native)  # fmt: skip


def batch_norm_notes(model: Model) -> list[str]:
    """keras.layers.BatchNormalization updates moving_variance with the biased batch variance (the one it normalises
    by): a description whose variance_update is torch's "unbiased" (n / (n - 1) times it) ports forward-exact (the
    inference forward reads the moving statistics as they are) but a training step moves moving_variance otherwise."""
    return [f"{la.label(i)}: variance_update 'unbiased' (torch's running_var) has no Keras form: "
            "keras.layers.BatchNormalization moves moving_variance by the biased batch variance; forward-exact, but a "
            "training step's moving_var differs from the source's by the factor n / (n - 1) on the batch variance's share"
            for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and spec_of(la.kind).options(la.options)["variance_update"] == "unbiased"]  # fmt: skip


def lstm_notes(model: Model) -> list[str]:
    """keras.layers.LSTM holds one bias per direction, b_x + b_h: the forward is exact; where the model's b_h is not all
    zero (a torch or ONNX source) the written port cannot give its two biases back, and a training step never
    matches the canonical one (Adam moves one bias where the canonical model moves two)."""
    out = []
    for i, la in enumerate(model.layers):
        if la.kind != "lstm":
            continue
        opts = spec_of(la.kind).options(la.options)
        two = [s for s in directions(opts) if np.any(np.asarray(la.weights["b_h" + s]) != 0)]
        out.append(f"{la.label(i)}: keras.layers.LSTM holds one bias b_x + b_h per direction: forward-exact"
                   + (f"; this model's b_h{'/'.join(two)} is not all zero, so the port is NOT training-exact (Adam "
                      "steps one bias where the model has two) and reads back as b_x = b_x + b_h, b_h = 0" if two else
                      "; its training step moves that one bias where the canonical model moves b_x and b_h"))
    return out


def port_dtype(model: Model) -> str:
    """The dtype a written port computes in: the source's input dtype where it is float64, else float32."""
    return model.input_dtype if model.input_dtype in DTYPES else "float32"


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Save the port at exactly `out` with model.save (a Keras 3 .keras zip whatever out's suffix), in the
    source's input dtype where it is float64, else float32. Returns [out]."""
    out = Path(out)
    net = keras_model(model, port_dtype(model), native_layout)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".keras_port_") as d:
        tmp = Path(d) / "model.keras"  # model.save insists on the .keras suffix
        net.save(tmp)
        os.replace(tmp, out)
    return [out]


# --------------------------------------------------------------------------- one training step


def _adam(dtype: str):
    """keras.optimizers.Adam with its own defaults and lr = training.LR, its hyper-parameters handed over as
    tensors of `dtype`: Keras turns Python floats into float32 before casting them (ops.cast(0.999, "float64")
    rounds through float32), which would put its float64 step ~7e-6 (relative) off its own formula."""
    d = keras.optimizers.Adam()
    lr, b1, b2 = (tf.constant(float(v), dtype=dtype) for v in (training.LR, d.beta_1, d.beta_2))
    return keras.optimizers.Adam(learning_rate=lambda: lr, beta_1=b1, beta_2=b2, epsilon=d.epsilon)


def train_notes(model: Model) -> list[str]:
    """What Keras' step cannot do as the canonical one does: a GRU(reset_after=False) or an LSTM has one bias c = b_x + b_h,
    stepped once by Adam, where the canonical model steps b_x and b_h apart; its b_h reads back as 0 and its b_x
    as c (compare with reference_step on convert.keras_single_bias's projection, b_h left out). A BatchNorm whose
    variance_update is "unbiased" moves moving_var by Keras' biased batch variance (batch_norm_notes)."""
    return [*(f"{la.label(i)}: Keras' single GRU bias b_x + b_h is one Adam parameter; b_h reads back 0"
              for i, la in enumerate(model.layers) if la.kind == "gru" and la.options.get("variant") == "reset_before"),
            *(f"{la.label(i)}: Keras' single LSTM bias b_x + b_h is one Adam parameter; b_h reads back 0"
              for i, la in enumerate(model.layers) if la.kind == "lstm"),
            *batch_norm_notes(model)]  # fmt: skip


def train_step(model: Model, x: np.ndarray, t: np.ndarray, dtype: str = "float64") -> tuple[float, dict[tuple[str, str], np.ndarray]]:
    """One keras.optimizers.Adam step (eps 1e-7, lr training.LR) on training.loss_kind's loss computed by
    keras.losses (CategoricalCrossentropy on the softmax output / MeanSquaredError, the mean over the batch),
    Dropout off, in Keras' own NHWC layout. A model with BatchNormalization runs it in training mode (the batch's
    statistics; every Dropout of the step's copy has rate 0, so dropout stays off) and the layer moves its moving
    statistics itself. Returns (loss before the step, canonical weights after it, and (layer, "moving_mean" /
    "moving_var") after the step where the model has state)."""
    net, mains = assemble(model, dtype, native_layout=True, dropout=False)
    kind = training.loss_kind(model)
    loss_fn = (keras.losses.CategoricalCrossentropy(dtype=dtype) if kind == "categorical_crossentropy"
               else keras.losses.MeanSquaredError(dtype=dtype))  # fmt: skip
    variables = _all_variables(mains)
    opt = _adam(dtype)
    opt.build(variables)
    xt = tf.convert_to_tensor(np.asarray(x, dtype=model.input_dtype if _integer(model.input_dtype) else dtype))
    tt = tf.convert_to_tensor(np.asarray(t, dtype=dtype))
    train_mode = bool(model.state())  # BatchNormalization on the batch; without state, inference mode as always
    with tf.GradientTape() as tape:
        loss = loss_fn(tt, net(xt, training=train_mode))
    opt.apply_gradients(zip(_dense_grads(tape.gradient(loss, variables)), variables))
    return float(loss), canonical_weights(mains)


__all__ = ["DTYPES", "assemble", "batch_norm_notes", "boundary_perms", "build", "canonical_weights", "keras_model", "lstm_notes", "model_name", "permutes", "refusal", "train_notes",
           "train_step", "write"]
