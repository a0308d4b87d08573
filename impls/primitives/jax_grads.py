"""The JAX voice's vector-Jacobian products: jax.vjp over the voice's own forwards (jax_core.py, jax_seq.py,
jax_conv.py), each jitted per configuration. Same names and dicts as every voice (DESIGN.md, "Gradients");
re-exported by jax_impl."""

from __future__ import annotations

from typing import Any

from .. import frameworks
from ..contract import spec
from ..contract.spec import GRUWeights
from .jax_conv import _avg_pool2d, _conv2d, _dense, _max_pool2d
from .jax_core import _jit, _like, _relu
from .jax_seq import _gru, _gru_args

jax = frameworks.load("jax")
jnp, lax = jax.numpy, jax.lax

_GRU_NAMES = ("x", "W", "U", "b_x", "b_h", "h0")


def _gru_vjp(x, W, U, b_x, b_h, h0, dy, dh, variant):
    _, pull = jax.vjp(lambda *a: _gru(*a, variant), x, W, U, b_x, b_h, h0)
    return dict(zip(_GRU_NAMES, pull((dy, dh))))


_gru_vjp_jit = _jit(_gru_vjp, "variant")


def gru_vjp(x: Any, weights: GRUWeights, variant: str, dy: Any, h0: Any = None, dh_T: Any = None) -> dict[str, Any]:
    """Cotangents of sum(y * dy) + sum(h_T * dh_T) for x, h0 (zeros when None), W, U, b_x, b_h.
    dy=None (or dh_T=None) means zeros; both None is a ValueError."""
    spec.check_variant(variant)
    B, T, _, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    dy = jnp.zeros((B, T, H), x.dtype) if dy is None else _like(dy, x)
    dh = jnp.zeros((B, H), x.dtype) if dh_T is None else _like(dh_T, x)
    return _gru_vjp_jit(*_gru_args(x, weights, h0), dy, dh, variant=variant)


def chain_vjp(chain, weights: list[dict[str, Any]], x: Any, dy: Any) -> tuple[Any, list[dict[str, Any]]]:
    """jax.vjp of <dy, chain(weights, x)>, jitted once per chain: (dx, the weights' gradients). For any model; dx is
    None where x holds integer token ids (an embedding's input): the pull-back is then over the weights alone.
    The compiled pull-back is kept on the chain itself, not in a module-level cache: a chain holds its model's
    weights, and a cache that outlived it kept every model certify built (torchvision vgg11: 1.2 GiB after the
    jax voice)."""
    x = jnp.asarray(x)
    ids = not jnp.issubdtype(x.dtype, jnp.inexact)
    jitted = chain.__dict__.setdefault("_nnparity_vjps", {})  # compiled once per chain, and freed with it
    fn = jitted.get(ids)
    if fn is None:
        if ids:
            fn = jax.jit(lambda ws, x, dy: (None, jax.vjp(lambda w: chain(w, x), ws)[1](dy)[0]))
        else:
            fn = jax.jit(lambda ws, x, dy: jax.vjp(chain, ws, x)[1](dy)[::-1])
        jitted[ids] = fn
    return fn(weights, x, jnp.asarray(dy) if ids else _like(dy, x))



def _conv_vjp(x, kernel, bias, dy, g):
    _, pull = jax.vjp(lambda x, k, b: _conv2d(x, k, b, g), x, kernel, bias)
    return dict(zip(("x", "kernel", "bias"), pull(dy)))


def _pool_vjp(x, dy, g, count_include_pad=None):
    fn = (lambda x: _max_pool2d(x, g)) if count_include_pad is None else (lambda x: _avg_pool2d(x, g, count_include_pad))
    return {"x": jax.vjp(fn, x)[1](dy)[0]}


def _dense_vjp(x, kernel, bias, dy):
    _, pull = jax.vjp(_dense, x, kernel, bias)
    return dict(zip(("x", "kernel", "bias"), pull(dy)))


def _relu_vjp(x, dy):
    return {"x": jax.vjp(_relu, x)[1](dy)[0]}


def _xent(logits, onehot):
    """Mean over the batch of -sum(onehot * log softmax(logits)); log softmax through a shifted log-sum-exp."""
    m = lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    log_p = logits - (m + jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True)))
    return jnp.mean(-jnp.sum(onehot * log_p, axis=-1))


_conv_vjp_jit = _jit(_conv_vjp, "g")
_pool_vjp_jit = _jit(_pool_vjp, "g", "count_include_pad")
_dense_vjp_jit = _jit(_dense_vjp)
_relu_vjp_jit = _jit(_relu_vjp)
_xent_jit = _jit(_xent)
_xent_vjp_jit = _jit(lambda logits, onehot: {"logits": jax.grad(_xent)(logits, onehot)})


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
               groups: int = 1) -> dict[str, Any]:  # fmt: skip
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    return _conv_vjp_jit(x, _like(kernel, x), _like(bias, x), _like(dy, x), g=g)


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> dict[str, Any]:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _pool_vjp_jit(x, _like(dy, x), g=g)


def avg_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid",
                   count_include_pad: bool = False) -> dict[str, Any]:  # fmt: skip
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return _pool_vjp_jit(x, _like(dy, x), g=g, count_include_pad=flag)


def dense_vjp(x: Any, kernel: Any, bias: Any, dy: Any) -> dict[str, Any]:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    return _dense_vjp_jit(x, _like(kernel, x), _like(bias, x), _like(dy, x))


def relu_vjp(x: Any, dy: Any) -> dict[str, Any]:
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    return _relu_vjp_jit(x, _like(dy, x))


def _check_xent(logits: Any, onehot: Any) -> None:
    ls, os_ = tuple(int(d) for d in logits.shape), tuple(int(d) for d in onehot.shape)
    if ls != os_ or len(ls) != 2:
        raise spec.ShapeError(f"softmax_cross_entropy needs logits and onehot of the same (B, classes) shape: "
                              f"logits.shape={ls}, onehot.shape={os_}")  # fmt: skip


def softmax_cross_entropy(logits: Any, onehot: Any) -> Any:
    _check_xent(logits, onehot)
    return _xent_jit(logits, _like(onehot, logits))


def softmax_cross_entropy_vjp(logits: Any, onehot: Any) -> dict[str, Any]:
    _check_xent(logits, onehot)
    return _xent_vjp_jit(logits, _like(onehot, logits))
