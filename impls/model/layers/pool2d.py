"""MaxPool2D and AvgPool2D on NHWC: pool_size, strides (default: the pool size), padding (valid, same or explicit);
average pooling counts padded cells only when count_include_pad is true (Keras' 'same' does not count them).

ceil_mode (torch's and ONNX's, issue 24): the output size is ceil((n + pads - k) / s) + 1 instead of floor, less one
where the last window would start past the input and its leading pad (torch's rule, ONNX's "windows that would start
in the right padded region are ignored"). The cells the last window reaches past the trailing pad (the overhang)
count for nothing: a max never sees them; an average divides by the cells of the window inside the input
(count_include_pad false) or inside the input and its explicit pads (true, torch's divisor; never the overhang).
`lowered` writes a ceil_mode pool as floor pools: the overhang is more trailing pad, and an average that counts the
explicit pads zero-pads them first and counts no pad. ceil_mode takes 'valid' or explicit pads, not 'same'."""

from __future__ import annotations

from typing import ClassVar

from ...contract import spec
from ...primitives import numpy_impl as ref
from ..errors import ModelError, ShapeError
from .base import LayerSpec, flag, int_pair, padding_option, spec_padding


def pool_kwargs(opts) -> dict:
    """The floor pool's pool, stride and padding as impls.contract.spec takes them (for a ceil_mode pool: `lowered`'s)."""
    return {"pool": tuple(opts["pool_size"]), "stride": tuple(opts["strides"]), "padding": spec_padding(opts["padding"])}


def ceil_size(n: int, k: int, s: int, before: int, after: int) -> int:
    """torch's ceil_mode output length: ceil((n + before + after - k) / s) + 1, less one where the last window would
    start at or past n + before (in the input's trailing pad or beyond)."""
    out = -(-(n + before + after - k) // s) + 1
    if (out - 1) * s >= n + before:
        out -= 1
    return out


def overhang(opts: dict, in_shape: tuple) -> tuple[int, int]:
    """How far a ceil_mode pool's last windows reach past the trailing pads (rows, columns); (0, 0) without ceil_mode."""
    if not opts.get("ceil_mode"):
        return 0, 0
    (t, b), (l, r) = [[0, 0], [0, 0]] if opts["padding"] == "valid" else opts["padding"]
    extra = []
    for n, k, s, before, after in zip(in_shape[1:3], opts["pool_size"], opts["strides"], (t, l), (b, r), strict=True):
        out = ceil_size(n, k, s, before, after)
        if out < 1:
            raise ShapeError(f"pool window {opts['pool_size']} larger than the padded input {tuple(in_shape)}")
        extra.append(max(0, (out - 1) * s + k - (n + before + after)))
    return extra[0], extra[1]


def lowered(opts: dict, in_shape: tuple) -> tuple[tuple[int, int, int, int] | None, dict]:
    """A pool as floor pools compute it: (zero pads to put first or None, the floor pool's options). Without
    ceil_mode: (None, opts). With it, the overhang is more trailing pad (-inf for a max, uncounted for an average);
    an average that counts its explicit pads gets them as zeros first and then counts none."""
    if not opts.get("ceil_mode"):
        return None, opts
    eh, ew = overhang(opts, in_shape)
    (t, b), (l, r) = [[0, 0], [0, 0]] if opts["padding"] == "valid" else opts["padding"]
    floor = {k: v for k, v in opts.items() if k != "ceil_mode"}
    if opts.get("count_include_pad"):  # it counts the input and its explicit pads, never the overhang
        if t or b or l or r:
            return (t, b, l, r), {**floor, "padding": [[0, eh], [0, ew]], "count_include_pad": False}
        return None, {**floor, "padding": [[0, eh], [0, ew]], "count_include_pad": False}
    return None, {**floor, "padding": [[t, b + eh], [l, r + ew]]}


class MaxPool2D(LayerSpec):
    KIND = "max_pool2d"
    OPS = ("max_pool2d",)
    DEFAULTS: ClassVar[dict] = {"pool_size": [2, 2], "strides": None, "padding": "valid", "ceil_mode": False}

    def validate(self, opts):
        opts["pool_size"] = int_pair(self.KIND, "pool_size", opts["pool_size"])
        opts["strides"] = opts["pool_size"] if opts["strides"] is None else int_pair(self.KIND, "strides", opts["strides"])
        opts["padding"] = padding_option(self.KIND, opts["padding"])
        opts["ceil_mode"] = flag(self.KIND, "ceil_mode", opts["ceil_mode"])
        if opts["ceil_mode"] and opts["padding"] == "same":
            raise ModelError(f"{self.KIND}: ceil_mode takes padding 'valid' or explicit pads, not 'same'")
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) != 4:
            raise ShapeError(f"{self.KIND} takes NHWC (B, H, W, C), got {in_shape}")
        pre, floor = lowered(opts, in_shape)
        if pre is not None:
            t, b, l, r = pre
            in_shape = (in_shape[0], in_shape[1] + t + b, in_shape[2] + l + r, in_shape[3])
        g = spec.check_pool2d(in_shape, **pool_kwargs(floor), op=self.KIND)
        return (g.B, g.OH, g.OW, g.C)

    def forward(self, ops, x, opts, w):
        return ops.max_pool2d(x, **pool_kwargs(lowered(opts, tuple(x.shape))[1]))

    def vjp(self, x, opts, w, dy):
        return ref.max_pool2d_vjp(x, dy, **pool_kwargs(lowered(opts, x.shape)[1]))["x"], {}


class AvgPool2D(MaxPool2D):
    KIND = "avg_pool2d"
    OPS = ("avg_pool2d", "zero_pad2d")  # zero_pad2d: a ceil_mode pool that counts its explicit pads (`lowered`)
    DEFAULTS: ClassVar[dict] = {**MaxPool2D.DEFAULTS, "count_include_pad": False}

    def validate(self, opts):
        opts = super().validate(opts)
        opts["count_include_pad"] = flag(self.KIND, "count_include_pad", opts["count_include_pad"])
        return opts

    def forward(self, ops, x, opts, w):
        pre, floor = lowered(opts, tuple(int(d) for d in x.shape))
        if pre is not None:
            x = ops.zero_pad2d(x, pre)
        return ops.avg_pool2d(x, **pool_kwargs(floor), count_include_pad=floor["count_include_pad"])

    def vjp(self, x, opts, w, dy):
        pre, floor = lowered(opts, x.shape)
        xp = x if pre is None else ref.zero_pad2d(x, pre)
        dx = ref.avg_pool2d_vjp(xp, dy, **pool_kwargs(floor), count_include_pad=floor["count_include_pad"])["x"]
        if pre is not None:
            t, b, l, r = pre
            dx = dx[:, t : dx.shape[1] - b, l : dx.shape[2] - r, :]
        return dx, {}


MAX = MaxPool2D()
AVG = AvgPool2D()
