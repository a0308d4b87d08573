"""The model description: a framework-neutral model as data, a graph of layers with options and canonical weights.

    Model(name, input_shape=(28, 28, 1), layers=(Layer("conv2d", "conv_1", {...}, {"kernel": ..., "bias": ...}), ...))

Canonical means the contract's layouts (impls/contract/spec.py): inputs batch first, images NHWC, conv kernels HWIO,
dense kernels (in, out), GRU weights (W, U, b_x, b_h) in gate order (z, r, h). `input_shape` leaves the batch out.
What each kind of layer holds, computes and counts lives in one small module per kind (impls/model/layers/); this
module only knows the graph. Layers are in topological order and each reads the tensors its `inputs` name (earlier
layers' names, or INPUT, the model's input); empty `inputs` means the previous layer's output (the input, for the
first), so a chain needs none. Merge kinds (add, concatenate) read several. The last layer is the model's output;
every other layer's output must be read by some later layer.

Nothing here imports a framework: importers (impls/importers/) make a Model, voices and ports build one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ModelError, ShapeError

INPUT = "input"
"""The name by which a layer's `inputs` reads the model's input (no layer may be called so)."""


MAP_READERS = ("conv1d", "batch_norm", "global_avg_pool", "global_max_pool")
"""Kinds that read a rank-3 input as a 1-D feature map (channels on the last axis, the time axis spatial)."""
MAP_KEEPERS = ("activation", "dropout", "batch_norm", "add", "concatenate")
"""Kinds whose output is a map where what they read is one."""
MAP_KEEPERS += ("multiply", "rescale", "layer_scale", "stochastic_depth")  # issue 24's element-wise kinds
MAP_KEEPERS += ("slice", "channel_shuffle")  # issue 24's shape kinds that keep a map
MAP_READERS += ("lrn",)  # issue 24's normalization family
MAP_KEEPERS += ("lrn",)  # issue 24's normalization family


@dataclass(frozen=True)
class Layer:
    kind: str  # a key of impls.model.layers.KINDS
    name: str  # the source's own layer name: what a certificate calls it
    options: Mapping[str, Any] = field(default_factory=dict)  # JSON-able values only
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)  # canonical layout, names as the kind states
    inputs: tuple[str, ...] = ()  # the tensors it reads (earlier layers' names or INPUT); () = the previous layer

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(str(n) for n in self.inputs))

    def map(self, fn: Callable[[np.ndarray], Any]) -> Layer:
        return dataclasses.replace(self, weights={k: fn(v) for k, v in self.weights.items()})

    def label(self, position: int) -> str:
        return f"layer {position} {self.name!r} ({self.kind})"


BOUNDARIES = ("channels_last", "channels_first")
"""How the source takes and returns images: NHWC (Keras, Flax) or NCHW (torch, ONNX). The description itself is
always canonical (NHWC); a port that keeps the source's boundary transposes there, `--native-layout` drops them."""


@dataclass(frozen=True)
class Model:
    name: str
    input_shape: tuple[int, ...]  # one sample, canonical layout, batch left out
    layers: tuple[Layer, ...]
    input_dtype: str = "float32"  # the source's input dtype; integer inputs (token ids) keep theirs
    source: str = "nnparity"  # where it came from: keras, torch, onnx, nnparity
    boundary: str = "channels_last"  # the source's layout of 4-D inputs and outputs: a drop-in port keeps it
    _memo: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)
    """What the graph's queries computed once (the layers never change: the model is frozen); a derived model
    (dataclasses.replace, sub, map) starts with its own empty memo. Read by _memoized only."""

    def __post_init__(self):
        if self.boundary not in BOUNDARIES:
            raise ModelError(f"model {self.name!r}: boundary {self.boundary!r} is not one of {BOUNDARIES}")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))

    def _memoized(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """compute(), once per key for this model: the graph's queries (shapes, the index, masks, maps) are asked once
        per layer by every voice and port, which made them quadratic in the layers (resnet50: seconds per build)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    # ------------------------------------------------------------------ shapes and checks

    def shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        """[input shape, output shape of layer 0, ..., of the last layer], batch first. Raises ShapeError or
        ModelError naming the first layer that does not fit."""
        return list(self._memoized(("shapes", int(batch)), lambda: self._shapes(batch)))

    def _shapes(self, batch: int) -> list[tuple[int, ...]]:
        from .layers import spec_of

        out = [(int(batch), *self.input_shape)]
        index = self._index()
        for i, layer in enumerate(self.layers):
            kind = spec_of(layer.kind, layer.label(i))
            ins = [out[index[s] + 1] for s in self.sources(i)]
            shape = ins[0] if kind.ARITY == 1 else tuple(ins)
            try:
                opts = kind.options(layer.options)
                if kind.ARITY == 1 and len(ins) != 1:
                    raise ModelError(f"it reads one tensor, not {len(ins)} ({list(self.sources(i))})")
                if kind.ARITY != 1 and len(ins) < 2:
                    raise ModelError(f"a merge reads at least two tensors, got {list(self.sources(i))}")
                out.append(tuple(int(d) for d in kind.output_shape(opts, shape)))
            except (ShapeError, ModelError, ValueError, TypeError) as e:
                raise type(e)(f"{layer.label(i)} does not fit its input {shape}: {e}") from None
        return out

    # ------------------------------------------------------------------ the graph

    def _index(self) -> dict[str, int]:
        """Tensor name -> the position of the layer making it (INPUT -> -1). Checks names and order."""
        return self._memoized(("index",), self._make_index)

    def _make_index(self) -> dict[str, int]:
        index = {INPUT: -1}
        for i, la in enumerate(self.layers):
            if la.name == INPUT:
                raise ModelError(f"{la.label(i)}: {INPUT!r} names the model's input, not a layer")
            for s in la.inputs:
                if s not in index:
                    later = s in {x.name for x in self.layers}
                    raise ModelError(f"{la.label(i)} reads {s!r}, which is " + (
                        "a later layer (layers must be in topological order)" if later else
                        f"no layer of the model (layers: {[x.name for x in self.layers]})"))
            index.setdefault(la.name, i)
        return index

    def sources(self, i: int) -> tuple[str, ...]:
        """The tensor names layer i reads: its `inputs`, or the previous layer (INPUT for the first)."""
        la = self.layers[i]
        return la.inputs or ((self.layers[i - 1].name if i else INPUT),)

    def source_indices(self, i: int) -> tuple[int, ...]:
        """Positions of the layers layer i reads (-1: the model's input)."""
        index = self._index()
        return tuple(index[s] for s in self.sources(i))

    def input_shapes(self, batch: int = 1) -> list:
        """Per layer, the shape of what it reads: one tuple, or a tuple of them for a merge."""
        shapes, index = self.shapes(batch), self._index()
        from .layers import spec_of

        out = []
        for i, la in enumerate(self.layers):
            ins = tuple(shapes[index[s] + 1] for s in self.sources(i))
            out.append(ins[0] if spec_of(la.kind).ARITY == 1 else ins)
        return out

    def is_map(self, name: str) -> bool:
        """Whether the rank-3 tensor `name` (a layer's output, or INPUT) is a 1-D feature map (B, L, C) that a
        channels_first source holds (B, C, L): the input where a conv1d, batch_norm or global pool reads it, a
        conv1d's output, and what element-wise layers, batch_norm and merges make of a map. Sequences stay (B, T, F).
        (A 4-D tensor is always an image map; this rule is for the ambiguous rank 3.)"""
        return self._memoized(("is_map", name), lambda: self._is_map(name))

    def _is_map(self, name: str) -> bool:
        names = [INPUT, *(la.name for la in self.layers)]
        if len(self.shapes(1)[names.index(name)]) != 3:
            return False
        if name == INPUT:
            return any(self.layers[i].kind in MAP_READERS for i in self.consumers(INPUT))
        i = self.layer_index(name)
        kind = self.layers[i].kind
        if kind == "conv1d":
            return True
        return kind in MAP_KEEPERS and any(self.is_map(s) for s in self.sources(i))

    def is_chain(self) -> bool:
        """Every layer reads the one before it (the input, for the first)."""
        return all(self.sources(i) == ((self.layers[i - 1].name if i else INPUT),) for i in range(len(self.layers)))

    def consumers(self, name: str) -> list[int]:
        return [i for i in range(len(self.layers)) if name in self.sources(i)]

    def check(self, batch: int = 1) -> Model:
        """Every layer fits its input, every weight has the shape its kind states and is finite. Returns self."""
        from .layers import spec_of

        if not self.layers:
            raise ModelError(f"model {self.name!r} has no layers")
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ModelError(f"model {self.name!r}: layer names must be unique; repeated: {dup}")
        shapes = self.input_shapes(batch)
        for i, layer in enumerate(self.layers[:-1]):
            if not self.consumers(layer.name):
                raise ModelError(f"{layer.label(i)}: its output is read by no later layer (the model's output is its "
                                 f"last layer, {self.layers[-1].name!r})")
        for i, layer in enumerate(self.layers):
            kind = spec_of(layer.kind, layer.label(i))
            opts = kind.options(layer.options)
            want = kind.weight_shapes(opts, shapes[i])
            if set(want) != set(layer.weights):
                raise ModelError(f"{layer.label(i)}: weights {sorted(layer.weights)} but its kind holds {sorted(want)}")
            for wname, wshape in want.items():
                a = np.asarray(layer.weights[wname])
                if tuple(a.shape) != tuple(wshape):
                    raise ShapeError(f"{layer.label(i)}: weight {wname!r} has shape {tuple(a.shape)}, expected {tuple(wshape)}")
                if not np.all(np.isfinite(a)):
                    bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
                    raise ModelError(f"{layer.label(i)}: weight {wname!r} has {bad} non-finite values (NaN or inf)")
        return self

    def check_input(self, x: np.ndarray) -> None:
        """Data the model refuses whatever the voice: the first layer's (an embedding's ids outside its table, a
        mask that is not post-padded), named. Every voice calls it on the NumPy input before converting it."""
        from .layers import spec_of

        first = self.layers[0]
        kind = spec_of(first.kind, first.label(0))
        kind.check_input(kind.options(first.options), np.asarray(x), f"model {self.name!r} {first.label(0)}")
        from .padding import check_rows

        check_rows(self, x)

    def mask_sources(self) -> list[int | None]:
        """Per layer, the index of the layer whose padding mask reaches its input (an embedding with mask_zero, a
        masking layer), or None. A layer fed a mask cannot be checked on its own: `sub(mask_source, i + 1)` can.
        A merge passes a mask on only where every input carries the same one."""
        return list(self._memoized(("mask_sources",), self._mask_sources))

    def _mask_sources(self) -> list[int | None]:
        from .layers import spec_of

        out: list[int | None] = []
        made: dict[int, int | None] = {-1: None}  # layer position -> the mask source of its output
        for i, la in enumerate(self.layers):
            srcs = {made[j] for j in self.source_indices(i)}
            src = srcs.pop() if len(srcs) == 1 else None
            out.append(src)
            kind = spec_of(la.kind, la.label(i))
            opts = kind.options(la.options)
            makes_new, keeps = kind.makes_mask(opts, False), kind.makes_mask(opts, src is not None)
            made[i] = i if makes_new else (src if keeps else None)
        return out

    def undefined_steps(self) -> list[int | None]:
        """Per layer, the mask source where its output's padded steps are undefined, or None (padding.py)."""
        from .padding import undefined_steps

        return list(self._memoized(("undefined_steps",), lambda: undefined_steps(self)))

    def unreadable_padding(self) -> int | None:
        """The first layer reducing over undefined padded steps without the mask, or None (padding.py)."""
        from .padding import unreadable_padding

        return unreadable_padding(self)

    # ------------------------------------------------------------------ derived models

    def map(self, fn: Callable[[np.ndarray], Any]) -> Model:
        return dataclasses.replace(self, layers=tuple(layer.map(fn) for layer in self.layers))

    def astype(self, dtype: str) -> Model:
        return self.map(lambda a: np.asarray(a, dtype=dtype))

    def sub(self, start: int, stop: int | None = None) -> Model:
        """The layers [start, stop) as a model of their own, fed what layer `start` reads, returning layer stop - 1's
        output: layers of the range that layer does not depend on are left out. Layer `start` must read one tensor
        and the range nothing else from outside it (a merge cannot start a sub-model: it reads several)."""
        from .layers import spec_of

        stop = start + 1 if stop is None else stop
        index = self._index()
        srcs = self.sources(start)
        if spec_of(self.layers[start].kind).ARITY != 1 or len(srcs) != 1:
            raise ModelError(f"{self.layers[start].label(start)} reads {list(srcs)}: a sub-model starts at a layer "
                             f"that reads one tensor")
        feed = srcs[0]
        need, keep = {self.layers[stop - 1].name}, set()
        for i in range(stop - 1, start - 1, -1):
            la = self.layers[i]
            if la.name not in need:
                continue
            keep.add(i)
            for s in self.sources(i):
                if i == start or s == feed:
                    continue
                if index[s] < start:
                    raise ModelError(f"{la.label(i)} reads {s!r}, before layer {start}: layers {start}..{stop - 1} "
                                     f"are not a sub-model fed one tensor")
                need.add(s)
        shape = self.shapes(1)[index[feed] + 1][1:]
        layers = []
        for i in sorted(keep):
            la = self.layers[i]
            ins = () if i == start else tuple(INPUT if s == feed else s for s in self.sources(i))
            layers.append(dataclasses.replace(la, inputs=ins))
        dtype = self.input_dtype if feed == INPUT else "float32"
        return dataclasses.replace(self, name=f"{self.name}[{start}:{stop}]", input_shape=shape, layers=tuple(layers),
                                   input_dtype=dtype)

    def with_parameters(self, params: Mapping[tuple[str, str], Any]) -> Model:
        """The same model holding `params` ({(layer name, weight name): array}, every one of parameters()' keys);
        a key of state() in `params` replaces that state too, any other state stays."""
        missing = sorted(set(self.parameters()) - set(params))
        if missing:
            raise ModelError(f"model {self.name!r}: parameters missing: {missing}")
        return dataclasses.replace(self, layers=tuple(
            dataclasses.replace(la, weights={w: params.get((la.name, w), a) for w, a in la.weights.items()})
            for la in self.layers))

    def replace_layer(self, index: int, layer: Layer) -> Model:
        layers = list(self.layers)
        layers[index] = layer
        return dataclasses.replace(self, layers=tuple(layers))

    def layer_index(self, name: str) -> int:
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise KeyError(f"model {self.name!r} has no layer named {name!r}; layers: {[la.name for la in self.layers]}")

    def flattened_output(self) -> tuple[int, int, int] | None:
        """(H, W, C) of the image map whose Flatten the model returns (only activations and dropout after it), where
        the source is channels_first; else None. Such a source returns the features in its (c, h, w) order, the
        description in (h, w, c): a drop-in port reorders them at its boundary (a Dense after the Flatten instead
        has its rows permuted at import, and the order inside is the port's own business)."""
        if self.boundary != "channels_first":
            return None
        shapes = self.input_shapes(1)
        for i in range(len(self.layers) - 1, -1, -1):
            kind = self.layers[i].kind
            if kind == "flatten":
                return tuple(shapes[i][1:]) if len(shapes[i]) == 4 else None
            if kind not in ("activation", "dropout"):
                return None
        return None

    # ------------------------------------------------------------------ counts

    def param_count(self) -> int:
        """Canonical parameters (what the description stores); a framework's own count can differ (Keras'
        single GRU bias), and the certificate states both."""
        return sum(int(np.size(w)) for layer in self.layers for w in layer.weights.values())

    def flops(self, batch: int) -> int:
        """Forward FLOPs of the model's matrix products and convolutions (impls/contract/formulas.py's counts)."""
        from .layers import spec_of

        shapes = self.input_shapes(batch)
        return sum(spec_of(la.kind).flops(spec_of(la.kind).options(la.options), shapes[i]) for i, la in enumerate(self.layers))

    def parameters(self) -> dict[tuple[str, str], np.ndarray]:
        """{(layer name, weight name): array} of the trainable weights: the order every voice reports gradients in.
        A kind's state (a BatchNorm's moving statistics: LayerSpec.STATE) is not among them: state()."""
        from .layers import spec_of

        return {(la.name, w): a for la in self.layers for w, a in la.weights.items() if w not in spec_of(la.kind).STATE}

    def state(self) -> dict[tuple[str, str], np.ndarray]:
        """{(layer name, weight name): array} of the weights no gradient trains (moving statistics)."""
        from .layers import spec_of

        return {(la.name, w): a for la in self.layers for w, a in la.weights.items() if w in spec_of(la.kind).STATE}


__all__ = ["BOUNDARIES", "INPUT", "Layer", "Model", "ModelError", "ShapeError"]
