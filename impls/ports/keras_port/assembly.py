"""The Keras port's assembly: the description's layers, each through its kind's emitter, as a keras.Sequential (a
chain) or a functional keras.Model (a graph: merges, a tensor read twice, wired as Layer.inputs say), named after
them, with the permutes its boundary needs and the weights set.

One description layer is one Keras layer named after it (each character that Keras or TensorFlow's name scopes refuse,
'/', ' ', ':', '(', as '_'), except where Keras needs a layer in front of it ("<layer>_pad", "<layer>_crop": the
emitters say which). A model whose source takes NCHW images (model.boundary "channels_first") starts with
Permute((2, 3, 1)) and, where it returns a 4-D map, ends with Permute((3, 1, 2)); where it returns a Flatten of a map,
it ends with Reshape, Permute((3, 1, 2)) and Flatten, so the features come out in the source's (c, h, w) order
(model.flattened_output); native_layout=True leaves them out (Keras' own NHWC) and says so in the model name. A
channels_first source's 3-D feature map (B, C, L: what a conv1d, batch_norm or global pool reads) comes in through
Permute((2, 1)) and, returned, goes out through one.

Inside those permutes every tensor is in the canonical layout, so the in-process build (voice.py) reads every
description layer's output off the same Keras layers (tapped: a second functional model over them, the taps); the
net keras_model makes, and the file write() saves, have no taps.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ...model.description import INPUT, Model
from ...model.layers import spec_of
from .emitters import EMITTERS, Site, check, emitter, keras
from .weights import Mains, assign, weights_of

TO_NHWC, TO_NCHW = (2, 3, 1), (3, 1, 2)  # keras.layers.Permute's dims (batch excluded)
TO_NWC = TO_NCW = (2, 1)  # a 3-D feature map's


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


def _flag(kind: str, key: str) -> bool:
    entry = EMITTERS.get(kind)
    return bool(entry is not None and entry.meta.get(key))


def _maps3(model: Model) -> list[bool]:
    """Per tensor ([input, layer 0, ...]), whether a channels_first source holds it as a 3-D feature map (B, C, L):
    the input where a kind that reads maps (reads_map: conv1d, batch_norm, global pool) reads it; the output of one
    that makes maps (makes_map: conv1d), and what one that keeps them (keeps_map: activation, dropout, batch_norm,
    merges) makes of maps. A sequence (B, T, F) read by a recurrent layer or a dense is not one."""
    shapes = model.shapes(1)
    out = [len(shapes[0]) == 3 and any(_flag(model.layers[i].kind, "reads_map") for i in model.consumers(INPUT))]
    for i, la in enumerate(model.layers):
        srcs = model.source_indices(i)
        is_map = _flag(la.kind, "makes_map") or (_flag(la.kind, "keeps_map") and all(out[j + 1] for j in srcs))
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


def _wiring(layer: Any) -> Any:
    """The kind's wire, where its Keras layers are no chain with these options (its `wired(opts)`, or always)."""
    meta = EMITTERS.get(layer.kind).meta
    wired = meta.get("wired")
    return meta.get("wire") if wired is None or wired(spec_of(layer.kind).options(layer.options)) else None


def integer(dtype: str) -> bool:
    return bool(np.issubdtype(np.dtype(dtype), np.integer))


def keras_model(model: Model, dtype: str = "float32", native_layout: bool = False):
    """The port: a keras.Sequential (a chain) or a functional keras.Model (a graph) of built-in layers holding the
    model's weights in `dtype`. What write() saves and build() runs."""
    return assemble(model, dtype, native_layout)[0]


def assemble(model: Model, dtype: str = "float32", native_layout: bool = False, dropout: bool = True) -> tuple[Any, Mains]:
    """(keras_model's net, its Mains): what canonical_weights reads weights or gradients back through. A chain is a
    keras.Sequential, a graph (merges, a tensor read twice) a functional keras.Model wired as the description's
    `inputs` say. dropout=False: every Dropout rate 0 (the training step's copy)."""
    net, mains, _ = _assemble(model, dtype, native_layout, dropout)
    return net, mains


def layer_tensors(per_layer: list[list]) -> list:
    """Each description layer's output in the assembled graph: the output of the LAST of its Keras layers (a pad or a
    crop goes in front of its own). Every one is in the port's inner layout, which is the canonical one (NHWC maps,
    (B, L, C) 3-D feature maps, (h, w, c) flattened features): the boundary's permutes lie outside them."""
    return [pieces[-1].output for pieces in per_layer]


def tapped(model: Model, dtype: str = "float32") -> tuple[Any, Mains, Any]:
    """(assemble's net and Mains, taps): taps is a functional keras.Model over the same Keras layers (the same
    weights) from the same input, whose outputs are every description layer's output (layer_tensors), in layer
    order and in the canonical layout. The net is keras_model's own (the .keras file write() saves is unchanged)."""
    net, mains, per_layer = _assemble(model, dtype, False, True)
    taps = keras.Model(net.inputs[0], layer_tensors(per_layer), name=f"{net.name}_taps")
    return net, mains, taps


def _assemble(model: Model, dtype: str, native_layout: bool, dropout: bool) -> tuple[Any, Mains, list[list]]:
    """assemble's (net, Mains) and each description layer's Keras layers, in order."""
    check(model, dtype)
    shapes = model.input_shapes(1)
    first, last = boundary_perms(model, native_layout)
    used: set[str] = set()
    knames = [_unique(_safe(layer.name), used) for layer in model.layers]  # Keras forbids '/', TF's scopes ' ', ':'...
    in_shape = tuple(model.input_shape)
    if first is not None:  # the source's channels-first shape
        in_shape = tuple(model.input_shape[i - 1] for i in (TO_NCHW if first == TO_NHWC else TO_NCW))
    in_dtype = model.input_dtype if integer(model.input_dtype) else dtype  # token ids stay integers
    inp = keras.Input(shape=in_shape, dtype=in_dtype, name=_unique("input", used))
    head = [keras.layers.Permute(first, dtype=dtype, name=_unique("to_nhwc" if len(first) == 3 else "to_nwc", used))] if first else []
    per_layer, mains = [], []
    for i, (layer, kname) in enumerate(zip(model.layers, knames, strict=True)):
        opts = spec_of(layer.kind, layer.label(i)).options(layer.options)
        entry = emitter(layer.kind, layer.label(i))
        helper = _unique(f"{kname}_{entry.meta.get('helper', 'pad')}", used)
        gelu_tanh = layer.kind != "activation" and opts.get("activation") == "gelu_tanh"  # no Keras activation name
        pieces = entry.fn({**opts, "activation": "linear"} if gelu_tanh else opts, Site(kname, helper, shapes[i], dtype, dropout))
        if gelu_tanh:  # keras.ops.gelu's node after the layer (issue 24; the .keras file loads it in safe mode)
            pieces = [*pieces, keras.src.ops.nn.Gelu(approximate=True, name=_unique(f"{kname}_gelu_tanh", used))]
        per_layer.append(pieces)
        if weights_of(layer.kind) is not None:  # the last Keras layer holds the weights (a keras.ops node holds none)
            held = entry.meta.get("main")  # or the piece the kind names (a token's EinsumDense before its merge)
            holder = held(pieces) if callable(held) else None if held is None else pieces[held]
            mains.append((layer, opts, [p for p in pieces if isinstance(p, keras.layers.Layer)][-1] if held is None else holder))
    tail = [keras.layers.Permute(last, dtype=dtype, name=_unique("to_nchw" if len(last) == 3 else "to_ncw", used))] if last else []
    flat = None if native_layout else model.flattened_output()
    if flat:  # the channels_first source's flattened features come out in its (c, h, w) order
        tail += [keras.layers.Reshape(flat, dtype=dtype, name=_unique("to_chw_map", used)),
                 keras.layers.Permute(TO_NCHW, dtype=dtype, name=_unique("to_chw", used)),
                 keras.layers.Flatten(dtype=dtype, name=_unique("to_chw_flat", used))]  # fmt: skip
    wired = [_wiring(la) for la in model.layers]  # a kind whose Keras layers are no chain
    ops = any(not isinstance(p, keras.layers.Layer) for ps in per_layer for p in ps)  # a keras.ops node: no Sequential
    if model.is_chain() and not any(wired) and not ops:
        net = keras.Sequential([inp, *head, *(p for ps in per_layer for p in ps), *tail], name=model_name(model, native_layout))
    else:
        t = inp
        for la in head:
            t = la(t)
        env = {INPUT: t}
        for i, (layer, pieces) in enumerate(zip(model.layers, per_layer, strict=True)):
            ins = [env[s] for s in model.sources(i)]
            y = ins[0] if spec_of(layer.kind).ARITY == 1 else ins
            if wired[i]:  # wire(pieces, opts, y) calls them on y as the kind connects them (the last one's output is y)
                y = wired[i](pieces, spec_of(layer.kind).options(layer.options), y)
            for piece in [] if wired[i] else pieces:
                y = piece(y)
            env[layer.name] = y
        for la in tail:
            y = la(y)
        net = keras.Model(inp, y, name=model_name(model, native_layout))
    assign(mains, dtype)
    return net, mains, per_layer


__all__ = ["assemble", "boundary_perms", "integer", "keras_model", "layer_tensors", "model_name", "permutes", "tapped"]
