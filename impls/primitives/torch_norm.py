"""torch from primitives: local response normalization across the last (channel) axis, written with pad, unfold and
pow (not F.local_response_norm: that is the torch port's, and it pads its window torch's own way)."""

from __future__ import annotations

from typing import Any

from .torch_core import torch


def lrn(x: Any, size: int, alpha: float, beta: float, bias: float, before: int) -> Any:
    sq = torch.nn.functional.pad(x * x, (before, size - 1 - before))  # the last axis: zeros past either end
    s = sq.unfold(-1, size, 1).sum(-1)
    return x / torch.pow(bias + (alpha / size) * s, beta)


__all__ = ["lrn"]
