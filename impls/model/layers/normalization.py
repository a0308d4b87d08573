"""BatchNormalization and LayerNormalization on the last (channel) axis.

batch_norm: weights gamma (scale), beta (center) and the state moving_mean, moving_var (no gradient trains them).
- Inference: y = (x - moving_mean) / sqrt(moving_var + epsilon) * gamma + beta.
- Training (forward_train): the batch's mean and biased variance over every axis but the last normalise; then
  moving = momentum * moving + (1 - momentum) * batch, with the batch variance `variance_update` "biased" (Keras: it
  updates with the variance it normalised by) or "unbiased" (torch: n / (n - 1) times it).
  `momentum` is the fraction of the old value kept, Keras' convention (0.99 by default); torch's `momentum=0.1` is the
  fraction of the new one, so torch's m is 1 - m here. epsilon: Keras 1e-3, torch 1e-5. The importers translate each
  framework's defaults into these; the ports translate them back (docs/DESIGN.md, "Normalisation").
layer_norm: over the last axis, y = (x - mean) / sqrt(var + epsilon) * gamma + beta, biased variance; epsilon: Keras
1e-3, torch 1e-5. Keras' `rms_scaling` and other axes are refused by the importers.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import ModelError, ShapeError
from .base import LayerSpec, flag

VARIANCE_UPDATES = ("biased", "unbiased")


def _fraction(kind: str, name: str, v, low_open: bool = True) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or not (0.0 < v < 1.0 if low_open else 0.0 <= v < 1.0):
        raise ModelError(f"{kind}: {name} must be a number in (0, 1), got {v!r}")
    return float(v)


def _eps(kind: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v <= 0:
        raise ModelError(f"{kind}: epsilon must be a number > 0, got {v!r}")
    return float(v)


class _Norm(LayerSpec):
    KEEPS_MASK = True
    DEFAULTS: ClassVar[dict] = {"epsilon": 1e-3, "center": True, "scale": True}

    def validate(self, opts):
        opts["epsilon"] = _eps(self.KIND, opts["epsilon"])
        opts["center"] = flag(self.KIND, "center", opts["center"])
        opts["scale"] = flag(self.KIND, "scale", opts["scale"])
        return opts

    def output_shape(self, opts, in_shape):
        if len(in_shape) < 2:
            raise ShapeError(f"{self.KIND} takes (B, ..., C), got {in_shape}")
        return in_shape

    def _affine_shapes(self, opts, in_shape):
        C = in_shape[-1]
        return {**({"gamma": (C,)} if opts["scale"] else {}), **({"beta": (C,)} if opts["center"] else {})}

    def init(self, opts, in_shape, seed, dtype="float64"):
        g = np.random.default_rng(seed)
        C = in_shape[-1]
        out = {}
        for name in self.weight_shapes(opts, in_shape):
            out[name] = {"gamma": lambda: g.uniform(0.5, 1.5, C), "beta": lambda: g.uniform(-0.5, 0.5, C),
                         "moving_mean": lambda: g.uniform(-0.3, 0.3, C),
                         "moving_var": lambda: g.uniform(0.5, 2.0, C)}[name]().astype(dtype)
        return out

    def op_weights(self, opts, w):
        """The op contract's arrays: gamma and beta always (ones and zeros where the layer has none)."""
        C = next(iter(w.values())).shape[0] if w else None
        out = dict(w)
        if C is not None:
            dt = next(iter(w.values())).dtype
            out.setdefault("gamma", np.ones(C, dt))
            out.setdefault("beta", np.zeros(C, dt))
        return out

    def _affine(self, ops, xhat, w):
        return xhat * w["gamma"] + w["beta"]

    def _affine_grads(self, opts, xhat, dy, axes):
        g = {}
        if opts["scale"]:
            g["gamma"] = np.sum(dy * xhat, axis=axes)
        if opts["center"]:
            g["beta"] = np.sum(dy, axis=axes)
        return g


class BatchNorm(_Norm):
    KIND = "batch_norm"
    OPS = ("rsqrt",)
    STATE = ("moving_mean", "moving_var")
    DEFAULTS: ClassVar[dict] = {**_Norm.DEFAULTS, "momentum": 0.99, "variance_update": "biased"}

    def validate(self, opts):
        opts = super().validate(opts)
        opts["momentum"] = _fraction(self.KIND, "momentum", opts["momentum"], low_open=False)
        if opts["variance_update"] not in VARIANCE_UPDATES:
            raise ModelError(f"batch_norm: variance_update {opts['variance_update']!r} is not one of {VARIANCE_UPDATES}")
        return opts

    def weight_shapes(self, opts, in_shape):
        C = in_shape[-1]
        return {**self._affine_shapes(opts, in_shape), "moving_mean": (C,), "moving_var": (C,)}

    def forward(self, ops, x, opts, w):
        return self._affine(ops, (x - w["moving_mean"]) * ops.rsqrt(w["moving_var"] + opts["epsilon"]), w)

    def vjp(self, x, opts, w, dy):
        full = self.op_weights(opts, w)
        inv = 1.0 / np.sqrt(full["moving_var"] + opts["epsilon"])
        axes = tuple(range(x.ndim - 1))
        return dy * full["gamma"] * inv, self._affine_grads(opts, (x - full["moving_mean"]) * inv, dy, axes)

    def forward_train(self, x, opts, w):
        full = self.op_weights(opts, w)
        axes = tuple(range(x.ndim - 1))
        n = int(np.prod([x.shape[a] for a in axes]))
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        y = (x - mu) / np.sqrt(var + opts["epsilon"]) * full["gamma"] + full["beta"]
        upd = var * n / (n - 1) if opts["variance_update"] == "unbiased" else var
        m = opts["momentum"]
        return y, {"moving_mean": m * w["moving_mean"] + (1 - m) * mu, "moving_var": m * w["moving_var"] + (1 - m) * upd}

    def vjp_train(self, x, opts, w, dy):
        """Through the batch statistics: dx = inv / n (n g - sum g - xhat sum(g xhat)), g = dy gamma."""
        full = self.op_weights(opts, w)
        axes = tuple(range(x.ndim - 1))
        n = int(np.prod([x.shape[a] for a in axes]))
        mu, var = x.mean(axis=axes), x.var(axis=axes)
        inv = 1.0 / np.sqrt(var + opts["epsilon"])
        xhat = (x - mu) * inv
        g = dy * full["gamma"]
        dx = inv / n * (n * g - g.sum(axis=axes) - xhat * (g * xhat).sum(axis=axes))
        return dx, self._affine_grads(opts, xhat, dy, axes)


class LayerNorm(_Norm):
    KIND = "layer_norm"
    OPS = ("mean", "rsqrt")

    def weight_shapes(self, opts, in_shape):
        return self._affine_shapes(opts, in_shape)

    def op_weights(self, opts, w):
        return w  # gamma / beta present or not: forward handles both

    def forward(self, ops, x, opts, w):
        mu = ops.mean(x, (-1,), keepdims=True)
        d = x - mu
        xhat = d * ops.rsqrt(ops.mean(d * d, (-1,), keepdims=True) + opts["epsilon"])
        if "gamma" in w:
            xhat = xhat * w["gamma"]
        return xhat + w["beta"] if "beta" in w else xhat

    def vjp(self, x, opts, w, dy):
        C = x.shape[-1]
        mu = x.mean(axis=-1, keepdims=True)
        inv = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + opts["epsilon"])
        xhat = (x - mu) * inv
        g = dy * w["gamma"] if "gamma" in w else dy
        dx = inv / C * (C * g - g.sum(axis=-1, keepdims=True) - xhat * (g * xhat).sum(axis=-1, keepdims=True))
        return dx, self._affine_grads(opts, xhat, dy, tuple(range(x.ndim - 1)))


BATCH = BatchNorm()
LAYER = LayerNorm()
