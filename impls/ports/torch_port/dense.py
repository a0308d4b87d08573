"""The torch port's dense layer: nn.Linear, its weight (out, in) (convert.dense_to_torch), on the last axis.

A Linear after a flatten of a map (held in torch's (c, h, w) order, Layout 'chw') has its rows permuted to that
order (convert.flatten_rows_nhwc_to_nchw), so no permute is needed in forward.
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...layouts import PLAIN, Layout
from ...model.description import Layer
from .code import EMITTERS, _Piece
from .source import activated, shape_text


@EMITTERS.register("dense", takes=("plain", "chw"))
def dense(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Linear on the last axis, activation= in the same line; its rows in (c, h, w) order after a flatten of a map."""
    n_in, units = shape[-1], opts["units"]
    kernel = np.asarray(layer.weights["kernel"])
    fs = layout.feature if layout.kind == "chw" else None
    state = {"weight": convert.dense_to_torch(kernel if fs is None else convert.flatten_rows_nhwc_to_nchw(kernel, fs))}
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        k = convert.dense_from_torch(a["weight"])
        w = {"kernel": k if fs is None else convert.flatten_rows_nchw_to_nhwc(k, fs)}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    out = ("B", *shape[1:-1], units)
    init = f"nn.Linear({n_in}, {units}{'' if opts['use_bias'] else ', bias=False'})"
    if fs is not None:
        init += "  # its rows in (c, h, w) order: the flatten before it sees NCHW"
    return _Piece(init, [f"x = {activated(opts['activation'], 'self.{a}(x)', len(shape))}  # {shape_text(out)}"], state, back, out, PLAIN)


__all__ = ["dense"]
