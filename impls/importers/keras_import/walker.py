"""The Keras importer's walker: a keras.Model (Sequential or functional) -> Imported.

A model imports when it is a graph of built-in layers with one input and one output: a keras.Sequential, or a
functional model whose layers form a DAG (Add and Concatenate join paths, a tensor may feed several layers); the
description's Layer.inputs record it (empty for a layer fed by the one before). Several inputs or outputs and a layer
called at several places (shared weights) are a later step and refused with that reason. The walker reads the graph's
own nodes in topological order, leaves out Keras' mask computations, hands each layer to its converter (REGISTRY,
keyed by its exact class) and checks each output shape against Keras' own and each recurrent layer's mask against
the description's Model.mask_sources. The Keras port's class token and position embedding (an EinsumDense of a
keras.ops.ones_like, then Concatenate / Add) are read as one layer each (tokens.py's folds), and so are a recurrent
layer's given initial states (EinsumDenses of a ones_like as its initial_state=: states.py).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ... import frameworks
from ...contract.spec import ShapeError
from ...model.description import INPUT, Layer, Model, ModelError
from ...model.layers import spec_of
from .. import BadInput, Imported, UnsupportedLayer
from .context import REGISTRY, Context, class_name, supported
from .padding import check_masks, masked_means
from .states import folds as state_folds
from .states import second_input
from .tokens import folds as token_folds

keras = frameworks.load("keras")
Functional = frameworks.load_attr("keras.src.models.functional", "Functional")
L = keras.layers


def _meta(layer: Any, key: str) -> bool:
    """What the layer's registration tells the walker (mask_maker); False for a class not registered."""
    entry = REGISTRY.get(type(layer))
    return bool(entry is not None and entry.meta.get(key))


# --------------------------------------------------------------------------- the graph


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
    masks |= {id(v) for n in nodes for k, v in n.arguments.kwargs.items() if k in _MASK_ARGS and v is not None}
    out: set[int] = set()
    for node in reversed(nodes):  # outputs first: a mask op's own inputs may be mask ops too
        if isinstance(node.operation, L.Layer) or not all(id(t) in masks for t in node.output_tensors):
            continue
        out.add(id(node))
        masks |= {id(t) for t in node.input_tensors}
    return out


def _label(position: int, op: Any) -> str:
    return f"layer {position} {op.name!r} ({class_name(type(op))})"


def _chain(net: Any, where: str) -> tuple[list[tuple[Any, Any, list, Any]], dict[int, int], dict[int, Any], dict]:
    """([(layer or op, its output tensor, the tensors it reads, its graph node)] in topological order, InputLayer
    left out, {position of a layer given a mask=: position of the layer fed the tensor that mask is computed from}),
    after checking the model's graph is one we import: one input, one output, every layer called once (a DAG of
    layers: Add, Multiply and Concatenate read several, a tensor may be read by several layers). The graph's own
    nodes are read (Keras' _nodes_by_depth), not layer.input: a layer keeps the nodes of every call it ever had (a
    loaded Sequential's first layer has two), and layer.input is the first. Keras' own mask computations are left
    out (_mask_ops); from_model checks each mask= against the description's Model.mask_sources (an explicit mask of
    the user's own is refused). A raw operation of the functional graph (x + 3, x * y: keras.src.ops) is read by
    its converter where REGISTRY has its class; a Sequential or functional model used as a layer is flattened into
    the graph (its input is the tensor it is called on, its output's readers read its last layer's): the third
    answer, {id of a nested model's input or output tensor: the tensor it stands for}, says so. The fourth, {id of a
    merge node: tokens.Fold}: the Keras port's class token or position embedding, several nodes read as one layer
    (the merge's entry, reading the pattern's input; its inner nodes are no entries), and a recurrent layer's node
    whose initial_state= is the port's states (states.py). A state from a second model Input is refused naming it."""
    graph = _graph(net)
    why = second_input(graph) if len(graph.inputs) > 1 else None
    if why is not None:
        raise UnsupportedLayer(f"{where}: {why}")
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise _branches(where, f"the model has {len(graph.inputs)} inputs and {len(graph.outputs)} outputs")
    chain: list = []
    masked: dict[int, int] = {}  # chain position of a layer given a mask= -> position of the layer fed the mask's root
    alias: dict[int, Any] = {}  # id of a nested model's input or output tensor -> the tensor it stands for
    folded: dict = {}  # id of a merge node -> the tokens.Fold it ends
    _walk_graph(graph, where, chain, masked, alias, {id(graph.inputs[0])}, folded)
    if not chain or _resolved(alias, graph.outputs[0]) is not chain[-1][1]:
        raise _branches(where, "the model's output is not its last layer's")
    return chain, masked, alias, folded


def _resolved(alias: dict[int, Any], t: Any) -> Any:
    while id(t) in alias:
        t = alias[id(t)]
    return t


_AUTO_MASKS = ("value_mask", "query_mask", "key_mask")
"""The masks Keras hands a layer with several tensor arguments (MultiHeadAttention) from each one's own mask."""
_MASK_ARGS = ("mask", *_AUTO_MASKS, "attention_mask")


def _walk_graph(graph: Any, where: str, chain: list, masked: dict, alias: dict, made: set, folded: dict) -> None:
    """_chain's walk of one graph's nodes (the model's, or a nested model's, recursively)."""
    nodes = [n for depth in sorted(graph._nodes_by_depth, reverse=True) for n in graph._nodes_by_depth[depth]]
    mask_ops = _mask_ops(nodes)
    producer = {id(t): n for n in nodes for t in n.output_tensors}
    nodes = [n for n in nodes if id(n) not in mask_ops]
    calls = [n.operation for n in nodes]
    (found, inner), (states, starts) = token_folds(nodes), state_folds(nodes)
    found, inner = found | states, inner | starts
    folded.update(found)
    for node in nodes:
        layer = node.operation
        if isinstance(layer, L.InputLayer):
            continue
        label = _label(len(chain), layer)
        if sum(c is layer for c in calls) != 1:
            raise _branches(where, f"{label} is called at {sum(c is layer for c in calls)} places (a shared layer)",
                            shared=True)  # fmt: skip
        if id(node) in inner:  # part of a token's pattern: its merge's entry reads the pattern's input
            continue
        ins = [_resolved(alias, t) for t in ([found[id(node)].x] if id(node) in found else node.input_tensors)]
        if isinstance(layer, keras.Model):  # a mask= it is given is no input (a nested Sequential drops it)
            mask = node.arguments.kwargs.get("mask")
            _nested(layer, node, [t for t, raw in zip(ins, node.input_tensors, strict=True) if raw is not mask], where,
                    label, chain, masked, alias, made, folded)  # fmt: skip
            continue
        if not isinstance(layer, L.Layer) and REGISTRY.get(type(layer)) is None:
            raise UnsupportedLayer(f"{where}: {label}: the operation {type(layer).__module__}.{type(layer).__name__} (a "
                                   f"raw keras.ops call in the graph) is not supported; supported: {supported()}")  # fmt: skip
        kw = node.arguments.kwargs
        given = [v for k, v in kw.items() if k in _MASK_ARGS and v is not None]  # masks: no inputs (converters decide)
        mask = kw.get("mask") if kw.get("mask") is not None else next((kw[k] for k in _AUTO_MASKS if kw.get(k) is not None), None)
        if mask is None and isinstance(layer, L.MultiHeadAttention):  # it reads its value's (keys') mask itself
            mask = getattr(node.input_tensors[min(1, len(node.input_tensors) - 1)], "_keras_mask", None)
        raws = [found[id(node)].x] if id(node) in found else node.input_tensors
        inputs = [t for t, raw in zip(ins, raws, strict=True) if not any(raw is g for g in given)]
        if mask is not None:
            roots = _mask_roots(mask, producer, mask_ops)
            src = [i for i, (_, _, reads, _) in enumerate(chain) if any(t is r for t in reads for r in roots)]
            if len(roots) != 1 or not src:
                raise UnsupportedLayer(f"{where}: {label} is given a mask= that is not computed from one of the "
                                       "chain's (the graph's) own tensors: only the padding mask Keras carries from an "
                                       "Embedding(mask_zero=True) or a Masking imports")  # fmt: skip
            makers = [i for i in src if _meta(chain[i][0], "mask_maker")]
            masked[len(chain)] = (makers or src)[0]
        if not inputs or any(id(t) not in made for t in inputs):
            raise _branches(where, f"{label} reads a tensor that is not the model's input nor a layer's output")
        made.add(id(node.output_tensors[0]))  # a layer with several outputs (return_state) is refused by its converter
        chain.append((layer, node.output_tensors[0], inputs, node))


def _nested(inner: Any, node: Any, ins: list, where: str, label: str, chain: list, masked: dict, alias: dict,
            made: set, folded: dict) -> None:  # fmt: skip
    """A Sequential or functional model used as a layer: its own graph walked in place, fed the tensor it is called
    on; whatever reads its output reads its last layer's."""
    if not isinstance(inner, (keras.Sequential, Functional)):
        raise UnsupportedLayer(f"{where}: {label} is a subclassed keras.Model with its own call(); only Sequential and "
                               f"functional models nested as layers import; supported: {supported()}")  # fmt: skip
    g = _graph(inner)
    if len(g.inputs) != 1 or len(g.outputs) != 1 or len(ins) != 1 or len(node.output_tensors) != 1:
        raise _branches(where, f"{label} is a nested model with {len(g.inputs)} inputs and {len(g.outputs)} outputs")
    alias[id(g.inputs[0])] = ins[0]
    made.add(id(g.inputs[0]))
    _walk_graph(g, where, chain, masked, alias, made, folded)
    alias[id(node.output_tensors[0])] = _resolved(alias, g.outputs[0])
    made.add(id(node.output_tensors[0]))


def _mask_roots(t: Any, producer: dict, mask_ops: set[int]) -> list:
    """The chain tensors a mask is computed from, through Keras' mask operations."""
    node = producer.get(id(t))
    if node is None and not isinstance(getattr(t, "_keras_history", (None,))[0], (L.Layer, type(None))):
        op, index, _ = t._keras_history  # a mask no layer of this graph is given (MultiHeadAttention reads its
        node = op._inbound_nodes[index]  # inputs' own): its raw mask op, outside the graph's nodes
        mask_ops = mask_ops | {id(node)}
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
    chain, masked, alias, folded = _chain(net, where)
    full = _input_shape(net, input_shape, where)
    graph_input = _graph(net).inputs[0]
    names = {id(graph_input): INPUT}  # tensor -> the description's name for it
    shapes = {INPUT: full}
    layers, notes = [], []
    layer_of: dict[int, int] = {}  # chain position -> the description layer it became
    for position, (klayer, out, ins, node) in enumerate(chain):
        entry = REGISTRY.get(type(klayer))
        label = _label(position, klayer)
        if entry is None:
            cls = type(klayer)
            raise UnsupportedLayer(f"{where}: {label} (class {cls.__module__}.{cls.__qualname__}) is not supported; "
                                   f"supported: {supported()}")  # fmt: skip
        if klayer.name == INPUT:
            raise UnsupportedLayer(f"{where}: {label}: the name {INPUT!r} is the description's name of the model's "
                                   "input; rename the layer")  # fmt: skip
        srcs = [names[id(t)] for t in ins]
        fold = folded.get(id(node))  # several nodes read as one token layer (tokens.py): it reads one tensor
        merge = entry.meta.get("merge", False) if fold is None else False  # not `and`: it would turn "auto" into True
        merge = len(srcs) > 1 if merge == "auto" else merge  # an op: x * y merges, x * 3 reads one tensor
        if not merge and len(srcs) != 1:
            raise _branches(where, f"{label} takes {len(srcs)} inputs")
        in_shape = tuple(shapes[s] for s in srcs) if merge else shapes[srcs[0]]
        ctx = Context(klayer, position, in_shape, where, node)
        ctx.input_dtype = str(graph_input.dtype)
        converted = entry.fn(ctx) if fold is None or fold.kind is None else (fold.kind, {}, fold.weights)
        if fold is not None and fold.kind is None:  # a recurrent layer from given states: its converter, and them
            converted = (converted[0], {**converted[1], **fold.options}, {**converted[2], **fold.weights})
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
        layer_of[position] = len(layers)
        layers.append(layer)
        notes += ctx.notes
    masked = {layer_of[p]: layer_of.get(s, s) for p, s in masked.items() if p in layer_of}
    model = masked_means(_unmasked_padding(Model(net.name, full[1:], tuple(layers), input_dtype=str(graph_input.dtype),
                                                  source="keras", boundary="channels_last")), masked)  # fmt: skip
    try:
        model.check(full[0])
    except (ShapeError, ModelError) as e:
        raise type(e)(f"{where}: {e}") from None
    explicit = {layer_of[p] for p, (*_, node) in enumerate(chain) if p in layer_of and node is not None
                and node.arguments.kwargs.get("value_mask") is not None}  # fmt: skip
    check_masks(model, masked, where, explicit)
    return _imported(net, chain, alias, model, where, notes, folded)


def _unmasked_padding(model: Model) -> Model:
    """A recurrent layer no mask reaches has no padded steps: its padded_outputs (Keras' zero_output_for_mask) is
    the default 'zero', so a port whose framework has only one of the two is not refused over an unused option."""
    for i, (la, src) in enumerate(zip(model.layers, model.mask_sources(), strict=True)):
        if la.kind in ("gru", "lstm") and src is None and la.options.get("padded_outputs") == "hold":
            model = model.replace_layer(i, dataclasses.replace(la, options={**la.options, "padded_outputs": "zero"}))
    return model


def _call(op: Any, node: Any, tensors: dict[int, Any]) -> Any:
    """A layer or raw op of the chain called as its graph node calls it, `tensors` ({id of a KerasTensor the node
    reads: what to read instead}) in place of its tensors and a raw op's constants kept (x + 3 fed x); a layer's
    mask= is left to Keras' own mask propagation."""
    args, kwargs = node.arguments.fill_in(tensors)
    kwargs = {k: v for k, v in kwargs.items() if k not in ("mask", "training")}  # training: False, below
    return op(*args, **kwargs, **({"training": False} if isinstance(op, L.Layer) else {}))


def _replayed(net: Any, chain: list, alias: dict[int, Any], folded: dict) -> Any:
    """The chain as one functional model exposing every layer's output, each layer and op called again on new
    symbolic tensors: what layer_outputs runs where a nested model's layers live in a graph of their own."""
    graph = _graph(net)
    x = keras.Input(batch_shape=graph.inputs[0].shape, dtype=graph.inputs[0].dtype)
    env = {id(graph.inputs[0]): x}
    outs = []
    for _, out, _, node in chain:
        for n in folded[id(node)].nodes if id(node) in folded else (node,):  # a token's pattern: each of its nodes
            made = _call(n.operation, n, {id(t): env.get(id(_resolved(alias, t))) for t in n.input_tensors})
            env[id(n.output_tensors[0])] = made
        outs.append(env[id(out)])
    return keras.Model(x, outs)


def _imported(net: Any, chain: list, alias: dict[int, Any], model: Model, where: str, notes: list[str],
              folded: dict) -> Imported:  # fmt: skip
    inputs = _graph(net).inputs
    dtype = str(inputs[0].dtype)
    to_np = keras.ops.convert_to_numpy
    probe: list = []
    nested = any(not _in_graph(_graph(net), out) for _, out, _, _ in chain)

    def forward(x: np.ndarray) -> np.ndarray:
        return np.asarray(to_np(net(np.asarray(x, dtype=dtype), training=False)))

    def layer_outputs(x: np.ndarray) -> list[np.ndarray]:
        if not probe:  # the user's model with every layer's output exposed: its own chain, accumulated
            probe.append(_replayed(net, chain, alias, folded) if nested else keras.Model(inputs[0], [out for _, out, _, _ in chain]))
        outs = probe[0](np.asarray(x, dtype=dtype), training=False)
        return [np.asarray(to_np(o)) for o in (outs if isinstance(outs, (list, tuple)) else [outs])]

    def layer_call(i: int, x: np.ndarray) -> np.ndarray:
        op, _, _, node = chain[i]
        x = np.asarray(x) if np.issubdtype(np.asarray(x).dtype, np.integer) else np.asarray(x, dtype=_dtype(op, dtype))
        if id(node) in folded:  # a token's pattern: its nodes in turn, from the tensor it reads
            env = {id(folded[id(node)].x): x}
            for n in folded[id(node)].nodes:
                env[id(n.output_tensors[0])] = _call(n.operation, n, {id(t): env[id(t)] for t in n.input_tensors if id(t) in env})
            return np.asarray(to_np(env[id(node.output_tensors[0])]))
        if not isinstance(op, L.Layer):  # a raw op (x * 3): fed x where it reads its one tensor, its constants kept
            return np.asarray(to_np(_call(op, node, {id(node.input_tensors[0]): x})))
        return np.asarray(to_np(op(x, training=False)))

    return Imported(model, "keras", where, forward, layer_outputs, layer_call, dtype=_dtype(chain[0][0], dtype),
                    notes=notes)  # fmt: skip


def _dtype(op: Any, default: str) -> str:
    """A layer's compute dtype; a raw op's is the model input's (it computes in its operands')."""
    return getattr(op, "compute_dtype", None) or default


def _in_graph(graph: Any, t: Any) -> bool:
    """Whether tensor `t` is made by a node of `graph` itself (not inside a nested model's graph)."""
    return any(t is o for nodes in graph._nodes_by_depth.values() for n in nodes for o in n.output_tensors)


__all__ = ["from_model"]
