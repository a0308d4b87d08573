"""class_token and position_embedding (issue 25) from Keras. Keras 3 has no built-in layer for either (keras_hub's
PositionEmbedding and the keras.io ViT example's layers are custom classes, not keras.layers); what the Keras port
writes for them (keras_port/tokens.py), built-in layers around a keras.ops.ones_like, is read back as the one layer
it is, named after its merge:

- position_embedding: Add([x, EinsumDense("abc,bc->abc", no bias, linear)(ones_like(x))]) (either order), the (T, D)
  kernel the embedding (1, T, D);
- class_token: Concatenate(axis=1)([EinsumDense("abc,c->abc", no bias, linear)(ones_like(Cropping1D(x) to one
  step)), x]), the (D,) kernel the token (1, 1, D), put before the sequence.

Each inner tensor must be read by the pattern alone (the walker then skips the inner nodes, `folds`); a ones_like
anywhere else is refused, naming it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import frameworks
from .context import REGISTRY, Context, Converted

keras = frameworks.load("keras")
L = keras.layers
OnesLike = frameworks.load_attr("keras.src.ops.numpy", "OnesLike")


@dataclass(frozen=True)
class Fold:
    """A pattern read as one layer: its kind and canonical weights, the tensor it reads, its nodes (the merge last).
    kind None: the last node's own converter reads the layer, `weights` and `options` added to what it gives (a
    recurrent layer's given initial states, states.py)."""

    kind: str | None
    weights: dict
    x: Any
    nodes: tuple
    options: dict = field(default_factory=dict)


def _made(t: Any, producer: dict, readers: Counter, cls: type) -> Any:
    """The node making `t` where it is a `cls` of one input and one output and `t` is read once; else None."""
    n = producer.get(id(t))
    ok = n is not None and isinstance(n.operation, cls) and len(n.input_tensors) == 1 and len(n.output_tensors) == 1
    return n if ok and readers[id(t)] == 1 else None


def _held(t: Any, producer: dict, readers: Counter, equation: str) -> tuple[Any, Any] | None:
    """(the ones_like node, the EinsumDense node) where t = EinsumDense(equation, no bias, linear)(ones_like(s))."""
    e = _made(t, producer, readers, L.EinsumDense)
    if e is None:
        return None
    cfg = e.operation.get_config()
    if cfg["equation"] != equation or cfg.get("bias_axes") or cfg.get("activation", "linear") != "linear":
        return None
    o = _made(e.input_tensors[0], producer, readers, OnesLike)
    return None if o is None or o.operation.dtype is not None else (o, e)


def _kernel(e: Any) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(e.operation.kernel))


def _embedding(n: Any, producer: dict, readers: Counter) -> Fold | None:
    ins = n.input_tensors
    if not isinstance(n.operation, L.Add) or len(ins) != 2:
        return None
    for x, other in (ins, ins[::-1]):
        held = _held(other, producer, readers, "abc,bc->abc")
        if held is not None and held[0].input_tensors[0] is x and len(x.shape) == 3:
            return Fold("position_embedding", {"embedding": _kernel(held[1])[None]}, x, (*held, n))
    return None


def _token(n: Any, producer: dict, readers: Counter) -> Fold | None:
    ins = n.input_tensors
    if not isinstance(n.operation, L.Concatenate) or len(ins) != 2 or len(ins[1].shape) != 3:
        return None
    if n.operation.axis % 3 != 1:
        return None
    held = _held(ins[0], producer, readers, "abc,c->abc")
    crop = None if held is None else _made(held[0].input_tensors[0], producer, readers, L.Cropping1D)
    if crop is None or crop.input_tensors[0] is not ins[1] or crop.output_tensors[0].shape[1] != 1:
        return None
    return Fold("class_token", {"token": _kernel(held[1])[None, None]}, ins[1], (crop, *held, n))


def folds(nodes: list) -> tuple[dict[int, Fold], set[int]]:
    """({id of a merge node: the Fold it ends}, ids of the nodes folded into one before their merge) of a graph's
    nodes (in topological order)."""
    producer = {id(t): n for n in nodes for t in n.output_tensors}
    readers = Counter(id(t) for n in nodes for t in n.input_tensors)
    out: dict[int, Fold] = {}
    for n in nodes:
        f = _embedding(n, producer, readers) or _token(n, producer, readers)
        if f is not None:
            out[id(n)] = f
    return out, {id(m) for f in out.values() for m in f.nodes[:-1]}


@REGISTRY.register(OnesLike, kinds=("class_token", "position_embedding"))
def _ones_like(c: Context) -> Converted:
    raise c.refuse("a keras.ops.ones_like is read only as the Keras port writes a class token or a position "
                   "embedding (an EinsumDense without a bias of it, then Concatenate(axis=1) before the sequence or "
                   "Add to it) or a recurrent layer's initial states (EinsumDense('abc,d->ad') of it as the layer's "
                   "initial_state=); this one is not part of any")  # fmt: skip


__all__ = ["Fold", "folds"]
