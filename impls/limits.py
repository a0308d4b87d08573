"""What a built-in layer cannot compute, declared as data, framework-free (pytest reads it at collection).

A voice asked for one of these raises `Refused` with the reason below instead of computing something
else; verify/test_conv_options.py checks that every declared refusal is raised, and the matrix
(verify/cases.py) leaves those (case, voice) pairs out. The primitives voices refuse nothing.
Op names are the forward ones; a `_vjp` asks the same question as its forward.
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


def refusal(impl: str, op: str, **options: Any) -> str | None:
    """The reason `impl` cannot compute `op` with these options, or None."""
    for applies, reason in REFUSALS.get((impl, op.removesuffix("_vjp")), ()):
        if applies(options):
            return reason
    return None


def check(impl: str, op: str, **options: Any) -> None:
    """Raise Refused (naming the options) where `impl` declares it cannot compute `op` so."""
    reason = refusal(impl, op, **options)
    if reason is not None:
        opts = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise Refused(f"{impl} {op}({opts}): {reason}")
