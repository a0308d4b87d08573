"""The Keras importer: a Keras 3 .keras file (loaded with safe_mode on) or a keras.Model -> a model description.

    imported = load_file(Path("mnist.keras"), None)       # the model's own input shape
    imported = from_model(net, (3, 100, 64), "net.py:net")  # --input-shape, batch first

A model imports when it is a graph of built-in layers with one input and one output: a keras.Sequential, or a
functional model whose layers form a DAG (Add and Concatenate join paths, a tensor may feed several layers); the
description's Layer.inputs record it (empty for a layer fed by the one before). Several inputs or outputs and a layer
called at several places (shared weights) are a later step and refused with that reason. Each layer goes through one
small converter, registered by its exact class in CONVERTERS; a class that is not there (SimpleRNN, ZeroPadding1D,
a custom or subclassed layer) is UnsupportedLayer naming the layer, its class, its position and the supported list.
Weights are read in Keras' own layouts, which are the canonical ones except for the recurrent layers
(convert.gru_from_keras: its one bias without reset_after becomes b_x, with b_h = 0; convert.lstm_from_keras: the
LSTM's one bias is b_x, b_h = 0).

Issue 18's kinds: Conv1D (valid, same, causal; strides, dilation, groups), BatchNormalization (the last axis only;
momentum and epsilon as Keras keeps them, which is the description's convention; moving_mean / moving_variance as
the model's state; variance_update "biased", Keras' own), LayerNormalization (the last axis; rms_scaling refused),
GlobalAverage/MaxPooling1D/2D (keepdims=False; True refused), Reshape (to a flat vector: a Flatten), Permute,
Flatten anywhere, Add, Concatenate(axis) (Keras' channels_last axis is the canonical one).

Sequences: Embedding (the first layer, integer ids; mask_zero), Masking, GRU and LSTM (tanh / sigmoid only;
go_backwards, stateful and return_state refused; unroll is the same recurrence; dropouts are off at inference;
zero_output_for_mask -> padded_outputs 'zero', else 'hold' where the layer returns sequences under a mask) and
Bidirectional(GRU | LSTM) with merge_mode concat, sum, ave or mul (None refused; an explicit backward_layer imports
where it is the forward layer's mirror, else it is refused). Keras carries the masks itself; the description's
Model.mask_sources says the same.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract.spec import ShapeError
from ..model.description import INPUT, Layer, Model, ModelError
from ..model.layers import ACTIVATIONS, spec_of
from . import BadInput, Imported, UnsupportedLayer

keras = frameworks.load("keras")
Functional = frameworks.load_attr("keras.src.models.functional", "Functional")
L = keras.layers

Converted = tuple[str, dict, dict] | None  # (kind, options, canonical weights); None: the layer is skipped
CONVERTERS: dict[type, Callable[[Context], Converted]] = {}


def converter(*classes: type) -> Callable:
    """Register fn as the converter of these exact Keras layer classes (a subclass is not the same layer)."""

    def register(fn):
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn

    return register


def supported() -> str:
    return ", ".join(f"keras.layers.{c.__name__}" for c in CONVERTERS)


class Context:
    """One Keras layer being converted: its config, its input shape (batch first) and how to refuse it."""

    def __init__(self, layer: Any, position: int, in_shape: tuple[int, ...], where: str):
        self.layer, self.position, self.in_shape, self.where = layer, position, in_shape, where
        self.config = layer.get_config()
        self.notes: list[str] = []
        self.input_dtype = "float32"  # the model's input dtype (token ids for an Embedding), set by from_model

    @property
    def label(self) -> str:
        return f"layer {self.position} {self.layer.name!r} (keras.layers.{type(self.layer).__name__})"

    def refuse(self, why: str) -> UnsupportedLayer:
        return UnsupportedLayer(f"{self.where}: {self.label}: {why}")

    def activation(self, key: str = "activation") -> str:
        act = self.config.get(key, "linear")
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise self.refuse(f"{key}={act!r} is not one of {', '.join(ACTIVATIONS)}")
        return act

    def channels_last(self) -> None:
        if self.config.get("data_format", "channels_last") != "channels_last":
            raise self.refuse(f"data_format={self.config['data_format']!r}: the description's images are NHWC; "
                              "only channels_last Keras layers import")  # fmt: skip

    def padding(self) -> str:
        pad = str(self.config["padding"]).lower()
        if pad not in ("valid", "same"):
            raise self.refuse(f"padding={pad!r} is not 'valid' or 'same'")
        return pad

    def weight(self, name: str) -> np.ndarray:
        return np.asarray(keras.ops.convert_to_numpy(getattr(self.layer, name)))

    def kernel_and_bias(self) -> dict[str, np.ndarray]:
        w = {"kernel": self.weight("kernel")}
        if self.config["use_bias"]:
            w["bias"] = self.weight("bias")
        return w


def _pair(v: Any) -> list[int]:
    return [int(a) for a in v] if isinstance(v, (list, tuple)) else [int(v), int(v)]


# --------------------------------------------------------------------------- the converters, one per layer class


@converter(L.InputLayer)
def _input(c: Context) -> Converted:
    return None


@converter(L.Dense)
def _dense(c: Context) -> Converted:
    return "dense", {"units": int(c.config["units"]), "activation": c.activation(), "use_bias": bool(c.config["use_bias"])}, c.kernel_and_bias()


@converter(L.Conv2D)
def _conv2d(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    opts = {"filters": int(cfg["filters"]), "kernel_size": _pair(cfg["kernel_size"]), "strides": _pair(cfg["strides"]),
            "padding": c.padding(), "dilation": _pair(cfg["dilation_rate"]), "groups": int(cfg.get("groups", 1)),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "conv2d", opts, c.kernel_and_bias()  # HWIO (KH, KW, C / groups, F): the canonical layout


@converter(L.DepthwiseConv2D)
def _depthwise(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    opts = {"kernel_size": _pair(cfg["kernel_size"]), "depth_multiplier": int(cfg["depth_multiplier"]),
            "strides": _pair(cfg["strides"]), "padding": c.padding(), "dilation": _pair(cfg["dilation_rate"]),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "depthwise_conv2d", opts, c.kernel_and_bias()  # (KH, KW, C, M): the canonical layout


@converter(L.MaxPooling2D)
def _max_pool(c: Context) -> Converted:
    c.channels_last()
    pool = _pair(c.config["pool_size"])
    strides = pool if c.config["strides"] is None else _pair(c.config["strides"])
    return "max_pool2d", {"pool_size": pool, "strides": strides, "padding": c.padding()}, {}


@converter(L.AveragePooling2D)
def _avg_pool(c: Context) -> Converted:
    _, opts, _ = _max_pool(c)
    # Keras divides by the input cells a window covers ('same' as TensorFlow): padded cells are not counted
    return "avg_pool2d", {**opts, "count_include_pad": False}, {}


@converter(L.ZeroPadding2D)
def _zero_pad(c: Context) -> Converted:
    c.channels_last()
    (t, b), (l, r) = c.config["padding"]
    return "zero_pad2d", {"padding": [[int(t), int(b)], [int(l), int(r)]]}, {}


@converter(L.Flatten)
def _flatten(c: Context) -> Converted:
    if len(c.in_shape) > 2:
        c.channels_last()  # channels_first moves axis 1 last before flattening: (c, h, w) would become (h, w, c)
    return "flatten", {}, {}


@converter(L.Reshape)
def _reshape(c: Context) -> Converted:
    target = [int(d) for d in c.config["target_shape"]]  # batch excluded, -1 allowed: the description's own
    flat = int(np.prod(c.in_shape[1:]))
    if len(target) == 1 and target[0] in (-1, flat):  # a flat vector: the Flatten every voice has
        c.notes.append(f"{c.label}: Reshape({tuple(target)}) imported as a Flatten")
        return "flatten", {}, {}
    return "reshape", {"target_shape": target}, {}


@converter(L.Permute)
def _permute(c: Context) -> Converted:
    return "permute", {"dims": [int(d) for d in c.config["dims"]]}, {}  # 1-based, batch excluded: the description's


def _last_axis(c: Context, rank: int) -> None:
    axis = c.config.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if [int(a) % rank for a in axes] != [rank - 1]:
        raise c.refuse(f"axis={axis!r} on an input of rank {rank} {c.in_shape}: only the last axis (-1) imports, the "
                       "channels of a channels_last map or the features of a sequence")  # fmt: skip


def _one(v: Any) -> int:
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


@converter(L.Conv1D)
def _conv1d(c: Context) -> Converted:
    c.channels_last()
    cfg = c.config
    pad = str(cfg["padding"]).lower()
    if pad not in ("valid", "same", "causal"):
        raise c.refuse(f"padding={pad!r} is not 'valid', 'same' or 'causal'")
    opts = {"filters": int(cfg["filters"]), "kernel_size": _one(cfg["kernel_size"]), "strides": _one(cfg["strides"]),
            "padding": pad, "dilation": _one(cfg["dilation_rate"]), "groups": int(cfg.get("groups", 1)),
            "activation": c.activation(), "use_bias": bool(cfg["use_bias"])}  # fmt: skip
    return "conv1d", opts, c.kernel_and_bias()  # (K, C / groups, F): the canonical layout


@converter(L.BatchNormalization)
def _batch_norm(c: Context) -> Converted:
    """Keras' momentum is the description's (the old value's share), its moving_variance moves by the biased batch
    variance (variance_update "biased"); synchronized only changes how a distributed batch's statistics are summed."""
    cfg = c.config
    _last_axis(c, len(c.in_shape))
    if cfg.get("renorm"):
        raise c.refuse("renorm=True (batch renormalization) is not the description's BatchNorm")
    opts = {"momentum": float(cfg["momentum"]), "epsilon": float(cfg["epsilon"]), "center": bool(cfg["center"]),
            "scale": bool(cfg["scale"]), "variance_update": "biased"}  # fmt: skip
    w = {**({"gamma": c.weight("gamma")} if opts["scale"] else {}), **({"beta": c.weight("beta")} if opts["center"] else {}),
         "moving_mean": c.weight("moving_mean"), "moving_var": c.weight("moving_variance")}  # fmt: skip
    c.notes.append(f"{c.label}: momentum={opts['momentum']} (the old value's share, as the description keeps it), "
                   f"epsilon={opts['epsilon']}; its moving statistics are the model's state; moving_variance moves by "
                   "the biased batch variance (variance_update 'biased')")  # fmt: skip
    return "batch_norm", opts, w


@converter(L.LayerNormalization)
def _layer_norm(c: Context) -> Converted:
    cfg = c.config
    _last_axis(c, len(c.in_shape))
    if cfg.get("rms_scaling"):
        raise c.refuse("rms_scaling=True divides by the root mean square without centring: not the description's "
                       "layer_norm")  # fmt: skip
    opts = {"epsilon": float(cfg["epsilon"]), "center": bool(cfg["center"]), "scale": bool(cfg["scale"])}
    w = {**({"gamma": c.weight("gamma")} if opts["scale"] else {}), **({"beta": c.weight("beta")} if opts["center"] else {})}
    return "layer_norm", opts, w


def _global_pool(kind: str, rank: int) -> Callable[[Context], Converted]:
    def convert_pool(c: Context) -> Converted:
        c.channels_last()
        if c.config.get("keepdims"):
            raise c.refuse("keepdims=True keeps the pooled axes as size 1: only keepdims=False, (B, C), imports")
        if len(c.in_shape) != rank:
            raise c.refuse(f"its input {c.in_shape} is not of rank {rank}")
        return kind, {}, {}

    return convert_pool


converter(L.GlobalAveragePooling1D)(_global_pool("global_avg_pool", 3))
converter(L.GlobalAveragePooling2D)(_global_pool("global_avg_pool", 4))
converter(L.GlobalMaxPooling1D)(_global_pool("global_max_pool", 3))
converter(L.GlobalMaxPooling2D)(_global_pool("global_max_pool", 4))


@converter(L.Add)
def _add(c: Context) -> Converted:
    return "add", {}, {}


@converter(L.Concatenate)
def _concatenate(c: Context) -> Converted:
    axis = int(c.config.get("axis", -1))  # Keras' channels_last axis is the canonical one
    if axis % len(c.in_shape[0]) == 0:
        raise c.refuse(f"axis={axis} is the batch axis")
    return "concatenate", {"axis": axis}, {}


MERGES = (L.Add, L.Concatenate)


@converter(L.Dropout)
def _dropout(c: Context) -> Converted:
    return "dropout", {"rate": float(c.config["rate"])}, {}


@converter(L.Activation)
def _activation(c: Context) -> Converted:
    return "activation", {"activation": c.activation()}, {}


@converter(L.ReLU)
def _relu(c: Context) -> Converted:
    cfg = c.config
    if cfg.get("max_value") is not None or float(cfg.get("negative_slope", 0.0)) != 0.0 or float(cfg.get("threshold", 0.0)) != 0.0:
        raise c.refuse(f"ReLU(max_value={cfg.get('max_value')}, negative_slope={cfg.get('negative_slope')}, "
                       f"threshold={cfg.get('threshold')}): only the default ReLU() is the relu activation")  # fmt: skip
    return "activation", {"activation": "relu"}, {}


@converter(L.Softmax)
def _softmax(c: Context) -> Converted:
    axis = c.config.get("axis", -1)
    if axis not in (-1, len(c.in_shape) - 1, [-1], [len(c.in_shape) - 1]):
        raise c.refuse(f"Softmax(axis={axis}): only the softmax over the last axis imports")
    return "activation", {"activation": "softmax"}, {}


@converter(L.Embedding)
def _embedding(c: Context) -> Converted:
    cfg = c.config
    if c.position != 0:
        raise c.refuse("an Embedding imports as the model's first layer only (the one fed the integer token ids)")
    if not np.issubdtype(np.dtype(c.input_dtype), np.integer):
        raise c.refuse(f"the model's input is {c.input_dtype}: Keras would cast it to int32 ids (truncating); give "
                       "the model an integer keras.Input(dtype='int32') to import it")  # fmt: skip
    if cfg.get("lora_rank") or getattr(c.layer, "quantization_mode", None):
        raise c.refuse("a LoRA or quantized Embedding is not a plain table lookup")
    # embeddings_constraint / regularizer / initializer only act in training or at init
    opts = {"input_dim": int(cfg["input_dim"]), "output_dim": int(cfg["output_dim"]), "mask_zero": bool(cfg["mask_zero"])}
    return "embedding", opts, {"embeddings": c.weight("embeddings")}


@converter(L.Masking)
def _masking(c: Context) -> Converted:
    return "masking", {"mask_value": float(c.config["mask_value"])}, {}


_RNN_DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "go_backwards": False,
                 "stateful": False, "return_state": False}  # fmt: skip
_RNN_WHY = {
    "activation": "the candidate's (cell's) activation must be tanh, as the description's GRU and LSTM define it",
    "recurrent_activation": "the gates' activation must be sigmoid, as the description's GRU and LSTM define it",
    "use_bias": "use_bias=False: the description's GRU always holds b_x and b_h",
    "go_backwards": ("go_backwards=True reads the sequence reversed (and returns its steps reversed): not a layer the "
                     "description has outside a Bidirectional"),
    "stateful": "stateful=True carries the state between calls: a certificate's calls must be independent",
    "return_state": "return_state=True returns several tensors: a chain passes one",
}  # fmt: skip


def _rnn(c: Context, layer: Any, backward: bool = False) -> tuple[str, dict, dict]:
    """One keras.layers.GRU or LSTM (or a Bidirectional's forward or backward layer) -> (kind, options, one cell's
    canonical weights). unroll computes the same recurrence; dropout and recurrent_dropout are identity at
    inference; unit_forget_bias, initializers, regularizers and constraints only act at init or in training."""
    cfg = layer.get_config()
    kind = "gru" if isinstance(layer, L.GRU) else "lstm"
    for key, default in _RNN_DEFAULTS.items():
        want = (not default) if key == "go_backwards" and backward else default
        if key == "use_bias" and kind == "lstm":
            continue  # an LSTM without a bias imports with b_x = b_h = 0 (noted)
        if cfg.get(key, default) != want:
            why = _RNN_WHY[key] if not backward else f"the backward layer {layer.name!r} is not the forward's mirror"
            raise c.refuse(f"{key}={cfg[key]!r}: {why}")
    cell = layer.cell
    arrays = [keras.ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel, *([cell.bias] if cell.use_bias else []))]
    if cfg.get("dropout", 0.0) or cfg.get("recurrent_dropout", 0.0):
        c.notes.append(f"{c.label}: dropout and recurrent_dropout are off at inference, as everything here runs")
    opts = {"units": int(cfg["units"]), "return_sequences": bool(cfg["return_sequences"]),
            "padded_outputs": "zero" if cfg.get("zero_output_for_mask") or not cfg["return_sequences"] else "hold"}  # fmt: skip
    if kind == "gru":
        ra = bool(cfg["reset_after"])
        w = convert.gru_from_keras(arrays, ra)
        if not ra and not backward:
            c.notes.append(f"{c.label}: reset_after=False holds one bias; imported as b_x, with b_h = 0")
        opts["variant"] = "reset_after" if ra else "reset_before"
    else:
        w = convert.lstm_from_keras(arrays)
        if not backward:
            c.notes.append(f"{c.label}: keras.layers.LSTM holds one bias; imported as b_x, with b_h = 0"
                           if cell.use_bias else f"{c.label}: use_bias=False: imported with b_x = b_h = 0")
    return kind, opts, {"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}


@converter(L.GRU, L.LSTM)
def _recurrent(c: Context) -> Converted:
    return _rnn(c, c.layer)


_MIRRORED = ("units", "activation", "recurrent_activation", "use_bias", "return_sequences", "reset_after", "stateful",
             "return_state", "dtype")  # fmt: skip


@converter(L.Bidirectional)
def _bidirectional(c: Context) -> Converted:
    """Bidirectional(GRU | LSTM, merge_mode): the backward cell runs each row's valid steps last first; its
    sequence comes back aligned with the input (Keras flips it), padded steps zero (Keras forces
    zero_output_for_mask=True on both layers when they return sequences)."""
    fwd, bwd, merge = c.layer.forward_layer, c.layer.backward_layer, c.config.get("merge_mode")
    if type(fwd) not in (L.GRU, L.LSTM):
        raise c.refuse(f"it wraps a keras.layers.{type(fwd).__name__}: only a Bidirectional GRU or LSTM imports")
    if merge is None:
        raise c.refuse("merge_mode=None returns the two directions as two tensors: a chain passes one")
    if type(bwd) is not type(fwd):
        raise c.refuse(f"backward_layer is a keras.layers.{type(bwd).__name__}, the forward layer a "
                       f"keras.layers.{type(fwd).__name__}: not the forward's mirror")  # fmt: skip
    if fwd.go_backwards:
        raise c.refuse("its forward layer has go_backwards=True (and the backward layer False): the description's "
                       "forward cell reads the sequence first step first")  # fmt: skip
    fc, bc = fwd.get_config(), bwd.get_config()
    differ = [k for k in _MIRRORED if fc.get(k) != bc.get(k)]
    if differ:
        raise c.refuse(f"backward_layer differs from the forward layer in {', '.join(f'{k} ({fc.get(k)!r} vs {bc.get(k)!r})' for k in differ)}: "
                       "only a mirror of the forward layer imports")  # fmt: skip
    kind, opts, w = _rnn(c, fwd)
    _, _, w_rev = _rnn(c, bwd, backward=True)
    opts = {**opts, "direction": "bidirectional", "merge_mode": str(merge), "padded_outputs": "zero"}
    return kind, opts, {**w, **{k + "_rev": v for k, v in w_rev.items()}}


# --------------------------------------------------------------------------- the chain


def _branches(where: str, why: str, shared: bool = False) -> UnsupportedLayer:
    tail = ("a layer called at several places shares its weights between them, which the description's layers, one "
            "weight set per layer, cannot say (a later step)") if shared else (
            "a graph of layers with one input and one output imports (several inputs or outputs are a later step)")
    return UnsupportedLayer(f"{where}: {why}; {tail}")


def _graph(net: Any) -> Any:
    """The functional graph a model runs: a Sequential's own (Keras builds one), or the model itself."""
    return net._functional if isinstance(net, keras.Sequential) else net


def _mask_ops(nodes: list) -> set[int]:
    """ids of the nodes that only compute Keras' automatic padding masks: Keras 3 records an Embedding(mask_zero)'s
    or a Masking's compute_mask (ops NotEqual, Any...) as operations of the functional graph, whose outputs a
    masked layer takes as its mask= argument. An operation that feeds anything else is not one of them."""
    masks = {id(t._keras_mask) for n in nodes for t in n.output_tensors if getattr(t, "_keras_mask", None) is not None}
    masks |= {id(n.arguments.kwargs["mask"]) for n in nodes if n.arguments.kwargs.get("mask") is not None}
    out: set[int] = set()
    for node in reversed(nodes):  # outputs first: a mask op's own inputs may be mask ops too
        if isinstance(node.operation, L.Layer) or not all(id(t) in masks for t in node.output_tensors):
            continue
        out.add(id(node))
        masks |= {id(t) for t in node.input_tensors}
    return out


def _chain(net: Any, where: str) -> tuple[list[tuple[Any, Any, list]], dict[int, int]]:
    """([(layer, its output tensor in this model, the tensors it reads)] in topological order, InputLayer left
    out, {position of a layer given a mask=: position of the layer fed the tensor that mask is computed from}),
    after checking the model's graph is one we import: one input, one output, every layer called once (a DAG of
    layers: Add and Concatenate read several, a tensor may be read by several layers). The graph's own nodes are
    read (Keras' _nodes_by_depth), not layer.input: a layer keeps the nodes of every call it ever had (a loaded
    Sequential's first layer has two), and layer.input is the first. Keras' own mask computations are left out
    (_mask_ops); from_model checks each mask= against the description's Model.mask_sources (an explicit mask of
    the user's own is refused)."""
    graph = _graph(net)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise _branches(where, f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    nodes = [n for depth in sorted(graph._nodes_by_depth, reverse=True) for n in graph._nodes_by_depth[depth]]
    mask_ops = _mask_ops(nodes)
    producer = {id(t): n for n in nodes for t in n.output_tensors}
    nodes = [n for n in nodes if id(n) not in mask_ops]
    calls = [n.operation for n in nodes]
    made = {id(graph.inputs[0])}  # tensors made so far: the input, then each imported layer's output
    chain: list = []
    masked: dict[int, int] = {}  # chain position of a layer given a mask= -> position of the layer fed the mask's root
    for node in nodes:
        layer = node.operation
        if isinstance(layer, L.InputLayer):
            continue
        label = f"layer {len(chain)} {layer.name!r} (keras.layers.{type(layer).__name__})"
        if isinstance(layer, keras.Model):
            raise UnsupportedLayer(f"{where}: {label} is a nested model; nnparity imports one flat graph of layers "
                                   f"(rebuild it with the inner layers in place); supported: {supported()}")  # fmt: skip
        if not isinstance(layer, L.Layer):
            raise UnsupportedLayer(f"{where}: {label}: the operation {type(layer).__name__} is not a keras.layers "
                                   f"layer (a raw keras.ops call in the graph); supported: {supported()}")  # fmt: skip
        if sum(c is layer for c in calls) != 1:
            raise _branches(where, f"{label} is called at {sum(c is layer for c in calls)} places (a shared layer)",
                            shared=True)  # fmt: skip
        mask = node.arguments.kwargs.get("mask")
        inputs = [t for t in node.input_tensors if mask is None or t is not mask]
        if mask is not None:
            roots = _mask_roots(mask, producer, mask_ops)
            src = [i for i, (_, _, ins) in enumerate(chain) if any(t is r for t in ins for r in roots)]
            if len(roots) != 1 or not src:
                raise UnsupportedLayer(f"{where}: {label} is given a mask= that is not computed from one of the "
                                       "chain's (the graph's) own tensors: only the padding mask Keras carries from an "
                                       "Embedding(mask_zero=True) or a Masking imports")  # fmt: skip
            makers = [i for i in src if type(chain[i][0]) in (L.Embedding, L.Masking)]
            masked[len(chain)] = (makers or src)[0]
        if not inputs or any(id(t) not in made for t in inputs):
            raise _branches(where, f"{label} reads a tensor that is not the model's input nor a layer's output")
        made.add(id(node.output_tensors[0]))  # a layer with several outputs (return_state) is refused by its converter
        chain.append((layer, node.output_tensors[0], inputs))
    if not chain or graph.outputs[0] is not chain[-1][1]:
        raise _branches(where, "the model's output is not its last layer's")
    return chain, masked


def _mask_roots(t: Any, producer: dict, mask_ops: set[int]) -> list:
    """The chain tensors a mask is computed from, through Keras' mask operations."""
    node = producer.get(id(t))
    if node is None or id(node) not in mask_ops:
        return [t]
    out: list = []
    for u in node.input_tensors:
        out += [r for r in _mask_roots(u, producer, mask_ops) if not any(r is o for o in out)]
    return out


def _input_shape(net: Any, given: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    """The batch-first input shape: `given` (--input-shape), checked against the model's known dimensions."""
    known = tuple(_graph(net).inputs[0].shape)
    if given is not None:
        given = tuple(int(d) for d in given)
        if len(given) != len(known) or any(k is not None and k != g for k, g in zip(known[1:], given[1:], strict=False)):
            raise ShapeError(f"{where}: --input-shape {given} does not fit the model's input shape {known} "
                             "(batch first; None is any size)")  # fmt: skip
        return given
    if any(d is None for d in known[1:]):
        raise BadInput(f"{where}: the model's input shape {known} leaves a dimension besides the batch unknown; "
                       f"give --input-shape, batch first (for example 3,{','.join(str(d or 100) for d in known[1:])})")
    return (1, *known[1:])


def _built(net: Any, input_shape: tuple[int, ...] | None, where: str) -> Any:
    if not isinstance(net, keras.Model):
        raise BadInput(f"{where}: a {type(net).__module__}.{type(net).__name__}, not a keras.Model")
    if not isinstance(net, (keras.Sequential, Functional)):
        raise UnsupportedLayer(f"{where}: a subclassed keras.Model ({type(net).__name__}) with its own call(); "
                               "only keras.Sequential and functional models import")  # fmt: skip
    try:
        _ = net.inputs
    except AttributeError:  # a Sequential never built: no input, and no weights yet
        if input_shape is None:
            raise BadInput(f"{where}: the Sequential model {net.name!r} has no input yet; give it a keras.Input or "
                           "pass --input-shape") from None
        net.build((None, *input_shape[1:]))
    return net


def _check_output(out: Any, shape: tuple[int, ...], where: str, label: str) -> None:
    """The description's shape for this layer against Keras' own (where Keras knows each dimension)."""
    keras_shape = tuple(out.shape) if hasattr(out, "shape") else None
    if keras_shape is None or len(keras_shape) != len(shape) or any(
            k is not None and k != s for k, s in zip(keras_shape[1:], shape[1:], strict=True)):  # fmt: skip
        raise ModelError(f"{where}: {label}: Keras gives output shape {keras_shape}, the description {shape}")


def from_model(net: Any, input_shape: tuple[int, ...] | None, where: str) -> Imported:
    """A keras.Model (Sequential or a functional graph) -> Imported. Raises BadInput, UnsupportedLayer, ShapeError
    or ModelError, each naming `where`."""
    net = _built(net, input_shape, where)
    chain, masked = _chain(net, where)
    full = _input_shape(net, input_shape, where)
    graph_input = _graph(net).inputs[0]
    names = {id(graph_input): INPUT}  # tensor -> the description's name for it
    shapes = {INPUT: full}
    layers, notes = [], []
    for position, (klayer, out, ins) in enumerate(chain):
        conv = CONVERTERS.get(type(klayer))
        label = f"layer {position} {klayer.name!r} (keras.layers.{type(klayer).__name__})"
        if conv is None:
            cls = type(klayer)
            raise UnsupportedLayer(f"{where}: {label} (class {cls.__module__}.{cls.__qualname__}) is not supported; "
                                   f"supported: {supported()}")  # fmt: skip
        if klayer.name == INPUT:
            raise UnsupportedLayer(f"{where}: {label}: the name {INPUT!r} is the description's name of the model's "
                                   "input; rename the layer")  # fmt: skip
        srcs = [names[id(t)] for t in ins]
        merge = type(klayer) in MERGES
        if not merge and len(srcs) != 1:
            raise _branches(where, f"{label} takes {len(srcs)} inputs")
        in_shape = tuple(shapes[s] for s in srcs) if merge else shapes[srcs[0]]
        ctx = Context(klayer, position, in_shape, where)
        ctx.input_dtype = str(graph_input.dtype)
        converted = conv(ctx)
        if converted is None:
            names[id(out)] = srcs[0]
            continue
        kind, opts, weights = converted
        previous = layers[-1].name if layers else INPUT
        layer = Layer(kind, klayer.name, opts, weights, () if srcs == [previous] else tuple(srcs))
        try:
            shape = tuple(spec_of(kind).output_shape(spec_of(kind).options(opts), in_shape))
        except (ShapeError, ModelError) as e:
            raise type(e)(f"{where}: {label} does not fit its input {ctx.in_shape}: {e}") from None
        _check_output(out, shape, where, label)
        names[id(out)], shapes[klayer.name] = klayer.name, shape
        layers.append(layer)
        notes += ctx.notes
    model = _unmasked_padding(Model(net.name, full[1:], tuple(layers), input_dtype=str(graph_input.dtype),
                                    source="keras", boundary="channels_last"))  # fmt: skip
    try:
        model.check(full[0])
    except (ShapeError, ModelError) as e:
        raise type(e)(f"{where}: {e}") from None
    _check_masks(model, masked, where)
    return _imported(net, [(la, out) for la, out, _ in chain], model, where, notes)


def _check_masks(model: Model, masked: dict[int, int], where: str) -> None:
    """Every recurrent layer Keras hands a mask is one the description masks from the same source layer, and the
    other way round: a mask of the user's own, or a chain Keras masks otherwise than the description, is refused."""
    sources = model.mask_sources()
    for i, la in enumerate(model.layers):
        if la.kind not in ("gru", "lstm"):
            continue
        keras_src, ours = masked.get(i), sources[i]
        if keras_src != ours:
            raise UnsupportedLayer(f"{where}: {la.label(i)}: Keras masks it from layer {keras_src}, the description "
                                   f"from layer {ours} (Model.mask_sources): only the padding mask Keras carries from "
                                   "an Embedding(mask_zero=True) or a Masking, through Dense, Activation, Dropout and "
                                   "sequence-returning RNNs, imports")  # fmt: skip


def _unmasked_padding(model: Model) -> Model:
    """A recurrent layer no mask reaches has no padded steps: its padded_outputs (Keras' zero_output_for_mask) is
    the default 'zero', so a port whose framework has only one of the two is not refused over an unused option."""
    for i, (la, src) in enumerate(zip(model.layers, model.mask_sources(), strict=True)):
        if la.kind in ("gru", "lstm") and src is None and la.options.get("padded_outputs") == "hold":
            model = model.replace_layer(i, dataclasses.replace(la, options={**la.options, "padded_outputs": "zero"}))
    return model


def _imported(net: Any, chain: list, model: Model, where: str, notes: list[str]) -> Imported:
    inputs = _graph(net).inputs
    dtype = str(inputs[0].dtype)
    to_np = keras.ops.convert_to_numpy
    probe: list = []

    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(to_np(net(np.asarray(x, dtype=dtype), training=False)))

    def layer_outputs(x: np.ndarray) -> list[np.ndarray]:
        if not probe:  # the user's model with every layer's output exposed: its own chain, accumulated
            probe.append(keras.Model(inputs[0], [out for _, out in chain]))
        outs = probe[0](np.asarray(x, dtype=dtype), training=False)
        return [np.asarray(to_np(o)) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]

    def layer_call(i: int, x: np.ndarray) -> np.ndarray:
        layer = chain[i][0]
        x = np.asarray(x) if np.issubdtype(np.asarray(x).dtype, np.integer) else np.asarray(x, dtype=layer.compute_dtype)
        return np.asarray(to_np(layer(x, training=False)))

    return Imported(model, "keras", where, forward, layer_outputs, layer_call, dtype=chain[0][0].compute_dtype, notes=notes)


# --------------------------------------------------------------------------- .keras files


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _config(path: Path) -> dict:
    """config.json of a .keras zip; BadInput where the file is not one (truncated, garbage, no config)."""
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{path}: not a Keras 3 .keras file: not a zip archive (truncated or corrupt?)")
    try:
        with zipfile.ZipFile(path) as z:
            if "config.json" not in z.namelist():
                raise BadInput(f"{path}: not a Keras 3 .keras file: the zip has no config.json (it holds {z.namelist()[:5]})")
            bad = z.testzip()
            if bad is not None:
                raise BadInput(f"{path}: corrupt .keras file: {bad} fails its CRC check")
            config = json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, BadInput):
            raise
        raise BadInput(f"{path}: corrupt .keras file ({_one_line(e)})") from None
    if not isinstance(config, dict):
        raise BadInput(f"{path}: not a Keras 3 .keras file: config.json is not a model config")
    return config


def _unsupported_in_config(config: dict, path: Path) -> UnsupportedLayer | None:
    """The first layer in the file's config whose class nnparity does not import (a custom layer, a Lambda...)."""
    names = {c.__name__ for c in CONVERTERS}
    layers = (config.get("config") or {}).get("layers") or []
    position = 0
    for la in layers:
        cls = la.get("class_name") if isinstance(la, dict) else None
        if cls == "InputLayer":
            continue
        if cls not in names or la.get("module") not in ("keras.layers", "keras"):
            name = ((la.get("config") or {}) if isinstance(la, dict) else {}).get("name")
            registered = la.get("registered_name") if isinstance(la, dict) else None
            return UnsupportedLayer(f"{path}: layer {position} {name!r} (class {cls}, module {la.get('module')}"
                                    f"{', registered as ' + str(registered) if registered else ''}) is not supported; "
                                    f"supported: {supported()}")  # fmt: skip
        position += 1
    return None


def load_file(path: Path, input_shape: tuple[int, ...] | None) -> Imported:
    """A Keras 3 .keras file through keras.saving.load_model(path, compile=False, safe_mode=True)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    config = _config(path)
    try:
        net = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - Keras' own reasons: an unknown class, safe_mode refusing a Lambda, a bad weights file
        unsupported = _unsupported_in_config(config, path)
        if unsupported is not None:
            raise unsupported from None
        raise BadInput(f"{path}: keras.saving.load_model failed ({_one_line(e)})") from None
    return from_model(net, input_shape, str(path))


__all__ = ["CONVERTERS", "converter", "from_model", "load_file", "supported"]
