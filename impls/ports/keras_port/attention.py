"""The Keras port's multi_head_attention (issue 25): keras.layers.MultiHeadAttention(num_heads, key_dim, value_dim,
use_bias, output_shape), called `mha(query, value[, key])` (Keras' order, the description's), with
use_causal_mask=True for a causal layer (a call argument: the functional graph's config keeps it). Its variables
are the canonical layout itself: query/key/value kernels (E, H, d) and biases (H, d), the output kernel (H, dv, Eo)
and bias (Eo,); the key bias, which the description does not hold (softmax ignores it), is written as zeros and is
left out of the trainable variables the training step moves (its gradient is zero in Keras too).

A padding mask reaching the layer (Embedding(mask_zero=True)) flows into Keras' own mask handling: Keras masks the
padded keys (the description's key padding) and also the padded query rows, whose outputs differ from the
description's there (positions no valid step reads). The comparisons read only the valid steps there
(Model.undefined_steps); a model with a layer reducing over the padded steps is refused (emitters.refusal).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...model.description import Layer
from .emitters import EMITTERS, Site, Weights, keras

_PARTS = (("query", "_query_dense"), ("key", "_key_dense"), ("value", "_value_dense"), ("output", "_output_dense"))


@dataclass(frozen=True)
class _MHAWeights(Weights):
    """Keras' variables in get_weights' order: each projection's kernel then (use_bias) bias; the key bias is zeros
    in Keras and no canonical weight."""

    def _keras_names(self, opts: dict) -> list[str]:
        return [f"{p}_{w}" for p, _ in _PARTS for w in ("kernel", *(("bias",) if opts["use_bias"] else ()))]

    def to_keras(self, layer: Layer, opts: dict) -> list[np.ndarray]:
        kb = lambda: np.zeros(np.shape(layer.weights["key_kernel"])[1:])  # noqa: E731
        return [kb() if n == "key_bias" else layer.weights[n] for n in self._keras_names(opts)]

    def _kept(self, layer: Layer, opts: dict, grads: bool) -> list[str]:
        names = self._keras_names(opts)
        return [n for n in names if n != "key_bias"] if grads else names

    def from_keras(self, layer: Layer, opts: dict, arrays: list[np.ndarray], grads: bool) -> dict[str, np.ndarray]:
        got = super().from_keras(layer, opts, arrays, grads)
        got.pop("key_bias", None)
        return got

    def variables(self, layer: Layer, opts: dict, main: Any, trainable: bool) -> list:
        out = []
        for p, attr in _PARTS:
            dense = getattr(main, attr)
            out.append(dense.kernel)
            if opts["use_bias"] and not (trainable and p == "key"):
                out.append(dense.bias)
        return out


def _wire(pieces: list, opts: dict, ins: list) -> Any:
    """mha(query, value[, key]), use_causal_mask=True for a causal layer; under a padding mask its value's mask passed
    as value_mask= explicitly (the graph records it). Keras' MultiHeadAttention otherwise reads its inputs' masks at
    run time and deletes them from its input tensors (multi_head_attention.py: set_keras_mask(query, None)), so the
    next attention of a residual stack would run without its mask: measured 0.26 relative on a two-block model."""
    kwargs: dict = {"use_causal_mask": True} if opts["causal"] else {}
    mask = getattr(ins[1], "_keras_mask", None)
    if mask is not None:
        kwargs["value_mask"] = mask
    return pieces[-1](*ins, **kwargs)


def check(opts: dict, in_shape: tuple, masked: bool) -> str | None:
    return None


FLOAT64 = ("in float64 Keras' MultiHeadAttention scales the scores by 1 / sqrt(key_dim) rounded to float32 (the "
           "TensorFlow backend's tf.cast of a Python float makes a float32 tensor first): measured 1.7e-9 relative on "
           "a layer's output, over the float64 bar")  # fmt: skip


@EMITTERS.register("multi_head_attention", weights=_MHAWeights(lambda opts: []), wire=_wire, check=check,
                   float64=FLOAT64)
def attention(opts: dict, at: Site) -> list:
    q = at.in_shape[0]
    eo = opts["output_dim"] or q[-1]
    return [keras.layers.MultiHeadAttention(opts["num_heads"], opts["key_dim"], value_dim=opts["value_dim"] or opts["key_dim"],
                                            use_bias=opts["use_bias"], output_shape=eo, dtype=at.dt, name=at.name)]  # fmt: skip


__all__ = ["FLOAT64", "attention", "check"]
