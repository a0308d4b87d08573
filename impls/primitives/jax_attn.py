"""Attention's two ops in JAX (issue 25): jnp.matmul, and masked scores by jnp.where (no flax.linen attention: that
is the Flax port's)."""

from __future__ import annotations

from typing import Any

from .jax_core import jnp


def matmul(a: Any, b: Any) -> Any:
    return jnp.matmul(a, b)


def mask_scores(s: Any, key_mask: Any, causal: bool) -> Any:
    """-inf where a query may not attend: keys at padded steps (key_mask (B, Tk) bool, True where valid) and, when
    causal, keys after the query."""
    tq, tk = int(s.shape[-2]), int(s.shape[-1])
    keep = jnp.ones((1, 1, tq, tk), dtype=bool)
    if causal:
        keep = keep & jnp.tril(jnp.ones((tq, tk), dtype=bool))
    if key_mask is not None:
        keep = keep & jnp.asarray(key_mask, dtype=bool)[:, None, None, :]
    return jnp.where(keep, s, jnp.array(-jnp.inf, s.dtype))



def prepend_token(x: Any, token: Any) -> Any:
    """A (1, 1, D) token before every row of x (B, T, D): jnp.concatenate of the token broadcast over the batch."""
    return jnp.concatenate([jnp.broadcast_to(token, (x.shape[0], 1, x.shape[2])), x], axis=1)


__all__ = ["mask_scores", "matmul", "prepend_token"]
