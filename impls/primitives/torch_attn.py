"""Attention's two ops in torch (issue 25): torch.matmul, and masked scores by torch.where (no F.scaled_dot_product_
attention, no nn.MultiheadAttention: those are what the ports and importers meet)."""

from __future__ import annotations

from typing import Any

from .torch_core import torch


def matmul(a: Any, b: Any) -> Any:
    return torch.matmul(a, b)


def mask_scores(s: Any, key_mask: Any, causal: bool) -> Any:
    """-inf where a query may not attend: keys at padded steps (key_mask (B, Tk) bool, True where valid) and, when
    causal, keys after the query."""
    tq, tk = int(s.shape[-2]), int(s.shape[-1])
    keep = torch.ones((1, 1, tq, tk), dtype=torch.bool, device=s.device)
    if causal:
        keep = keep & torch.tril(torch.ones((tq, tk), dtype=torch.bool, device=s.device))
    if key_mask is not None:
        keep = keep & torch.as_tensor(key_mask, device=s.device).bool()[:, None, None, :]
    return torch.where(keep, s, torch.full_like(s, float("-inf")))



def prepend_token(x: Any, token: Any) -> Any:
    """A (1, 1, D) token before every row of x (B, T, D): torch.cat of the token expanded over the batch, then x."""
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


__all__ = ["mask_scores", "matmul", "prepend_token"]
