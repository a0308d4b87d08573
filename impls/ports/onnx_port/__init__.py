"""The ONNX port (voice "onnxruntime"): one ONNX graph for a whole model description, run by ONNX Runtime.

    proto = graph(model, "float32")                  # a ModelProto, weights as initializers, batch symbolic
    write(model, Path("net.onnx"))                    # what `nnparity port MODEL --to onnx -o net.onnx` saves
    built = build(model, "float32")                   # an InferenceSession on the same graph: canonical in and out
    built.outputs(x)                                  # every layer's output, one run (each layer's value an output)
    built.rebind(other)                               # `other` (the same structure) in this graph, its weights swapped in

The graph computes in ONNX's own layouts, NCHW images and time-major (T, B, F) sequences, and keeps the source's
layout at its boundary (native_layout=True: ONNX's own); each layer's weights go through impls/convert.py. The
package: builder.py (the graph, its layouts and boundary, each layer's value and layout (the taps), the whole-graph
assembly, EMITTERS and `refusal`), voice.py (build, in memory, with its outputs and rebind; port_dtype, write), and
one emitter module per family of layer kinds, each registering its kinds' emitters in EMITTERS with the check that
refuses what ONNX Runtime cannot run: recurrent.py (gru, lstm, take_step), embedding.py (embedding, masking),
convolution.py (conv2d, depthwise_conv2d, conv1d), pooling.py (max/avg pools, global pools), normalization.py
(batch_norm, layer_norm), activation.py (activation, dropout), dense.py (dense), shape.py (zero_pad2d, flatten,
reshape, permute, add, concatenate), elementwise.py (multiply, rescale, layer_scale, stochastic_depth). Every kind of impls.model.layers.KINDS has an emitter.
"""

from __future__ import annotations

from . import activation, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape  # noqa: F401 -- each registers its emitters
from . import attention  # noqa: F401 - issue 25: multi_head_attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: crop2d, slice, channel_shuffle
from .builder import (
    DTYPES,
    EMITTERS,
    INPUT,
    OUTPUT,
    VOICE,
    boundary_transforms,
    graph,
    helper,
    is_map,
    numpy_helper,
    refusal,
)
from .voice import build, port_dtype, write

__all__ = ["DTYPES", "EMITTERS", "INPUT", "OUTPUT", "VOICE", "boundary_transforms", "build", "graph", "helper", "is_map",
           "numpy_helper", "port_dtype", "refusal", "write"]
