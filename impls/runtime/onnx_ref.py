"""ONNX's own reference operators (onnx.reference, NumPy-based) as an outside voice.

nnparity did not write these: they are the ONNX project's executable specification. Each function
builds a one-node ONNX graph from canonical inputs through impls/convert.py and evaluates it with
onnx.reference.ReferenceEvaluator. Used by verify/test_onnx_reference.py; not a benchmarked backend.
"""

from __future__ import annotations

import numpy as np

from .. import convert, frameworks
from ..contract import spec
from ..contract.spec import GRUWeights

onnx = frameworks.load("onnx")
_helper = onnx.helper
_Evaluator = frameworks.load_attr("onnx.reference", "ReferenceEvaluator")

_LINEAR_BEFORE_RESET = {"reset_before": 0, "reset_after": 1}
VARIANTS = tuple(_LINEAR_BEFORE_RESET)


def _run(op: str, inputs: dict[str, np.ndarray], outputs: list[str], **attrs) -> list[np.ndarray]:
    """Evaluate one ONNX node; outputs take the first input's element type."""
    tensor_type = _helper.np_dtype_to_tensor_dtype
    elem = tensor_type(next(iter(inputs.values())).dtype)
    node = _helper.make_node(op, list(inputs), outputs, **attrs)
    graph = _helper.make_graph(
        [node], op,
        [_helper.make_tensor_value_info(n, tensor_type(a.dtype), a.shape) for n, a in inputs.items()],
        [_helper.make_tensor_value_info(n, elem, None) for n in outputs],
    )  # fmt: skip
    model = _helper.make_model(graph, opset_imports=[_helper.make_opsetid("", 22)])
    return _Evaluator(model).run(None, inputs)


def gru(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None):
    """ONNX GRU (layout 0: X is (T, B, I)); linear_before_reset picks the variant."""
    spec.check_variant(variant)
    if variant not in _LINEAR_BEFORE_RESET:
        raise ValueError(f"ONNX GRU computes {', '.join(VARIANTS)} only; got {variant!r}")
    B, _, _, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    o = convert.gru_to_onnx(weights)
    inputs = {"X": np.ascontiguousarray(x.transpose(1, 0, 2)), "W": o["W"], "R": o["R"], "B": o["B"]}
    inputs = {k: v.astype(x.dtype) for k, v in inputs.items()}
    inputs["sequence_lens"] = np.full(B, x.shape[1], dtype=np.int32)
    inputs["initial_h"] = (np.zeros((1, B, H)) if h0 is None else h0[None]).astype(x.dtype)
    Y, Y_h = _run("GRU", inputs, ["Y", "Y_h"], hidden_size=H, linear_before_reset=_LINEAR_BEFORE_RESET[variant])
    return Y[:, 0].transpose(1, 0, 2), Y_h[0]  # (T, 1, B, H) -> (B, T, H)


def _pad_attrs(padding, pads) -> dict:
    """'same' is ONNX's auto_pad SAME_UPPER (the odd pixel after, as TensorFlow); anything else explicit pads."""
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    return {"pads": convert.pads_to_onnx(pads)}


def conv2d(x, kernel, bias, stride=1, padding="valid", dilation=1, groups=1):
    """ONNX Conv on NCHW/OIHW with group and dilations."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    (y,) = _run("Conv", {"X": convert.nhwc_to_nchw(x), "W": convert.hwio_to_oihw(kernel), "B": bias.astype(x.dtype)},
                ["Y"], strides=list(g.stride), dilations=list(g.dilation), group=g.groups,
                **_pad_attrs(padding, g.pads))  # fmt: skip
    return convert.nchw_to_nhwc(y)


def max_pool2d(x, pool=2, stride=None, padding="valid"):
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    (y,) = _run("MaxPool", {"X": convert.nhwc_to_nchw(x)}, ["Y"], kernel_shape=list(g.pool), strides=list(g.stride),
                **_pad_attrs(padding, g.pads))  # fmt: skip
    return convert.nchw_to_nhwc(y)


def avg_pool2d(x, pool=2, stride=None, padding="valid", count_include_pad=False):
    """ONNX AveragePool; its count_include_pad attribute is the same flag (0 = TensorFlow's rule)."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    (y,) = _run("AveragePool", {"X": convert.nhwc_to_nchw(x)}, ["Y"], kernel_shape=list(g.pool),
                strides=list(g.stride), count_include_pad=int(count_include_pad), **_pad_attrs(padding, g.pads))  # fmt: skip
    return convert.nchw_to_nhwc(y)


def dense(x, kernel, bias):
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    (y,) = _run("Gemm", {"A": x, "B": kernel.astype(x.dtype), "C": bias.astype(x.dtype)}, ["Y"])
    return y


def softmax(x, axis=-1):
    (y,) = _run("Softmax", {"X": x}, ["Y"], axis=axis)
    return y
