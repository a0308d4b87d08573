"""Attention's two ops in NumPy (issue 25): a batched matrix product and the masking of attention scores.

- matmul(a, b): (..., n, k) @ (..., k, m), the leading axes batched (the heads of every row);
- mask_scores(s, key_mask, causal): s (B, H, Tq, Tk); a score a query may not attend becomes -inf, so its softmax
  weight is exactly 0: keys at padded steps (key_mask (B, Tk) bool, True where valid: the contract's padding mask)
  and, when causal, keys after the query (j > i). Post-padded rows of length >= 1 leave every query a key.
  `keep(...)` is the (B or 1, 1, Tq, Tk) bool of what is attended, the vjp's mask (dL/ds = dy where kept, else 0).
"""

from __future__ import annotations

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)


def keep(key_mask, causal: bool, tq: int, tk: int) -> np.ndarray:
    k = np.ones((1, 1, tq, tk), bool)
    if causal:
        k = k & np.tril(np.ones((tq, tk), bool))[None, None]
    if key_mask is not None:
        k = k & np.asarray(key_mask, bool)[:, None, None, :]
    return k


def mask_scores(s: np.ndarray, key_mask, causal: bool) -> np.ndarray:
    return np.where(keep(key_mask, causal, s.shape[-2], s.shape[-1]), s, -np.inf)



def prepend_token(x: np.ndarray, token: np.ndarray) -> np.ndarray:
    """A (1, 1, D) token before every row of x (B, T, D): (B, T + 1, D), the token first (a class token)."""
    return np.concatenate([np.broadcast_to(token, (x.shape[0], 1, x.shape[2])).astype(x.dtype), x], axis=1)


__all__ = ["keep", "mask_scores", "matmul", "prepend_token"]
