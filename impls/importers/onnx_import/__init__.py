"""The ONNX importer: an .onnx file whose nodes are in the supported set -> a model description, and the file itself
run by ONNX Runtime as the user's own model.

    imported = load_file(Path("net.onnx"), None)       # or (3, 1, 28, 28): the graph's own layout, batch first

Three steps. (1) onnx.load and onnx.checker, (2) constant subgraphs folded at the input's static shape
(folding.py), (3) what is left walked in node order (walker.py) by a registry of small converters keyed by op_type
(`REGISTRY`, onnx2torch's @add_converter style), one module a family: recurrent (GRU, LSTM, take_step), embedding
(Gather), convolution (Conv), pooling, normalization, activation, dense (Gemm, MatMul), shape (Pad, Flatten, Reshape,
Transpose, Squeeze, Unsqueeze, Concat), elementwise (Add, Sub, Mul, Div, Sum: merges, constants, a layer scale). A miss is UnsupportedLayer naming the node, its op_type, its position
and the supported list. The value the walk follows (values.py) records the graph's layout of each tensor, so layout
ops are bookkeeping; runner.py runs the user's file in ONNX Runtime for its outputs and its layers' outputs.
"""

from __future__ import annotations

from . import activation, convolution, dense, elementwise, embedding, normalization, pooling, recurrent, shape  # noqa: F401 -- they register
from . import attention  # noqa: F401 - issue 25: attention
from . import tokens  # noqa: F401 - issue 25: class_token, position_embedding
from . import slicing  # noqa: F401 - issue 24: Slice, the channel shuffle
from .context import CONVERTERS, REGISTRY, converter, supported
from .folding import ANALYSIS_BATCH
from .recurrent import REFUSED
from .walker import load_file

__all__ = ["ANALYSIS_BATCH", "CONVERTERS", "REFUSED", "REGISTRY", "converter", "load_file", "supported"]
