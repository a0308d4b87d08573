"""The conv options users set, as data: grouped and depthwise convolution, dilation, explicit (asymmetric)
padding, average pooling with and without counting padded cells, max pooling with explicit pads.

Forward and vector-Jacobian cases in the shape of verify/cases.py (OpCase; ids such as
`conv2d-keras-float32-B1H8W7C3K3x3O6-s2-same-d1-g3`). Every case has C_in != C_out or a channel
multiplier, non-square images and kernels, and asymmetric pads whose top differs from their left, so a
swapped axis, a swapped pad side or a wrong group split changes the numbers. A voice that declares it
cannot compute a case (impls/contract/limits.py) is left out of the matrix and checked to refuse it instead.
"""

from __future__ import annotations

from impls.contract.spec import check_conv2d, check_pool2d, init_conv, padding_label, random_array
from verify.cases import OpCase, _st

# (B, H, W, C, KH, KW, O, stride, padding, dilation, groups)
CONV_OPTION_SIZES = [
    (2, 7, 8, 4, 3, 2, 6, 1, "valid", 1, 2),  # grouped, 2 input and 3 output channels per group
    (1, 8, 7, 3, 3, 3, 6, 2, "same", 1, 3),  # depthwise, channel multiplier 2, TF's asymmetric 'same'
    (2, 9, 8, 4, 3, 2, 4, 1, "same", (2, 1), 4),  # depthwise, multiplier 1, dilated along H only
    (1, 8, 9, 2, 3, 3, 3, 1, ((2, 0), (1, 3)), 2, 1),  # dilation 2 with explicit asymmetric pads
    (2, 9, 10, 4, 3, 2, 4, (2, 3), ((1, 2), (0, 1)), (1, 2), 2),  # stride, dilation, groups, pads together
    (1, 7, 6, 3, 3, 3, 2, 2, ((1, 0), (2, 1)), 1, 1),  # explicit pads: top 1, bottom 0, left 2, right 1
    (1, 6, 5, 2, 3, 3, 4, 1, ((1, 1), (2, 2)), 1, 1),  # symmetric explicit pads (a layer's own padding)
]

# (B, H, W, C, pool, stride, padding, count_include_pad)
AVG_POOL_SIZES = [
    (2, 6, 8, 3, 2, None, "valid", False),
    (2, 7, 9, 3, 3, 2, "same", False),  # TensorFlow's rule: the padded cells are not counted
    (2, 7, 9, 3, 3, 2, "same", True),  # torch.nn.AvgPool2d's default: they are
    (1, 9, 8, 2, 3, 2, ((1, 1), (1, 1)), True),  # symmetric pads within half the window: the layer's own padding
    (1, 9, 8, 2, 3, 2, ((1, 1), (1, 1)), False),
    (1, 5, 7, 4, (2, 3), 1, ((1, 0), (0, 2)), True),  # asymmetric explicit pads
    (1, 5, 7, 4, (2, 3), 1, ((1, 0), (0, 2)), False),
    (1, 5, 6, 2, 2, 1, "same", False),  # stride 1: one extra row and column, after
]

# (B, H, W, C, pool, stride, padding)
MAX_POOL_PAD_SIZES = [
    (1, 7, 8, 3, 3, 2, ((1, 1), (0, 2))),
    (2, 6, 6, 2, 2, 1, ((1, 0), (1, 0))),
]


def conv_label(B, H, W, C, KH, KW, O, stride, padding, dilation, groups) -> str:
    d = f"d{dilation}" if isinstance(dilation, int) else f"d{dilation[0]}x{dilation[1]}"
    return f"B{B}H{H}W{W}C{C}K{KH}x{KW}O{O}-{_st(stride)}-{padding_label(padding)}-{d}-g{groups}"


def pool_label(B, H, W, C, pool, stride, padding, count_include_pad=None) -> str:
    p = f"p{pool}" if isinstance(pool, int) else f"p{pool[0]}x{pool[1]}"
    inc = "" if count_include_pad is None else ("-incpad" if count_include_pad else "-excpad")
    return f"B{B}H{H}W{W}C{C}-{p}-{_st(stride) if stride else 'sNone'}-{padding_label(padding)}{inc}"


def _conv_cases(B, H, W, C, KH, KW, O, stride, padding, dilation, groups, seed) -> tuple[OpCase, OpCase]:
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    g = check_conv2d((B, H, W, C), (KH, KW, C // groups, O), (O,), **opts)

    def make():
        k = init_conv(KH, KW, C, O, seed + 1, groups=groups)
        return {"x": random_array((B, H, W, C), seed), "kernel": k.kernel, "bias": k.bias,
                "dy": random_array((B, g.OH, g.OW, O), seed + 2)}  # fmt: skip

    label = conv_label(B, H, W, C, KH, KW, O, stride, padding, dilation, groups)
    fwd = OpCase("conv2d", label, make, lambda m, a: m.conv2d(a["x"], a["kernel"], a["bias"], **opts), options=opts)
    vjp = OpCase("conv2d_vjp", label, make, lambda m, a: m.conv2d_vjp(a["x"], a["kernel"], a["bias"], a["dy"], **opts),
                 options=opts)  # fmt: skip
    return fwd, vjp


def _pool_cases(op, B, H, W, C, pool, stride, padding, seed, **flag) -> tuple[OpCase, OpCase]:
    opts = {"pool": pool, "stride": stride, "padding": padding, **flag}
    g = check_pool2d((B, H, W, C), pool, stride, padding)

    def make():
        return {"x": random_array((B, H, W, C), seed), "dy": random_array((B, g.OH, g.OW, C), seed + 1)}

    label = pool_label(B, H, W, C, pool, stride, padding, flag.get("count_include_pad"))
    fwd = OpCase(op, label, make, lambda m, a: getattr(m, op)(a["x"], **opts), options=opts)
    vjp = OpCase(f"{op}_vjp", label, make, lambda m, a: getattr(m, f"{op}_vjp")(a["x"], a["dy"], **opts), options=opts)
    return fwd, vjp


_CONV = [_conv_cases(*s, seed=2000 + 10 * n) for n, s in enumerate(CONV_OPTION_SIZES)]
_AVG = [_pool_cases("avg_pool2d", *s[:7], seed=2100 + 10 * n, count_include_pad=s[7]) for n, s in enumerate(AVG_POOL_SIZES)]
_MAX = [_pool_cases("max_pool2d", *s, seed=2200 + 10 * n) for n, s in enumerate(MAX_POOL_PAD_SIZES)]

CONV_OPTION_CASES = [f for f, _ in _CONV]
AVG_POOL_CASES = [f for f, _ in _AVG]
MAX_POOL_PAD_CASES = [f for f, _ in _MAX]
OPTION_FORWARD_CASES = CONV_OPTION_CASES + AVG_POOL_CASES + MAX_POOL_PAD_CASES
OPTION_VJP_CASES = [v for _, v in _CONV + _AVG + _MAX]
