"""The torch port's convolutions: conv2d and depthwise_conv2d as nn.Conv2d on NCHW, conv1d as nn.Conv1d on NCW.

Kernels are OIHW (convert.hwio_to_oihw); a depthwise convolution is nn.Conv2d with groups = C
(convert.depthwise_to_grouped); conv1d's (K, C / groups, O) kernel is torch's (O, C / groups, K). Pads torch's own
symmetric `padding` cannot hold (TensorFlow's 'same' with its odd pad after, causal, unequal explicit pads) are an
F.pad before the layer, in F.pad's order (convert.pads_to_torch). separable_conv2d is nn.Sequential(the depthwise
nn.Conv2d without bias, the pointwise 1x1 nn.Conv2d with the bias), called as self.<a>[0] and self.<a>[1].
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...contract import spec
from ...layouts import Layout
from ...model.description import Layer
from ...model.layers import conv1d as conv1d_layer
from ...model.layers.conv2d import geometry_kwargs
from .code import EMITTERS, _Piece
from .source import act_comment, activated, pad_call, pad_reason, pair_text, shape_text


@EMITTERS.register("conv2d", takes=("nchw",))
def conv2d(layer: Layer, opts: dict, shape: tuple, layout: Layout, depthwise: bool = False) -> _Piece:
    """nn.Conv2d on NCHW; pads its own `padding` cannot hold by F.pad before it; activation= in the same line."""
    c = shape[3]
    groups = c if depthwise else opts["groups"]
    kernel = convert.depthwise_to_grouped(layer.weights["kernel"]) if depthwise else np.asarray(layer.weights["kernel"])
    o = kernel.shape[3]
    g = spec.check_conv2d(shape, kernel.shape, (o,), **geometry_kwargs({**opts, "groups": groups}))
    t, b, l, r = g.pads
    own_pad = t == b and l == r
    args = [str(c), str(o), f"kernel_size={pair_text(opts['kernel_size'])}"]
    if g.stride != (1, 1):
        args.append(f"stride={pair_text(g.stride)}")
    if own_pad and (t or l):
        args.append(f"padding={pair_text((t, l))}")
    if g.dilation != (1, 1):
        args.append(f"dilation={pair_text(g.dilation)}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not opts["use_bias"]:
        args.append("bias=False")
    expr = "self.{a}(x)" if own_pad else "self.{a}(" + pad_call(g.pads, "x") + ")"
    out = ("B", o, g.OH, g.OW)
    comment = shape_text(out) + ("" if own_pad else "; " + pad_reason(opts["padding"])) + act_comment(opts["activation"], 4)
    state = {"weight": convert.hwio_to_oihw(kernel)}
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        k = convert.oihw_to_hwio(a["weight"])
        w = {"kernel": convert.grouped_to_depthwise(k, c) if depthwise else k}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    init = f"nn.Conv2d({', '.join(args)})" + ("  # depthwise: one group per input channel" if depthwise else "")
    return _Piece(init, [f"x = {activated(opts['activation'], expr, 4)}  # {comment}"], state, back, out,
                  Layout("nchw"), not own_pad)  # fmt: skip


@EMITTERS.register("depthwise_conv2d", takes=("nchw",))
def depthwise_conv2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Conv2d with one group per input channel, the depthwise kernel as a grouped one."""
    return conv2d(layer, opts, shape, layout, depthwise=True)


@EMITTERS.register("conv1d", takes=("ncw",), reads_map=True)
def conv1d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """nn.Conv1d on NCW; pads torch's own `padding` cannot hold (TensorFlow's 'same' with its odd pad after, causal,
    unequal explicit pads) by F.pad (left, right) before it."""
    _, length, c = shape
    k, o, groups = opts["kernel_size"], opts["filters"], opts["groups"]
    kernel = np.asarray(layer.weights["kernel"])  # (K, C / groups, O)
    g = spec.check_conv2d((1, 1, length, c), (1, k, c // groups, o), (o,), **conv1d_layer.conv2d_kwargs(opts, length))
    _, _, left, right = g.pads
    own_pad = left == right
    args = [str(c), str(o), f"kernel_size={k}"]
    if opts["strides"] != 1:
        args.append(f"stride={opts['strides']}")
    if own_pad and left:
        args.append(f"padding={left}")
    if opts["dilation"] != 1:
        args.append(f"dilation={opts['dilation']}")
    if groups != 1:
        args.append(f"groups={groups}")
    if not opts["use_bias"]:
        args.append("bias=False")
    expr = "self.{a}(x)" if own_pad else "self.{a}(F.pad(x, " + shape_text((left, right)) + "))"
    out = ("B", o, g.OW)
    why = {"same": "TensorFlow's 'same': the odd pad after", "causal": f"causal: all {left} pads before"}.get(
        opts["padding"] if isinstance(opts["padding"], str) else "", "explicit pads (left, right)")
    comment = shape_text(out) + ("" if own_pad else "; " + why) + act_comment(opts["activation"], 4)
    state = {"weight": kernel.transpose(2, 1, 0).copy()}  # (K, C/g, O) -> torch's (O, C/g, K)
    if opts["use_bias"]:
        state["bias"] = np.asarray(layer.weights["bias"]).copy()

    def back(a):
        w = {"kernel": np.asarray(a["weight"]).transpose(2, 1, 0)}
        if "bias" in a:
            w["bias"] = np.asarray(a["bias"])
        return w

    return _Piece(f"nn.Conv1d({', '.join(args)})", [f"x = {activated(opts['activation'], expr, 4)}  # {comment}"], state,
                  back, out, Layout("ncw"), not own_pad)  # fmt: skip


@EMITTERS.register("separable_conv2d", takes=("nchw",))
def separable_conv2d(layer: Layer, opts: dict, shape: tuple, layout: Layout) -> _Piece:
    """Keras' SeparableConv2D: the depthwise step (strides, padding, dilation; no bias) then the 1x1 pointwise step
    (the bias, the activation), one nn.Sequential of the two nn.Conv2d the other emitters write."""
    dw = conv2d(Layer("depthwise_conv2d", layer.name, {}, {"kernel": layer.weights["depthwise_kernel"]}),
                {**opts, "use_bias": False, "activation": "linear"}, shape, layout, depthwise=True)  # fmt: skip
    mid = (shape[0], dw.shape[2], dw.shape[3], dw.shape[1])
    pw_w = {"kernel": layer.weights["pointwise_kernel"], **({"bias": layer.weights["bias"]} if opts["use_bias"] else {})}
    pw = conv2d(Layer("conv2d", layer.name, {}, pw_w),
                {**opts, "filters": opts["filters"], "kernel_size": [1, 1], "strides": [1, 1], "padding": "valid",
                 "dilation": [1, 1], "groups": 1}, mid, Layout("nchw"))  # fmt: skip
    init = f"nn.Sequential({dw.init.split('  #')[0]}, {pw.init})  # depthwise (one group per channel), then pointwise 1x1"
    lines = [*(ln.replace("self.{a}(", "self.{a}[0](") for ln in dw.lines),
             *(ln.replace("self.{a}(", "self.{a}[1](") for ln in pw.lines)]  # fmt: skip
    state = {**{f"0.{k}": v for k, v in dw.state.items()}, **{f"1.{k}": v for k, v in pw.state.items()}}

    def back(a):
        d = dw.back({k[2:]: v for k, v in a.items() if k.startswith("0.")})
        p = pw.back({k[2:]: v for k, v in a.items() if k.startswith("1.")})
        return {"depthwise_kernel": d["kernel"], "pointwise_kernel": p["kernel"], **({"bias": p["bias"]} if "bias" in p else {})}

    return _Piece(init, lines, state, back, pw.shape, pw.layout, dw.uses_f or pw.uses_f)


__all__ = ["conv1d", "conv2d", "depthwise_conv2d", "separable_conv2d"]
