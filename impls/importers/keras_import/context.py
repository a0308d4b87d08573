"""The Keras importer's registry and the context each converter is handed: one Keras layer being converted.

REGISTRY is keyed by the exact Keras layer class (a subclass is not the same layer: it could compute anything);
each converter takes a Context and returns (kind, options, canonical weights), or None for a layer the description
skips. `meta` on a registration tells the walker what it needs to know of a layer besides its conversion: `merge`
(it reads several tensors: Add, Multiply, Concatenate; "auto" for a raw op, which reads one tensor with a constant
or several), `mask_maker` (it starts Keras' padding mask: Embedding, Masking). Raw ops of a functional graph
(keras.src.ops.numpy.Add for `x + 3`) and keras.applications' own layers are keyed by their classes too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import frameworks
from ...model.layers import ACTIVATIONS
from ...registry import Registry
from .. import UnsupportedLayer

keras = frameworks.load("keras")

Converted = tuple[str, dict, dict] | None  # (kind, options, canonical weights); None: the layer is skipped
REGISTRY = Registry("the Keras importer", "Keras layer class", name_of=lambda c: f"keras.layers.{c.__name__}")


def supported() -> str:
    """Every Keras layer class the importer reads, as a refusal lists them."""
    return REGISTRY.supported()


def class_name(c: type) -> str:
    """How a registered class is named: keras.layers.Dense; a raw op of the functional graph keras.ops.Multiply;
    keras.applications' own layers by their module (keras.applications.convnext.LayerScale)."""
    module = c.__module__
    if module.startswith("keras.src.ops"):
        return f"keras.ops.{c.__name__}"
    if module.startswith("keras.src.applications"):
        return f"keras.applications.{module.rsplit('.', 1)[-1]}.{c.__name__}"
    return f"keras.layers.{c.__name__}"


REGISTRY.name_of = class_name  # issue 24: raw ops and keras.applications' layers are registered classes too


KERAS_ACTIVATIONS = {"swish": "silu", "hard_silu": "hard_swish"}
"""Keras 3's activation names that are another name of the description's (issue 24): Keras' silu is swish, its
hard_swish hard_silu. Keras 3's hard_sigmoid is relu6(x + 3) / 6 (the description's default; Keras 2's was 0.2 x + 0.5)
and keras.activations.gelu the erf one (approximate=False), so the rest are the description's names as they are."""


class Context:
    """One Keras layer being converted: its config, its input shape (batch first) and how to refuse it."""

    def __init__(self, layer: Any, position: int, in_shape: tuple[int, ...], where: str, node: Any = None):
        self.layer, self.position, self.in_shape, self.where = layer, position, in_shape, where
        self.node = node  # its node in the graph: a raw op's constants are its arguments
        self.config = layer.get_config()
        self.notes: list[str] = []
        self.input_dtype = "float32"  # the model's input dtype (token ids for an Embedding), set by from_model

    @property
    def label(self) -> str:
        return f"layer {self.position} {self.layer.name!r} ({class_name(type(self.layer))})"

    def refuse(self, why: str) -> UnsupportedLayer:
        return UnsupportedLayer(f"{self.where}: {self.label}: {why}")

    def activation(self, key: str = "activation") -> str:
        act = self.config.get(key, "linear")
        act = KERAS_ACTIVATIONS.get(act, act) if isinstance(act, str) else act
        if act == "leaky_relu":
            raise self.refuse(f"{key}='leaky_relu' (keras.activations.leaky_relu, slope 0.2): a layer's activation= is a "
                              "name with no parameter; as an Activation or LeakyReLU layer it imports")  # fmt: skip
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise self.refuse(f"{key}={act!r} is not one of {', '.join(ACTIVATIONS)} (or Keras' swish, hard_silu)")
        if act == "gelu" and getattr(self.layer, "compute_dtype", None) == "float64":
            self.notes.append(f"{self.label}: Keras' float64 gelu is tf.nn.gelu, whose 1 / sqrt 2 is cast through float32 "
                              "(up to 1.2e-8 off the exact erf GELU the description holds)")  # fmt: skip
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


def pair(v: Any) -> list[int]:
    """A Keras 2-D size (an int or a pair) -> [h, w]."""
    return [int(a) for a in v] if isinstance(v, (list, tuple)) else [int(v), int(v)]


def one(v: Any) -> int:
    """A Keras 1-D size (an int or a 1-tuple) -> the int."""
    return int(v[0]) if isinstance(v, (list, tuple)) else int(v)


__all__ = ["REGISTRY", "Context", "Converted", "one", "pair", "supported"]
