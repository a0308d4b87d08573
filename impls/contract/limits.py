"""What a built-in voice cannot compute, declared as data, framework-free (pytest reads it at collection).

A voice asked for one of these raises `Refused` with the reason below instead of computing something
else; verify/ checks that every declared refusal is raised, and the matrix (verify/cases.py) leaves those
(case, voice, dtype) triples out. The primitives voices refuse nothing. Three kinds:
- REFUSALS: options a layer cannot hold (op names are the forward ones; a `_vjp` asks as its forward);
- DTYPE_REFUSALS: dtypes a runtime has no kernel for (forward and vjp alike);
- GRADIENT_REFUSALS: voices with no gradients at all (every `_vjp`, and the loss that comes with them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .conv_spec import is_explicit, pair


class Refused(NotImplementedError):
    """The voice's framework has no layer for this configuration; the message says why."""


def _strided_and_dilated(o: dict[str, Any]) -> bool:
    return max(pair(o.get("stride", 1), "stride")) > 1 and max(pair(o.get("dilation", 1), "dilation")) > 1


def _explicit(o: dict[str, Any]) -> bool:
    return is_explicit(o.get("padding", "valid"))


REFUSALS: dict[tuple[str, str], tuple[tuple[Callable[[dict[str, Any]], bool], str], ...]] = {
    ("keras", "conv2d"): (
        (_strided_and_dilated, ("keras.layers.Conv2D and DepthwiseConv2D refuse strides > 1 together with "
                               "dilation_rate > 1")),
    ),
    ("keras", "max_pool2d"): (
        (_explicit, ("keras.layers.MaxPooling2D pads only 'valid' or 'same', and ZeroPadding2D's zeros could "
                    "win a max: explicit padding has no Keras layer")),
    ),
    ("keras", "avg_pool2d"): (
        (lambda o: _explicit(o) and not o.get("count_include_pad", False),
         ("keras.layers.AveragePooling2D pads only 'valid' or 'same'; explicit pads through ZeroPadding2D are "
         "counted in the mean, so only count_include_pad=True has a Keras layer")),
    ),
}  # fmt: skip


_ORT_FLOAT_ONLY = ("ONNX Runtime 1.31's CPU kernel for {} is registered for float32 only (measured: GRU raises "
                   "'GRU operator does not support double yet', Conv and AveragePool 'Could not find an "
                   "implementation'); computing it in float32 and widening would be another precision")
DTYPE_REFUSALS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("onnxruntime", "gru"): (("float64",), _ORT_FLOAT_ONLY.format("GRU")),
    ("onnxruntime", "conv2d"): (("float64",), _ORT_FLOAT_ONLY.format("Conv")),
    ("onnxruntime", "avg_pool2d"): (("float64",), _ORT_FLOAT_ONLY.format("AveragePool")),
    ("onnxruntime", "seed_conv1d"): (("float64",), _ORT_FLOAT_ONLY.format("Conv (the depthwise 1-D Conv)")),
}
"""(voice, forward op): (dtypes refused, reason). A whole model is refused where one of its layers' ops is
(the ports say which layer: impls/ports/*.refusal)."""

LAYER_DTYPE_REFUSALS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("onnxruntime", "lstm"): (("float64",), _ORT_FLOAT_ONLY.format("LSTM").replace(
        "GRU raises 'GRU operator does not support double yet'", "LSTM raises 'LSTM operator does not support double yet'")),
}
"""(voice, layer kind): the same, for a kind the voice has no op-level function for (it builds it in its port only):
ONNX Runtime's LSTM, measured in tests/test_port_onnx_seq.py."""

GRADIENT_REFUSALS: dict[str, str] = {
    "onnxruntime": ("an ONNX Runtime InferenceSession computes forward only: gradients need onnxruntime-training "
                    "(a separate build, not installed beside onnxruntime), and ONNX's Gradient operator is a "
                    "preview-training op no inference provider runs"),
}
"""voice: why it has no vector-Jacobian products (nor softmax_cross_entropy, which exists for its vjp)."""


def _needs_gradients(op: str) -> bool:
    return op.endswith("_vjp") or op.startswith("softmax_cross_entropy")


def refusal(impl: str, op: str, dtype: str | None = None, **options: Any) -> str | None:
    """The reason `impl` cannot compute `op` with these options (in `dtype`, when given), or None."""
    if _needs_gradients(op) and impl in GRADIENT_REFUSALS:
        return GRADIENT_REFUSALS[impl]
    forward = op.removesuffix("_vjp")
    for table in (DTYPE_REFUSALS, LAYER_DTYPE_REFUSALS):
        if dtype is not None and str(dtype) in table.get((impl, forward), ((), ""))[0]:
            return table[(impl, forward)][1]
    for applies, reason in REFUSALS.get((impl, forward), ()):
        if applies(options):
            return reason
    return None


def check(impl: str, op: str, dtype: str | None = None, **options: Any) -> None:
    """Raise Refused (naming the options) where `impl` declares it cannot compute `op` so."""
    reason = refusal(impl, op, dtype, **options)
    if reason is not None:
        opts = ", ".join([f"{k}={v!r}" for k, v in options.items()] + ([f"dtype={dtype!s}"] if dtype else []))
        raise Refused(f"{impl} {op}({opts}): {reason}")
