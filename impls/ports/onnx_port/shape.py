"""The ONNX port's shape kinds: zero_pad2d, flatten, reshape, permute and the merges add and concatenate.

reshape and permute work on the canonical (channels-last) value. add and concatenate bring every input to the first
one's layout and Concat's canonical axis is translated to it (the channels are axis 1 of an NCHW / NCW value). A
Flatten of an NCHW image flattens (c, h, w) where a Dense follows (that Dense's rows are permuted:
impls/ports/onnx_port/dense.py), and the zero padding's Pad takes the form ONNX Runtime 1.31 computes correctly
beside a pool or a Transpose.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...contract import limits
from ...model.description import Model
from .builder import CANON, ELEMENTWISE, EMITTERS, NCHW, TBF, VOICE, _Graph, _perm


@EMITTERS.register("zero_pad2d")
def zero_pad2d(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """Zeros around H and W, in the value's own layout (no Transpose is added for it). Two ONNX Runtime 1.31 graph
    optimisations decide the form (each measured in tests/test_port_onnx.py):
    - PadFusion folds a plain Pad into a following MaxPool's or AveragePool's pads, where a padded cell never wins a
      max (zeros that should win are lost: -1 where 0 is right) and where the count differs; a Pad that names its
      `axes` is left alone, so before a pool the Pad gives axes (H and W);
    - the transpose optimizer pushes a Transpose through a Pad with `axes` and rebuilds its pads with an 8-element
      gather of a 4-element list (it fails: 'idx=4 must be within [-4,3]'), so everywhere else the Pad lists all
      four axes and no `axes` input; a following Conv may fold it in, correctly (a Conv pads with zeros)."""
    (t, b), (l, r) = opts["padding"]
    nchw = g.layout == NCHW
    zero = g.weight("value", np.zeros((), g.dtype))
    readers = [g.model.layers[j].kind for j in g.model.consumers(layer.name)]
    if any(k in ("max_pool2d", "avg_pool2d") for k in readers):
        axes = [2, 3] if nchw else [1, 2]
        g.apply("Pad", g.const("pads", [t, l, b, r]), zero, g.const("axes", axes), mode="constant")  # begins, ends
        return
    pads = [0, 0, t, l, 0, 0, b, r] if nchw else [0, t, l, 0, 0, b, r, 0]
    g.apply("Pad", g.const("pads", pads), zero, mode="constant")


def _dense_follows(model: Model, i: int) -> bool:
    """Layer i is a Flatten whose output reaches one Dense through element-wise layers only (each read once)."""
    while True:
        readers = model.consumers(model.layers[i].name)
        if len(readers) != 1:
            return False
        i = readers[0]
        if model.layers[i].kind == "dense":
            return True
        if model.layers[i].kind not in ELEMENTWISE:
            return False


@EMITTERS.register("flatten")
def flatten(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    # An NCHW image flattens (c, h, w): where a Dense follows (through element-wise layers only) the graph flattens
    # NCHW as torch does and that Dense's rows are permuted (convert.flatten_rows_nhwc_to_nchw); anywhere else it
    # transposes back to NHWC first, so the flattened vector is the description's (h, w, c) one; except where the
    # model returns it to a channels_first source, whose order is (c, h, w) (model.flattened_output; g.chw says so
    # for the taps).
    if len(shape) == 4 and g.layout == NCHW and _dense_follows(g.model, i):
        g.rows_nchw = tuple(shape[1:])
    elif len(shape) == 4 and not g.native and g.model.flattened_output() is not None:
        g.to(NCHW)
        g.chw[layer.name] = tuple(shape[1:])
    else:
        g.to(CANON, len(shape))
    g.apply("Flatten", axis=1)
    g.layout = CANON  # (B, n): the element order is rows_nchw's business


@EMITTERS.register("reshape")
def reshape(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """The canonical row-major reshape: a channels-first value goes channels last first; the batch is kept (0)."""
    g.to(CANON, len(shape))
    g.apply("Reshape", g.const("shape", [0, *opts["target_shape"]]))
    g.layout = CANON


@EMITTERS.register("permute")
def permute(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.to(CANON, len(shape))
    g.apply("Transpose", perm=[0, *opts["dims"]])
    g.layout = CANON


def _physical_axis(layout: str, rank: int, axis: int) -> int:
    """The physical axis holding canonical `axis` (a Concat's axis in the value's layout)."""
    return _perm(layout, rank).index(axis % rank)


@EMITTERS.register("concatenate")
@EMITTERS.register("add")
def merge(g: _Graph, i: int, layer: Any, opts: dict, shapes: tuple) -> None:
    """Add / Concat of the inputs, each brought to the first input's layout (a Transpose where one differs); Concat's
    canonical axis translated to that layout (_physical_axis: channels are axis 1 of an NCHW / NCW value)."""
    names = g.model.sources(i)
    tensors, layout = [], None
    rank = len(shapes[0])
    for n in names:
        g.read(n)
        if g.rows_nchw is not None:  # never: a flatten awaiting its Dense's permuted rows has that Dense as sole reader
            raise limits.Refused(f"{VOICE}: {layer.label(i)} reads an NCHW flatten awaiting a Dense")
        if layout is None:
            layout = g.layout if not (g.layout == TBF and layer.kind == "concatenate") else CANON
        g.to(layout, rank)
        tensors.append(g.value)
    g.layout = layout
    if layer.kind == "add":
        y = tensors[0]
        for t in tensors[1:]:
            y = g.node("Add", [y, t])[0]
    else:
        y = g.node("Concat", tensors, axis=_physical_axis(layout, rank, opts["axis"]))[0]
    g.value = y


__all__ = ["flatten", "merge", "permute", "reshape", "zero_pad2d"]
