"""Test vectors from outside the project: ONNX's shipped backend test data, read as the ONNX test runner does.

Two sources, both in the installed `onnx` package (nothing is downloaded):
- `onnx/backend/test/data/pytorch-converted/test_Conv2d_*`, `test_Conv1d_*`, `test_AvgPool*`, `test_MaxPool*`:
  one-node models exported from PyTorch's own nn tests, with input and output tensors PyTorch computed
  (input_*.pb / output_*.pb protobufs, read with onnx.numpy_helper);
- the node cases of `onnx.backend.test.case.node.conv`, `.averagepool`, `.maxpool`: the inputs and expected
  outputs ONNX generates its backend data from (hand-written arrays for Conv, ONNX's NumPy pooling for the
  pools).
- TensorFlow's depthwise-convolution tests (`tensorflow/python/kernel_tests/nn_ops/depthwise_conv_op_base.py`):
  their shape configurations (SAME, VALID and explicit pads, strides, dilations, channel multipliers, each with
  the output shape TensorFlow's test expects), evaluated by that file's own NumPy reference
  (`_DepthwiseConv2dNumpy`) on seeded inputs, plus its hand-computed `testConv2D2x2Filter` values, read from
  the file's source.
Each becomes an `OutsideCase`: NHWC inputs, canonical weights and options through impls/convert.py (OIHW
kernels, ONNX's [top, left, bottom, right] pads; SAME_LOWER, which puts the odd pixel before, as explicit
pads), and the expected output in NHWC. 1-D cases run as 2-D with a height of 1. A case needing what the
contract does not offer (ceil_mode, pooling dilation, 3-D, integer data, argmax) is kept with the reason,
so the test can say what it skipped.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from impls import convert, frameworks
from impls.contract.spec import random_array, same_pads

OPS = {"Conv": "conv2d", "AveragePool": "avg_pool2d", "MaxPool": "max_pool2d"}
CONVERTED = ("test_Conv1d", "test_Conv2d", "test_AvgPool1d", "test_AvgPool2d", "test_MaxPool1d", "test_MaxPool2d")
NODE_MODULES = ("conv", "averagepool", "maxpool")
TF_DEPTHWISE = "tensorflow.python.kernel_tests.nn_ops.depthwise_conv_op_base"
TF_MAX_OUTPUTS = 40_000  # TensorFlow's reference loops in Python over output pixels and channels: small configs only


@dataclass
class OutsideCase:
    name: str  # e.g. "pytorch-converted/test_Conv2d_groups", "node/test_averagepool_2d_pads"
    op: str  # conv2d, avg_pool2d or max_pool2d
    inputs: dict[str, np.ndarray] = field(default_factory=dict)  # x (NHWC) and, for conv2d, kernel (HWIO), bias
    options: dict[str, Any] = field(default_factory=dict)  # the contract's keyword arguments
    expected: np.ndarray | None = None  # NHWC
    unsupported: str | None = None  # why the contract cannot express it, or None

    def call(self, mod, native: dict[str, Any]):
        if self.op == "conv2d":
            return mod.conv2d(native["x"], native["kernel"], native["bias"], **self.options)
        return getattr(mod, self.op)(native["x"], **self.options)


def _two_d(a: np.ndarray) -> np.ndarray:
    """(N, C, L) -> (N, C, 1, L); 2-D arrays pass."""
    return a[:, :, None, :] if a.ndim == 3 else a


def _padding(attrs: dict, spatial: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int],
             dilation: tuple[int, int]) -> Any:  # fmt: skip
    """ONNX's auto_pad / pads as the contract's padding ('same' is SAME_UPPER: the odd pixel after)."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "SAME_UPPER":
        return "same"
    if auto == "VALID":
        return "valid"
    if auto == "SAME_LOWER":  # the odd pixel before: mirror TensorFlow's split
        (a, b), (c, d) = (same_pads(n, (k - 1) * dl + 1, s) for n, k, s, dl in zip(spatial, kernel, stride, dilation))
        return (b, a), (d, c)
    pads = list(attrs.get("pads", [0] * (2 * len(spatial))))
    if len(pads) == 2:  # 1-D [begin, end] -> 2-D with no padding along the added height
        pads = [0, pads[0], 0, pads[1]]
    return convert.pads_from_onnx(pads)


def _pair(values, n: int, default: int = 1) -> tuple[int, int]:
    v = list(values) if values is not None else [default] * n
    return (1, int(v[0])) if len(v) == 1 else (int(v[0]), int(v[1]))


def _case(name: str, op_type: str, attrs: dict, arrays: list[np.ndarray], expected: np.ndarray) -> OutsideCase:
    op = OPS[op_type]
    x = arrays[0]
    reason = None
    if x.ndim not in (3, 4):
        reason = f"{x.ndim - 2}-D data: the contract's ops are 2-D"
    elif not np.issubdtype(x.dtype, np.floating):
        reason = f"{x.dtype} data: the voices compute in floating point"
    elif attrs.get("ceil_mode", 0):
        reason = ("ceil_mode: the op contract's pools size outputs with floor (TensorFlow's and Keras' rule); the "
                  "max_pool2d / avg_pool2d layers' ceil_mode meets these cases in verify/test_pool_shape_layers.py")
    elif op != "conv2d" and any(d != 1 for d in attrs.get("dilations", [1])):
        reason = "dilated pooling: the contract's pools have no dilation"
    elif attrs.get("storage_order", 0):
        reason = "storage_order: an argmax layout, not a value the voices return"
    case = OutsideCase(name, op, unsupported=reason)
    if reason:
        return case
    x = _two_d(x)
    spatial = (int(x.shape[2]), int(x.shape[3]))
    stride = _pair(attrs.get("strides"), len(x.shape) - 2)
    if op == "conv2d":
        w = _two_d(arrays[1])
        bias = arrays[2] if len(arrays) > 2 else np.zeros(w.shape[0], dtype=x.dtype)
        dilation = _pair(attrs.get("dilations"), len(x.shape) - 2)
        case.inputs = {"kernel": convert.oihw_to_hwio(w), "bias": bias}
        case.options = {"stride": stride, "dilation": dilation, "groups": int(attrs.get("group", 1)),
                        "padding": _padding(attrs, spatial, tuple(w.shape[2:]), stride, dilation)}  # fmt: skip
    else:
        pool = _pair(attrs["kernel_shape"], len(x.shape) - 2)
        case.options = {"pool": pool, "stride": stride, "padding": _padding(attrs, spatial, pool, stride, (1, 1))}
        if op == "avg_pool2d":
            case.options["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    case.inputs["x"] = convert.nchw_to_nhwc(x)
    case.expected = convert.nchw_to_nhwc(_two_d(expected))
    return case


def _attrs(onnx, node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@cache
def converted_cases() -> tuple[OutsideCase, ...]:
    """ONNX's pytorch-converted backend data for Conv, AveragePool and MaxPool, as OutsideCases."""
    onnx = frameworks.load("onnx")
    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
    cases = []
    for d in sorted(p for p in root.iterdir() if p.name.startswith(CONVERTED)):
        model = onnx.load(str(d / "model.onnx"))
        (node,) = [n for n in model.graph.node if n.op_type in OPS]
        # PyTorch exports AvgPool1d as Unsqueeze(axis 3) -> a (k, 1) AveragePool -> Squeeze: a width of 1
        wrapped = [n.op_type for n in model.graph.node] == ["Unsqueeze", node.op_type, "Squeeze"]
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        data = d / "test_data_set_0"
        fed = iter(onnx.numpy_helper.to_array(onnx.load_tensor(str(p))) for p in sorted(data.glob("input_*.pb")))
        arrays = [inits[n] if n in inits else next(fed) for n in (model.graph.node[0].input if wrapped else node.input) if n]
        expected = onnx.numpy_helper.to_array(onnx.load_tensor(str(data / "output_0.pb")))
        if wrapped:
            arrays, expected = [arrays[0][..., None]], expected[..., None]
        cases.append(_case(f"pytorch-converted/{d.name}", node.op_type, _attrs(onnx, node), arrays, expected))
    return tuple(cases)


@cache
def node_cases() -> tuple[OutsideCase, ...]:
    """The node cases ONNX generates its Conv, AveragePool and MaxPool backend data from."""
    frameworks.load("onnx")
    node = importlib.import_module("onnx.backend.test.case.node")
    for m in NODE_MODULES:  # importing a case module runs its exporters, which append to _NodeTestCases
        importlib.import_module(f"onnx.backend.test.case.node.{m}")
    onnx = frameworks.load("onnx")
    out = []
    for c in node._NodeTestCases:
        n = c.model.graph.node[0]
        if n.op_type in OPS:
            inputs, outputs = c.data_sets[0]
            out.append(_case(f"node/{c.name}", n.op_type, _attrs(onnx, n), list(inputs), outputs[0]))
    return tuple(out)


def _tf_depthwise(name: str) -> Any:
    return frameworks.load_attr(TF_DEPTHWISE, name)


@cache
def tf_depthwise_cases() -> tuple[OutsideCase, ...]:
    """TensorFlow's depthwise conv test configurations, evaluated by its own NumPy reference; each checks the
    output shape TensorFlow's test states too (OutsideCase.expected has it)."""
    reference = _tf_depthwise("_DepthwiseConv2dNumpy")
    configs = [("", c) for c in _tf_depthwise("ConfigsToTest")()]
    configs += [("explicit-", c) for c in _tf_depthwise("ConfigsToTestExplicit")()]
    cases = []
    for n, (kind, (in_size, f_size, out_size, stride, padding, dilations)) in enumerate(configs):
        name = f"tf-depthwise/{kind}{'x'.join(map(str, in_size))}-f{'x'.join(map(str, f_size))}"
        if int(np.prod(out_size[1:])) * in_size[0] > TF_MAX_OUTPUTS:
            cases.append(OutsideCase(name, "conv2d", unsupported="too large for TensorFlow's Python-loop reference here"))
            continue
        x, f = random_array(tuple(in_size), 3000 + n), random_array(tuple(f_size), 3100 + n)
        tf_pad = padding if isinstance(padding, str) else [(0, 0), *map(tuple, padding), (0, 0)]
        expected = reference(x, f, [1, stride, stride, 1], tf_pad, "NHWC", dilations)
        if list(expected.shape) != list(out_size):
            raise AssertionError(f"{name}: TensorFlow's reference gives {expected.shape}, its test states {out_size}")
        bias = random_array((out_size[3],), 3200 + n)
        ours = padding.lower() if isinstance(padding, str) else tuple(tuple(p) for p in padding)
        cases.append(OutsideCase(name, "conv2d",
                                 {"x": x, "kernel": convert.depthwise_to_grouped(f), "bias": bias},
                                 {"stride": stride, "padding": ours, "dilation": tuple(dilations or (1, 1)),
                                  "groups": in_size[3]}, expected + bias))  # fmt: skip
    return tuple(cases)


@cache
def tf_hand_values_case() -> OutsideCase:
    """testConv2D2x2Filter: a [1, 2, 3, 2] input and [2, 2, 2, 2] filter of 1, 2, 3, ... and the outputs
    TensorFlow's authors worked out by hand (read from the test's source)."""
    test = _tf_depthwise("DepthwiseConv2DBase").testConv2D2x2Filter
    tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(test)))
    expected = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "expected_output")  # fmt: skip
    x = np.arange(1.0, 13.0).reshape(1, 2, 3, 2)
    f = np.arange(1.0, 17.0).reshape(2, 2, 2, 2)
    return OutsideCase("tf-depthwise/testConv2D2x2Filter", "conv2d",
                       {"x": x, "kernel": convert.depthwise_to_grouped(f), "bias": np.zeros(4)},
                       {"padding": "valid", "groups": 2}, np.asarray(expected, dtype=np.float64).reshape(1, 1, 2, 4))  # fmt: skip
