"""The JAX voice's issue-24 activations from primitives (jnp.clip, jnp.where, lax.logistic, jnp.tanh, lax.erf), no
jax.nn activation, each one jitted computation (its parameters static): relu6, hard_sigmoid(alpha, beta), hard_swish,
silu, gelu (erf), gelu_tanh, leaky_relu, clip. Gradients are jax.vjp's. Re-exported by jax_impl.py."""

from __future__ import annotations

import math

from .jax_core import _jit, jnp, lax


def _relu6(x):
    return jnp.clip(x, 0.0, 6.0)


def _hard_sigmoid(x, alpha=1 / 6, beta=0.5):
    return jnp.clip(x * alpha + beta, 0.0, 1.0)


def _hard_swish(x):
    return x * jnp.clip(x + 3.0, 0.0, 6.0) / 6.0


def _silu(x):
    return x * lax.logistic(x)


def _gelu(x):
    return 0.5 * x * (1.0 + lax.erf(x / math.sqrt(2.0)))


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + jnp.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def _leaky_relu(x, negative_slope):
    return jnp.where(x > 0, x, x * negative_slope)


def _clip(x, lo, hi):
    return jnp.clip(x, lo, hi)


relu6 = _jit(_relu6)
hard_sigmoid = _jit(_hard_sigmoid, "alpha", "beta")
hard_swish = _jit(_hard_swish)
silu = _jit(_silu)
gelu = _jit(_gelu)
gelu_tanh = _jit(_gelu_tanh)
leaky_relu = _jit(_leaky_relu, "negative_slope")
clip = _jit(_clip, "lo", "hi")

__all__ = ["clip", "gelu", "gelu_tanh", "hard_sigmoid", "hard_swish", "leaky_relu", "relu6", "silu"]
