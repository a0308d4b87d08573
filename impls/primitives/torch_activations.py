"""The torch voice's issue-24 activations from primitives (clamp, where, sigmoid, tanh, erf), no nn.functional
activation: relu6, hard_sigmoid(alpha, beta), hard_swish, silu, gelu (erf), gelu_tanh, leaky_relu, clip. Gradients are
autograd's. Re-exported by torch_impl.py."""

from __future__ import annotations

import math
from typing import Any

from .torch_core import torch


def relu6(x: Any) -> Any:
    return torch.clamp(x, 0.0, 6.0)


def hard_sigmoid(x: Any, alpha: float = 1 / 6, beta: float = 0.5) -> Any:
    return torch.clamp(x * alpha + beta, 0.0, 1.0)


def hard_swish(x: Any) -> Any:
    return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


def silu(x: Any) -> Any:
    return x * torch.sigmoid(x)


def gelu(x: Any) -> Any:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x: Any) -> Any:
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def leaky_relu(x: Any, negative_slope: float) -> Any:
    return torch.where(x > 0, x, x * negative_slope)


def clip(x: Any, lo: float | None, hi: float | None) -> Any:
    return torch.clamp(x, lo, hi)


__all__ = ["clip", "gelu", "gelu_tanh", "hard_sigmoid", "hard_swish", "leaky_relu", "relu6", "silu"]
