"""Activation: one of ACTIVATIONS (also a layer's `activation=`) or a parameterised one, as a layer.

The names and their one function each (issue 24 added all but the first five):
- linear (the identity), relu, softmax (the last axis), tanh, sigmoid;
- relu6: min(max(x, 0), 6) (torch nn.ReLU6 / nn.Hardtanh(0, 6), Keras ReLU(max_value=6) and "relu6", ONNX Clip(0, 6));
- hard_sigmoid: max(0, min(1, alpha x + beta)), options alpha and beta (an activation layer's; 1/6 and 1/2 unless
  given, which is torch's nn.Hardsigmoid and Keras 3's hard_sigmoid, relu6(x + 3) / 6; ONNX's HardSigmoid defaults
  to alpha 0.2 and Keras 2 meant 0.2 x + 0.5: an importer states them);
- hard_swish: x relu6(x + 3) / 6 (torch nn.Hardswish, Keras hard_silu / hard_swish, ONNX HardSwish);
- silu: x sigmoid(x) (torch nn.SiLU, Keras silu / swish);
- gelu: x (1 + erf(x / sqrt 2)) / 2, the exact one (torch approximate='none', keras.activations.gelu's default, ONNX
  Gelu approximate="none"); gelu_tanh: x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2 (torch approximate='tanh',
  keras.ops.gelu's default, ONNX approximate="tanh"): two names, so that no port writes one for the other;
- leaky_relu (a layer only; option negative_slope, required: torch's default 0.01, Keras LeakyReLU's 0.3,
  keras.activations.leaky_relu's 0.2 and ONNX's 0.01 differ, so the importer states it): x > 0 ? x : slope x;
- clip (a layer only; options min and max, a number or null for none, min <= max): min(max(x, min), max).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...primitives import numpy_impl as ref
from ..errors import ModelError
from .base import ACTIVATION_OPS, ACTIVATIONS, PARAMETERISED, LayerSpec

LAYER_ACTIVATIONS = (*ACTIVATIONS, *PARAMETERISED)
PARAMS: dict[str, dict[str, Any]] = {
    "hard_sigmoid": {"alpha": 1 / 6, "beta": 0.5},
    "leaky_relu": {"negative_slope": None},  # None: required
    "clip": {"min": None, "max": None},  # both required keys; each a number or None (no bound), not both None
}
"""Each parameterised activation's options and defaults (None: the option must be given)."""


def params(name: str, opts: dict[str, Any] | None = None) -> dict[str, Any]:
    """The activation's parameters from a layer's options (its defaults where a name alone is given)."""
    opts = opts or {}
    return {k: opts.get(k, d) for k, d in PARAMS.get(name, {}).items()}


def _number(name: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not math.isfinite(value):
        raise ModelError(f"activation {name}: option {key} must be a finite number, got {value!r}")
    return float(value)


def check_params(name: str, opts: dict[str, Any]) -> dict[str, Any]:
    """The activation layer's options validated: the name, and exactly its own parameters."""
    if name not in LAYER_ACTIVATIONS:
        raise ModelError(f"activation {name!r} is not one of {LAYER_ACTIVATIONS}")
    own = PARAMS.get(name, {})
    extra = sorted(set(opts) - {"activation"} - set(own))
    if extra:
        raise ModelError(f"activation {name}: unknown options {extra}; it takes {sorted(own) or 'none'}")
    out = {"activation": name}
    for key, default in own.items():
        if name == "clip":
            if key not in opts:
                raise ModelError(f"activation clip: missing option {key} (a number, or null for no bound)")
            out[key] = None if opts[key] is None else _number(name, key, opts[key])
        elif key not in opts and default is None:
            raise ModelError(f"activation {name}: missing option {key}")
        else:
            out[key] = _number(name, key, opts.get(key, default))
    if name == "clip":
        if out["min"] is None and out["max"] is None:
            raise ModelError("activation clip: min and max are both null (the identity): give at least one bound")
        if out["min"] is not None and out["max"] is not None and out["min"] > out["max"]:
            raise ModelError(f"activation clip: min {out['min']} > max {out['max']}")
    return out


def apply(ops: Any, name: str, x: Any, opts: dict[str, Any] | None = None) -> Any:
    """`name` over an op-contract backend; linear is the identity; `opts` a layer's options (its parameters)."""
    if name == "linear":
        return x
    if name not in LAYER_ACTIVATIONS:
        raise ModelError(f"activation {name!r} is not one of {LAYER_ACTIVATIONS}")
    p = params(name, opts)
    if name == "clip":
        return ops.clip(x, p["min"], p["max"])
    return getattr(ops, name)(x, **p)


def vjp(name: str, pre: np.ndarray, dy: np.ndarray, opts: dict[str, Any] | None = None) -> np.ndarray:
    """dL/d(pre-activation) for y = name(pre), NumPy reference."""
    if name == "linear":
        return dy
    if name == "relu":
        return ref.relu_vjp(pre, dy)["x"]
    if name == "softmax":
        return ref.softmax_vjp(ref.softmax(pre), dy)
    if name == "tanh":
        return dy * (1.0 - np.tanh(pre) ** 2)
    if name == "sigmoid":
        s = ref.sigmoid(pre)
        return dy * s * (1.0 - s)
    if name in LAYER_ACTIVATIONS:
        p = params(name, opts)
        if name == "clip":
            return ref.clip_vjp(pre, dy, p["min"], p["max"])
        return getattr(ref, f"{name}_vjp")(pre, dy, **p)
    raise ModelError(f"activation {name!r} is not one of {LAYER_ACTIVATIONS}")


class Activation(LayerSpec):
    KIND = "activation"
    OPS = (*ACTIVATION_OPS, "leaky_relu", "clip")
    KEEPS_MASK = True
    REQUIRED = ("activation",)

    def options(self, raw: Any) -> dict[str, Any]:
        raw = dict(raw or {})
        if "activation" not in raw:
            raise ModelError(f"{self.KIND}: missing options ['activation']")
        return check_params(raw["activation"], raw)

    def output_shape(self, opts, in_shape):
        return in_shape

    def forward(self, ops, x, opts, w):
        return apply(ops, opts["activation"], x, opts)

    def vjp(self, x, opts, w, dy):
        return vjp(opts["activation"], x, dy, opts), {}


SPEC = Activation()
