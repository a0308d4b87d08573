"""The ONNX port's dense layer: Gemm on (B, in) with the canonical (in, out) kernel, MatMul (+ Add) on the last axis
of a sequence or map (an NCW / NCHW value transposed channels-last first: ConvNeXt's Linear on a map). After a Flatten of an NCHW image (impls/ports/onnx_port/shape.py) the kernel's rows are
permuted to torch's (c, h, w) order (convert.flatten_rows_nhwc_to_nchw).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import convert
from .builder import CANON, EMITTERS, NCHW, _Graph


@EMITTERS.register("dense")
def dense(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    kernel = np.asarray(layer.weights["kernel"])
    if g.rows_nchw is not None:
        kernel, g.rows_nchw = convert.flatten_rows_nhwc_to_nchw(kernel, g.rows_nchw), None
        g.notes.append(f"{layer.name}: the kernel's rows permuted for the NCHW flatten before it (convert.flatten_rows_nhwc_to_nchw)")
    bias = [g.weight("bias", layer.weights["bias"])] if opts["use_bias"] else []
    if len(shape) in (3, 4) and g.layout == NCHW:  # a Dense reads the last axis: the channels of an NCW / NCHW map
        g.to(CANON, len(shape))
    if len(shape) == 2:
        g.apply("Gemm", g.weight("weight", kernel), *bias)  # transB 0: the canonical (in, out) kernel
    else:  # the last axis of (B, T, in) or (T, B, in): either layout
        g.apply("MatMul", g.weight("weight", kernel))
        if bias:
            g.apply("Add", *bias)
    g.activation(opts["activation"], len(shape))


__all__ = ["dense"]
