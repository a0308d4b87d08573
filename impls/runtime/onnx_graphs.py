"""ONNX graphs built by hand with onnx.helper, from canonical weights through impls/convert.py: the GRU operator
(either linear_before_reset), Conv, MaxPool, AveragePool, Gemm / MatMul, Relu, Softmax, the seed's 1-D equations.
Whole models (the seed models among them) are the ONNX port's graphs (impls/ports/onnx_port.py).

Images enter and leave NHWC, sequences (B, T, F): the graphs carry the Transposes to ONNX's NCHW and (T, B, F)
layouts themselves, so a graph computes exactly the contract's function. Op graphs take their weights as graph
inputs (one session serves any values).
Framework-free but for onnx (loaded through impls.frameworks); impls/runtime/ort_impl.py runs them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import convert, frameworks
from ..contract import spec

onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

OPSET = 21
IR_VERSION = 10  # what ONNX Runtime 1.31 reads; onnx 1.23's helper would write a newer one
LINEAR_BEFORE_RESET = {"reset_before": 0, "reset_after": 1}
"""The two GRU variants the ONNX GRU operator computes, by its linear_before_reset attribute."""
NHWC_TO_NCHW, NCHW_TO_NHWC, BTF_TO_TBF = (0, 3, 1, 2), (0, 2, 3, 1), (1, 0, 2)


def _elem(dtype: Any) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def model(nodes: list, inputs: dict[str, tuple[Any, tuple]], outputs: dict[str, Any], name: str,
          initializers: dict[str, np.ndarray] | None = None) -> Any:  # fmt: skip
    """A ModelProto: inputs {name: (dtype, shape)}, outputs {name: dtype} (shapes inferred)."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(n, _elem(dt), list(shape)) for n, (dt, shape) in inputs.items()],
        [helper.make_tensor_value_info(n, _elem(dt), None) for n, dt in outputs.items()],
        [numpy_helper.from_array(np.ascontiguousarray(a), n) for n, a in (initializers or {}).items()],
    )  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nnparity")
    m.ir_version = IR_VERSION
    return m


def _const(name: str, values, dtype=np.int64) -> Any:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(values, dtype=dtype), name))


def _t(src: str, dst: str, perm) -> Any:
    return helper.make_node("Transpose", [src], [dst], perm=list(perm))


def live_nodes(nodes: list, outputs: list[str]) -> list:
    """The nodes that `outputs` depend on, in their order (dead nodes dropped)."""
    need, keep = set(outputs), []
    for n in reversed(nodes):
        if need.intersection(n.output):
            keep.append(n)
            need.update(t for t in n.input if t)
    return keep[::-1]


# --------------------------------------------------------------------------- GRU


def gru_nodes(x: str, prefix: str, W: str, R: str, B: str, h0: str | None, H: int, variant: str) -> tuple[list, str, str]:
    """Nodes of one GRU layer on x (T, B, I) -> (y (T, B, H), h_T (B, H)) names. ONNX's GRU is layout 0:
    Y (T, num_directions, B, H), Y_h (num_directions, B, H)."""
    if variant not in LINEAR_BEFORE_RESET:
        raise ValueError(f"the ONNX GRU operator computes {', '.join(LINEAR_BEFORE_RESET)} only; got {variant!r}")
    nodes = [_const(f"{prefix}ax0", [0]), _const(f"{prefix}ax1", [1])]
    init = ""
    if h0 is not None:
        init = f"{prefix}init_h"
        nodes.append(helper.make_node("Unsqueeze", [h0, f"{prefix}ax0"], [init]))
    nodes += [
        helper.make_node("GRU", [x, W, R, B, "", init], [f"{prefix}Y", f"{prefix}Y_h"], hidden_size=H,
                         linear_before_reset=LINEAR_BEFORE_RESET[variant], name=f"{prefix}GRU"),
        helper.make_node("Squeeze", [f"{prefix}Y", f"{prefix}ax1"], [f"{prefix}y"]),
        helper.make_node("Squeeze", [f"{prefix}Y_h", f"{prefix}ax0"], [f"{prefix}h"]),
    ]  # fmt: skip
    return nodes, f"{prefix}y", f"{prefix}h"


def gru(shape: tuple, H: int, variant: str, dtype: Any, with_h0: bool) -> Any:
    """x (B, T, I), W (1, 3H, I), R (1, 3H, H), B (1, 6H)[, h0 (B, H)] -> y (B, T, H), h_T (B, H)."""
    B, _, I = shape
    nodes, y, h = gru_nodes("xt", "g_", "W", "R", "B", "h0" if with_h0 else None, H, variant)
    inputs = {"x": (dtype, shape), "W": (dtype, (1, 3 * H, I)), "R": (dtype, (1, 3 * H, H)), "B": (dtype, (1, 6 * H))}
    inputs |= {"h0": (dtype, (B, H))} if with_h0 else {}
    nodes = [_t("x", "xt", BTF_TO_TBF), *nodes, _t(y, "y", BTF_TO_TBF), helper.make_node("Identity", [h], ["h_T"])]
    return model(nodes, inputs, {"y": dtype, "h_T": dtype}, "gru")


# --------------------------------------------------------------------------- conv, pools, dense, activations


def _nchw(op: str, inputs: list[str], attrs: dict, perm_in=NHWC_TO_NCHW, perm_out=NCHW_TO_NHWC) -> list:
    return [_t("x", "xc", perm_in), helper.make_node(op, ["xc", *inputs], ["yc"], **attrs), _t("yc", "y", perm_out)]


def conv2d(shape: tuple, kernel_oihw: tuple, g: spec.ConvGeometry, dtype: Any) -> Any:
    """x NHWC, W OIHW (convert.hwio_to_oihw), B (O,) -> y NHWC; pads as ONNX's [top, left, bottom, right]."""
    attrs = {"strides": list(g.stride), "dilations": list(g.dilation), "group": g.groups,
             "pads": convert.pads_to_onnx(g.pads), "kernel_shape": [g.KH, g.KW]}  # fmt: skip
    inputs = {"x": (dtype, shape), "W": (dtype, kernel_oihw), "B": (dtype, (g.O,))}
    return model(_nchw("Conv", ["W", "B"], attrs), inputs, {"y": dtype}, "conv2d")


def pool2d(op: str, shape: tuple, g: spec.PoolGeometry, dtype: Any, count_include_pad: bool | None = None) -> Any:
    """MaxPool (padding never wins) or AveragePool (count_include_pad as ONNX's attribute) on NHWC."""
    attrs = {"kernel_shape": list(g.pool), "strides": list(g.stride), "pads": convert.pads_to_onnx(g.pads)}
    if op == "AveragePool":
        attrs["count_include_pad"] = int(bool(count_include_pad))
    return model(_nchw(op, [], attrs), {"x": (dtype, shape)}, {"y": dtype}, op)


def dense(shape: tuple, n_out: int, dtype: Any) -> Any:
    """Gemm for x (B, in); MatMul + Add for any other rank."""
    inputs = {"x": (dtype, shape), "kernel": (dtype, (shape[-1], n_out)), "bias": (dtype, (n_out,))}
    if len(shape) == 2:
        nodes = [helper.make_node("Gemm", ["x", "kernel", "bias"], ["y"])]
    else:
        nodes = [helper.make_node("MatMul", ["x", "kernel"], ["xk"]), helper.make_node("Add", ["xk", "bias"], ["y"])]
    return model(nodes, inputs, {"y": dtype}, "dense")


def unary(op: str, shape: tuple, dtype: Any, **attrs: Any) -> Any:
    return model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": (dtype, shape)}, {"y": dtype}, op)


def seed_conv1d(shape: tuple, K: int, dtype: Any) -> Any:
    """The seed's per-channel correlation as a depthwise 1-D Conv (group = C) on (B, C, L); w (C, 1, K)."""
    C = shape[2]
    inputs = {"x": (dtype, shape), "W": (dtype, (C, 1, K)), "B": (dtype, (C,))}
    return model(_nchw("Conv", ["W", "B"], {"group": C, "kernel_shape": [K]}, (0, 2, 1), (0, 2, 1)), inputs,
                 {"y": dtype}, "seed_conv1d")  # fmt: skip


def seed_pool1d(shape: tuple, dtype: Any) -> Any:
    """The seed's x_ij = max(y_ij, y_i,j+1) as MaxPool(kernel 2, stride 1) on (B, C, L)."""
    nodes = _nchw("MaxPool", [], {"kernel_shape": [2], "strides": [1]}, (0, 2, 1), (0, 2, 1))
    return model(nodes, {"x": (dtype, shape)}, {"y": dtype}, "seed_pool1d")

