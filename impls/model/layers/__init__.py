"""The layer kinds a model description may hold, one small module each; the registry is keyed by kind.

Adding a kind means adding one module here and registering its spec; the description, the reference and every
voice ask `spec_of(kind)` and never change. A kind that is not here is refused with the supported list."""

from __future__ import annotations

from ..errors import ModelError
from . import (
    activation,
    conv1d,
    conv2d,
    dense,
    depthwise_conv2d,
    dropout,
    embedding,
    flatten,
    global_pool,
    gru,
    lstm,
    masking,
    normalization,
    pool2d,
    shape_layers,
    take_step,
    zero_pad2d,
)
from .base import ACTIVATIONS, LayerSpec

# the kinds of issue 24's families are imported here, each family under its own line:
# -- activations
# -- elementwise and constants
from . import elementwise  # isort: skip  (multiply, rescale, layer_scale, stochastic_depth)
# -- pooling and shape
from . import adaptive_pool, slicing  # isort: skip  (adaptive_avg_pool2d, crop2d, slice, channel_shuffle)
# -- normalization, convolution and the rest
from . import lrn  # isort: skip  (lrn)
from . import separable_conv2d  # isort: skip  (separable_conv2d)
# -- attention (issue 25)
from . import attention  # isort: skip  (multi_head_attention)
from . import tokens  # isort: skip  (class_token, position_embedding)
# -- recurrent initial states (issue 25)

KINDS: dict[str, LayerSpec] = {
    s.KIND: s
    for s in (
        gru.SPEC, conv2d.SPEC, depthwise_conv2d.SPEC, pool2d.MAX, pool2d.AVG, zero_pad2d.SPEC, flatten.SPEC,
        dense.SPEC, activation.SPEC, dropout.SPEC, lstm.SPEC, embedding.SPEC, masking.SPEC, take_step.SPEC,
        conv1d.SPEC, normalization.BATCH, normalization.LAYER, global_pool.AVG, global_pool.MAX, shape_layers.RESHAPE,
        shape_layers.PERMUTE, shape_layers.ADD, shape_layers.CONCATENATE,
        # -- activations
        # -- elementwise and constants
        elementwise.MULTIPLY, elementwise.RESCALE, elementwise.LAYER_SCALE, elementwise.STOCHASTIC_DEPTH,
        # -- pooling and shape
        adaptive_pool.SPEC, slicing.CROP, slicing.SLICE, slicing.SHUFFLE,
        # -- normalization, convolution and the rest
        lrn.SPEC, separable_conv2d.SPEC,
        # -- attention (issue 25)
        attention.SPEC, tokens.CLASS_TOKEN, tokens.POSITION_EMBEDDING,
        # -- recurrent initial states (issue 25)
    )
}  # fmt: skip


def spec_of(kind: str, where: str = "") -> LayerSpec:
    try:
        return KINDS[kind]
    except KeyError:
        raise ModelError(f"{where + ': ' if where else ''}layer kind {kind!r} is not supported; "
                         f"supported: {', '.join(KINDS)}") from None


__all__ = ["ACTIVATIONS", "KINDS", "LayerSpec", "spec_of"]
