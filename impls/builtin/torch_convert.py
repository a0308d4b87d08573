"""impls/convert.py applied to tensors: the converters run once per shape on index arrays, then as gathers.

convert.py's functions are NumPy and pure layout (transposes, gate reorders, flatten-row permutations).
Fed arrays of element indices instead of values, each returns where every output element comes from; that
map is cached per (converter, shapes) and applied to the tensors with one gather. So the facts stay in
convert.py, and the conversion runs on any device, in any dtype, with autograd flowing through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import convert, frameworks
from ..primitives.torch_impl import asarray, torch_dtype

torch = frameworks.load("torch")
nn = torch.nn

__all__ = ["NCHW_TO_NHWC", "NHWC_TO_NCHW", "as_tensors", "convert_tensors", "load_layer"]


def _tree_leaves(tree: Any) -> list:
    if dataclasses.is_dataclass(tree):
        return [x for f in dataclasses.fields(tree) for x in _tree_leaves(getattr(tree, f.name))]
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _tree_leaves(v)]
    if isinstance(tree, (list, tuple)):
        return [x for v in tree for x in _tree_leaves(v)]
    return [tree]


def _tree_rebuild(tree: Any, leaves) -> Any:
    if dataclasses.is_dataclass(tree):
        return type(tree)(**{f.name: _tree_rebuild(getattr(tree, f.name), leaves) for f in dataclasses.fields(tree)})
    if isinstance(tree, dict):
        return {k: _tree_rebuild(v, leaves) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_tree_rebuild(v, leaves) for v in tree)
    return next(leaves)


_MAPS: dict[tuple, tuple[Any, list[tuple[int, np.ndarray]]]] = {}  # (converter, shapes, kw) -> (output tree, sources)
_ON_DEVICE: dict[tuple, list[tuple[int, Any]]] = {}  # (id of a _MAPS source list, device) -> those indices as tensors


def _index_map(fn: Callable, tree: Any, kw: dict[str, Any]) -> tuple[Any, list[tuple[int, np.ndarray]]]:
    """For each output leaf: (input leaf it comes from, or -1 for several; flat indices into that leaf or all)."""
    shapes = [tuple(int(d) for d in a.shape) for a in _tree_leaves(tree)]
    key = (fn, repr(_tree_rebuild(tree, iter(shapes))), repr(sorted(kw.items())))
    if key not in _MAPS:
        sizes = [int(np.prod(s)) for s in shapes]
        starts, n = np.cumsum([0, *sizes]), int(np.sum(sizes))

        def indices(offset: int) -> Any:  # the tree with each element replaced by its flat index + offset
            return _tree_rebuild(tree, iter(np.arange(a + offset, a + offset + k).reshape(s) for a, k, s in zip(starts, sizes, shapes)))

        out = fn(indices(0), **kw)
        out_idx = [np.asarray(i) for i in _tree_leaves(out)]
        shifted = [np.asarray(i) for i in _tree_leaves(fn(indices(n), **kw))]
        # a pure layout change moves elements: shifting every input index by n shifts every output by n
        if not all(i.dtype.kind == "i" and np.array_equal(j, i + n) for i, j in zip(out_idx, shifted)):
            raise ValueError(f"{fn.__name__} is not a pure layout change; it cannot be applied as a gather")
        sources = []
        for i in out_idx:
            leaf = np.unique(np.searchsorted(starts, i, side="right") - 1)
            sources.append((int(leaf[0]), i - starts[leaf[0]]) if leaf.size == 1 else (-1, i))
        _MAPS[key] = (out, sources)
    return _MAPS[key]


def convert_tensors(fn: Callable, tree: Any, **kw: Any) -> Any:
    """convert.<fn>(tree, **kw) applied to a tree of tensors (same dtype and device): one gather per output."""
    leaves = [a.reshape(-1) for a in _tree_leaves(tree)]
    out, sources = _index_map(fn, tree, kw)
    device = leaves[0].device
    key = (id(sources), device)
    if key not in _ON_DEVICE:  # index tensors stay on the device: no host-to-device copy per call
        _ON_DEVICE[key] = [(leaf, torch.as_tensor(i.reshape(-1), device=device), i.shape) for leaf, i in sources]
    flat = torch.cat(leaves) if any(leaf < 0 for leaf, _, _ in _ON_DEVICE[key]) else None
    # index_select, not advanced indexing: the same gather, several times faster on the CPU
    gathered = ((flat if leaf < 0 else leaves[leaf]).index_select(0, i).reshape(shape) for leaf, i, shape in _ON_DEVICE[key])
    return _tree_rebuild(out, gathered)


def _axes(fn: Callable, ndim: int) -> tuple[int, ...]:
    """The axis permutation a convert.py layout function performs, read off a probe of distinct sizes."""
    probe = np.zeros((2, 3, 5, 7)[:ndim])
    return tuple(probe.shape.index(d) for d in fn(probe).shape)


NHWC_TO_NCHW = _axes(convert.nhwc_to_nchw, 4)  # (0, 3, 1, 2)
NCHW_TO_NHWC = _axes(convert.nchw_to_nhwc, 4)  # (0, 2, 3, 1)


def as_tensors(tree: Any, dtype: Any, device: Any) -> Any:
    """Every leaf as a tensor of `dtype` on `device`; None takes them from the first leaf."""
    first = _tree_leaves(tree)[0]
    if dtype is None:
        dtype = first.dtype if isinstance(first, torch.Tensor) else np.asarray(first).dtype
    if device is None:
        device = first.device if isinstance(first, torch.Tensor) else "cpu"
    dtype, device = torch_dtype(dtype), torch.device(device)

    def move(a):
        if isinstance(a, torch.Tensor) and a.dtype == dtype and a.device == device:
            return a
        return asarray(a, dtype, device)

    return _tree_rebuild(tree, iter(move(a) for a in _tree_leaves(tree)))


def load_layer(module: Any, state: dict[str, Any], trainable: bool = False) -> Any:
    """Put converted tensors into a layer built on the meta device (no wasted initialisation)."""
    module.requires_grad_(trainable)
    module.load_state_dict({k: v.detach() for k, v in state.items()}, strict=True, assign=True)
    for m in module.modules():
        if isinstance(m, nn.RNNBase):
            m.flatten_parameters()  # one weight buffer for cuDNN; a no-op on the CPU
    return module
