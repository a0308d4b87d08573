"""nn.Conv2d and nn.Conv1d: zero padding ('same', 'valid' or explicit), strides, dilation, groups; and
`depthwise_conv2d`, which torch has no layer of its own for.

nn.Conv2d reads an NCHW map (the description's image is NHWC); its kernel becomes HWIO through impls/convert.py
(oihw_to_hwio). nn.Conv1d reads a (B, C, L) map, the description's (B, L, C): padding int, 'same' or 'valid', zeros
only; its (O, C/g, K) kernel becomes (K, C/g, O).
"""

from __future__ import annotations

from typing import Any

from ... import convert
from ...contract.spec import same_pads
from ...layouts import Layout
from .context import REGISTRY, Node, Step, _Ctx, _explicit, _image_input, _map_input, _pair, _step, nn

REGISTRY.absent("depthwise_conv2d", "torch.nn has no depthwise convolution of its own: torch users write "
                                    "nn.Conv2d(C, C * m, k, groups=C), which imports as a grouped conv2d "
                                    "(groups=C)")  # fmt: skip


REGISTRY.absent("separable_conv2d", "torch has no separable convolution layer: a grouped nn.Conv2d (one group per "
                                    "channel) then a 1x1 nn.Conv2d import as depthwise_conv2d and conv2d")  # fmt: skip

@REGISTRY.register(nn.Conv2d, kinds=("conv2d",))
def _conv2d(ctx: _Ctx, node: Node, m: Any) -> Step:
    _, _, H, W = _image_input(ctx, node)
    if m.padding_mode != "zeros":
        raise ctx.refuse(node, f"padding_mode={m.padding_mode!r}; the description pads with zeros only")
    kh, kw = _pair(m.kernel_size)
    dil, stride = _pair(m.dilation), _pair(m.stride)
    if m.padding == "same":  # torch's 'same' (stride 1): total (k - 1) * d, the odd pixel after
        (t, b), (l, r) = same_pads(H, (kh - 1) * dil[0] + 1, 1), same_pads(W, (kw - 1) * dil[1] + 1, 1)
    elif m.padding == "valid":
        t = b = l = r = 0
    else:
        (t, l) = _pair(m.padding)
        b, r = t, l
    opts = {"filters": int(m.out_channels), "kernel_size": [kh, kw], "strides": stride, "padding": _explicit((t, b, l, r)),
            "dilation": dil, "groups": int(m.groups), "use_bias": m.bias is not None}  # fmt: skip
    w = {"kernel": convert.oihw_to_hwio(ctx.array(m.weight))}
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return _step(ctx, node, "conv2d", opts, w, Layout("nchw"))



@REGISTRY.register(nn.Conv1d, kinds=("conv1d",), reads="ncw")
def _conv1d(ctx: _Ctx, node: Node, m: Any) -> Step:
    _, _, L = _map_input(ctx, node, "ncw", "batched (B, C, L) map")
    if m.padding_mode != "zeros":
        raise ctx.refuse(node, f"padding_mode={m.padding_mode!r}; the description pads with zeros only")
    (k,), (d,), (st,) = m.kernel_size, m.dilation, m.stride
    if m.padding == "same":  # torch's 'same' (stride 1): total (k - 1) * d, the odd pad after
        left, right = same_pads(L, (k - 1) * d + 1, 1)
    elif m.padding == "valid":
        left = right = 0
    else:
        left = right = int(m.padding[0])
    padding = "valid" if not (left or right) else [int(left), int(right)]
    opts = {"filters": int(m.out_channels), "kernel_size": int(k), "strides": int(st), "padding": padding,
            "dilation": int(d), "groups": int(m.groups), "use_bias": m.bias is not None}  # fmt: skip
    w = {"kernel": ctx.array(m.weight).transpose(2, 1, 0)}  # (O, C/g, K) -> (K, C/g, O)
    if m.bias is not None:
        w["bias"] = ctx.array(m.bias)
    return _step(ctx, node, "conv1d", opts, w, Layout("ncw"))

