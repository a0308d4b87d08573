"""The model description: a framework-neutral model as data, a chain of layers with options and canonical weights.

    Model(name, input_shape=(28, 28, 1), layers=(Layer("conv2d", "conv_1", {...}, {"kernel": ..., "bias": ...}), ...))

Canonical means the contract's layouts (impls/contract/spec.py): inputs batch first, images NHWC, conv kernels HWIO,
dense kernels (in, out), GRU weights (W, U, b_x, b_h) in gate order (z, r, h). `input_shape` leaves the batch out.
What each kind of layer holds, computes and counts lives in one small module per kind (impls/model/layers/); this
module only knows the chain. A chain is all a model is here: branches (Add, Concatenate) are refused by the
importers, with the reason, until the description grows a graph.

Nothing here imports a framework: importers (impls/importers/) make a Model, voices and ports build one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..contract.spec import ShapeError


class ModelError(ValueError):
    """A description that cannot be a model: an unknown kind, a bad option, a non-finite or misshapen weight.
    The message names the layer (its position and name) and the offending value."""


@dataclass(frozen=True)
class Layer:
    kind: str  # a key of impls.model.layers.KINDS
    name: str  # the source's own layer name: what a certificate calls it
    options: Mapping[str, Any] = field(default_factory=dict)  # JSON-able values only
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)  # canonical layout, names as the kind states

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

    def __post_init__(self):
        if self.boundary not in BOUNDARIES:
            raise ModelError(f"model {self.name!r}: boundary {self.boundary!r} is not one of {BOUNDARIES}")
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))

    # ------------------------------------------------------------------ shapes and checks

    def shapes(self, batch: int = 1) -> list[tuple[int, ...]]:
        """[input shape, output shape of layer 0, ..., of the last layer], batch first. Raises ShapeError or
        ModelError naming the first layer that does not fit."""
        from .layers import spec_of

        shape = (int(batch), *self.input_shape)
        out = [shape]
        for i, layer in enumerate(self.layers):
            kind = spec_of(layer.kind, layer.label(i))
            try:
                opts = kind.options(layer.options)
                shape = tuple(int(d) for d in kind.output_shape(opts, shape))
            except (ShapeError, ModelError, ValueError, TypeError) as e:
                raise type(e)(f"{layer.label(i)} does not fit its input {shape}: {e}") from None
            out.append(shape)
        return out

    def check(self, batch: int = 1) -> Model:
        """Every layer fits its input, every weight has the shape its kind states and is finite. Returns self."""
        from .layers import spec_of

        if not self.layers:
            raise ModelError(f"model {self.name!r} has no layers")
        shapes = self.shapes(batch)
        names = [layer.name for layer in self.layers]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ModelError(f"model {self.name!r}: layer names must be unique; repeated: {dup}")
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

    def mask_sources(self) -> list[int | None]:
        """Per layer, the index of the layer whose padding mask reaches its input (an embedding with mask_zero, a
        masking layer), or None. A layer fed a mask cannot be checked on its own: `sub(mask_source, i + 1)` can."""
        from .layers import spec_of

        out, src = [], None
        for i, la in enumerate(self.layers):
            out.append(src)
            kind = spec_of(la.kind, la.label(i))
            opts = kind.options(la.options)
            makes_new, keeps = kind.makes_mask(opts, False), kind.makes_mask(opts, src is not None)
            src = i if makes_new else (src if keeps else None)
        return out

    # ------------------------------------------------------------------ derived models

    def map(self, fn: Callable[[np.ndarray], Any]) -> Model:
        return dataclasses.replace(self, layers=tuple(layer.map(fn) for layer in self.layers))

    def astype(self, dtype: str) -> Model:
        return self.map(lambda a: np.asarray(a, dtype=dtype))

    def sub(self, start: int, stop: int | None = None) -> Model:
        """The layers [start, stop) as a model of their own, fed what layer `start` is fed."""
        stop = start + 1 if stop is None else stop
        shape = self.shapes(1)[start][1:]
        return dataclasses.replace(self, name=f"{self.name}[{start}:{stop}]", input_shape=shape,
                                   layers=self.layers[start:stop], input_dtype=self.input_dtype if start == 0 else "float32")

    def with_parameters(self, params: Mapping[tuple[str, str], Any]) -> Model:
        """The same model holding `params` ({(layer name, weight name): array}, every one of parameters()' keys)."""
        missing = sorted(set(self.parameters()) - set(params))
        if missing:
            raise ModelError(f"model {self.name!r}: parameters missing: {missing}")
        return dataclasses.replace(self, layers=tuple(
            dataclasses.replace(la, weights={w: params[(la.name, w)] for w in la.weights}) for la in self.layers))

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
        shapes = self.shapes(1)
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

        shapes = self.shapes(batch)
        return sum(spec_of(la.kind).flops(spec_of(la.kind).options(la.options), shapes[i]) for i, la in enumerate(self.layers))

    def parameters(self) -> dict[tuple[str, str], np.ndarray]:
        """{(layer name, weight name): array}: the order every voice reports gradients in."""
        return {(la.name, w): a for la in self.layers for w, a in la.weights.items()}


__all__ = ["BOUNDARIES", "Layer", "Model", "ModelError", "ShapeError"]
