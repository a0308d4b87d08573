"""The Flax voice's vector-Jacobian products: jax.vjp over flax.linen's layers (impls/builtin/flax_layers.py) with the
layers' own parameters as primals, read back to canonical through impls/convert.py (gru_grads_from_flax: a
folded bias's gradient goes to both b_x and b_h of its gate). The loss is optax.softmax_cross_entropy, the JAX
ecosystem's own. Re-exported by flax_builtin."""

from __future__ import annotations

from typing import Any

from .. import convert, frameworks
from ..contract import spec
from ..contract.spec import GRUWeights
from .flax_layers import _apply, _conv_config, _gru_inputs, _np_tree, _padding, _pool, check_variant

jax = frameworks.load("jax")
optax = frameworks.load("optax")
nn = frameworks.load("flax")
jnp = jax.numpy


def _pull(fn, primals: tuple, cotangent) -> tuple:
    return jax.vjp(fn, *primals)[1](cotangent)


def gru_vjp(x: Any, weights: GRUWeights, variant: str, dy: Any, h0: Any = None, dh_T: Any = None) -> dict[str, Any]:
    """Autograd through nn.RNN(nn.GRUCell); the cell's gradients back to W, U, b_x, b_h by convert.gru_grads_from_flax."""
    check_variant(variant)
    B, T, _, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    params, h = _gru_inputs(x, weights, h0)
    dy = jnp.zeros((B, T, H), x.dtype) if dy is None else jnp.asarray(dy, x.dtype)
    dh = jnp.zeros((B, H), x.dtype) if dh_T is None else jnp.asarray(dh_T, x.dtype)
    gp, gx, gh = _pull(_apply("gru"), (params, x, h), (dy, dh))
    w = convert.gru_grads_from_flax(_np_tree(gp))
    return {"x": gx, "h0": gh} | {k: jnp.asarray(getattr(w, k)) for k in ("W", "U", "b_x", "b_h")}


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
               groups: int = 1) -> dict[str, Any]:  # fmt: skip
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    params = {"kernel": jnp.asarray(kernel, x.dtype), "bias": jnp.asarray(bias, x.dtype)}
    gp, gx = _pull(_apply("conv2d", *_conv_config(g, padding)), (params, x), jnp.asarray(dy, x.dtype))
    return {"x": gx, "kernel": gp["kernel"], "bias": gp["bias"]}  # Flax's kernel is HWIO: canonical already


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> dict[str, Any]:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    return {"x": _pull(_pool("max", g.pool, g.stride, _padding(padding, g.pads)), (x,), jnp.asarray(dy, x.dtype))[0]}


def avg_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid",
                   count_include_pad: bool = False) -> dict[str, Any]:  # fmt: skip
    flag = spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    fn = _pool("avg", g.pool, g.stride, _padding(padding, g.pads), flag)
    out_dtype = jax.eval_shape(fn, x).dtype  # float64 where Flax promotes (flax_builtin.AVG_POOL_PROMOTES)
    return {"x": _pull(fn, (x,), jnp.asarray(dy, out_dtype))[0].astype(x.dtype)}


def dense_vjp(x: Any, kernel: Any, bias: Any, dy: Any) -> dict[str, Any]:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    params = {"kernel": jnp.asarray(kernel, x.dtype), "bias": jnp.asarray(bias, x.dtype)}
    gp, gx = _pull(_apply("dense", int(kernel.shape[1])), (params, x), jnp.asarray(dy, x.dtype))
    return {"x": gx, "kernel": gp["kernel"], "bias": gp["bias"]}


def relu_vjp(x: Any, dy: Any) -> dict[str, Any]:
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    return {"x": _pull(nn.relu, (x,), jnp.asarray(dy, x.dtype))[0]}


def _check_xent(logits: Any, onehot: Any) -> None:
    ls, os_ = tuple(int(d) for d in logits.shape), tuple(int(d) for d in onehot.shape)
    if ls != os_ or len(ls) != 2:
        raise spec.ShapeError(f"softmax_cross_entropy needs logits and onehot of the same (B, classes) shape: "
                              f"logits.shape={ls}, onehot.shape={os_}")  # fmt: skip


@jax.jit
def _xent(logits, onehot):
    return jnp.mean(optax.softmax_cross_entropy(logits, onehot))


def softmax_cross_entropy(logits: Any, onehot: Any) -> Any:
    """optax.softmax_cross_entropy, averaged over the batch."""
    _check_xent(logits, onehot)
    return _xent(logits, jnp.asarray(onehot, logits.dtype))


def softmax_cross_entropy_vjp(logits: Any, onehot: Any) -> dict[str, Any]:
    _check_xent(logits, onehot)
    return {"logits": jax.grad(_xent)(logits, jnp.asarray(onehot, logits.dtype))}
