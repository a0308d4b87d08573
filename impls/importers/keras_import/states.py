"""A Keras GRU, LSTM or Bidirectional of one called with initial_state= (issue 25 item 4): read as initial_state
"weights" where the states are the Keras port's pattern (keras_port/recurrent.py state_layers), built-in layers around
a keras.ops.ones_like of the layer's own input:

    one = Cropping1D((0, T I - 1))(Reshape((T I, 1))(keras.ops.ones_like(x)))          # (B, 1, 1) of ones
    states = [EinsumDense("abc,d->ad", output_shape (H,), no bias, linear)(one) ...]
    y = GRU / LSTM / Bidirectional(...)(x, initial_state=states)

each EinsumDense's (H,) kernel one state: h0 (a GRU), h0 then c0 (an LSTM: Keras' [h, c]), the forward layer's then
the backward's in a Bidirectional (Keras hands it initial_state[:half] and initial_state[half:]), `_rev` for the
backward cell's. A state taken from anything else (a second model Input: the description has one input; a tensor
computed from the input) is not read: a state from a second Input is refused naming the layer (second_input), any
other leaves the layer reading two tensors, refused by the walker."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ... import frameworks
from ...model.layers.rnn import STATE_WEIGHTS
from .tokens import Fold, OnesLike, _kernel, _made

keras = frameworks.load("keras")
L = keras.layers
RNNS = (L.GRU, L.LSTM, L.Bidirectional)


def _states(n: Any) -> tuple[Any, list] | None:
    """(the sequence, the initial_state= tensors) of a recurrent layer's node called with initial_state=; else None."""
    if not isinstance(n.operation, RNNS):
        return None
    args, kwargs = n.arguments.args, n.arguments.kwargs
    states = kwargs.get("initial_state", args[1] if len(args) > 1 else None)
    if states is None or not args:
        return None
    return args[0], list(states) if isinstance(states, (list, tuple)) else [states]


def _kind(layer: Any) -> str:
    inner = layer.forward_layer if isinstance(layer, L.Bidirectional) else layer
    return "lstm" if isinstance(inner, L.LSTM) else "gru"


def _fold(n: Any, producer: dict, readers: Counter) -> Fold | None:
    """The Fold of a recurrent layer's node whose initial_state= is the port's pattern over its own input; else None."""
    got = _states(n)
    if got is None:
        return None
    x, states = got
    layer = n.operation
    kind, bidir = _kind(layer), isinstance(layer, L.Bidirectional)
    sufs = ("", "_rev") if bidir else ("",)
    names = [k + s for s in sufs for k in STATE_WEIGHTS[kind]]
    held = [_made(s, producer, readers, L.EinsumDense) for s in states]
    if len(states) != len(names) or any(e is None for e in held):
        return None
    units = int(layer.forward_layer.units if bidir else layer.units)
    for e in held:
        cfg = e.operation.get_config()
        if (cfg["equation"] != "abc,d->ad" or cfg.get("bias_axes") or cfg.get("activation", "linear") != "linear"
                or tuple(e.operation.kernel.shape) != (units,)):  # fmt: skip
            return None
    one = producer.get(id(held[0].input_tensors[0]))
    if one is None or any(e.input_tensors[0] is not held[0].input_tensors[0] for e in held):
        return None
    if not isinstance(one.operation, L.Cropping1D) or readers[id(one.output_tensors[0])] != len(held):
        return None
    flat = _made(one.input_tensors[0], producer, readers, L.Reshape)
    ones = None if flat is None else _made(flat.input_tensors[0], producer, readers, OnesLike)
    if ones is None or ones.operation.dtype is not None or ones.input_tensors[0] is not x:
        return None
    if tuple(one.output_tensors[0].shape[1:]) != (1, 1):
        return None
    weights = {k: _kernel(e) for k, e in zip(names, held, strict=True)}
    return Fold(None, weights, x, (ones, flat, one, *held, n), {"initial_state": "weights"})


def folds(nodes: list) -> tuple[dict[int, Fold], set[int]]:
    """({id of a recurrent layer's node: the Fold reading its states}, ids of the nodes making those states)."""
    producer = {id(t): n for n in nodes for t in n.output_tensors}
    readers = Counter(id(t) for n in nodes for t in n.input_tensors)
    out = {id(n): f for n in nodes for f in [_fold(n, producer, readers)] if f is not None}
    return out, {id(m) for f in out.values() for m in f.nodes[:-1]}


def second_input(graph: Any) -> str | None:
    """Why a graph whose recurrent layer takes its initial_state= from a model Input other than the first is refused
    (naming the layer); None where none does."""
    extra = {id(t): t for t in graph.inputs[1:]}
    producer = {id(t): n for ns in graph._nodes_by_depth.values() for n in ns for t in n.output_tensors}
    for ns in graph._nodes_by_depth.values():
        for n in ns:
            got = _states(n)
            seen, todo = set(), list(got[1]) if got else []
            while todo:
                t = todo.pop()
                if id(t) in extra:
                    return (f"{n.operation.name!r} ({type(n.operation).__name__}) starts from initial_state= computed "
                            f"from the model's second input {extra[id(t)].name!r}: a description has one input; a state "
                            "imports only where it is held as weights (initial_state 'weights', as the Keras port writes "
                            "it: an EinsumDense without a bias of keras.ops.ones_like of the layer's input)")  # fmt: skip
                if id(t) not in seen and id(t) in producer:
                    seen.add(id(t))
                    todo += list(producer[id(t)].input_tensors)
    return None


__all__ = ["folds", "second_input"]
