"""PyTorch from primitives: the contract written with matmul, sigmoid, tanh, maximum, exp, pad, unfold, gather and flip.

No torch.nn layer and no fused op (nn.GRU, F.conv2d, F.max_pool2d, F.linear, F.softmax) appears here:
those are the built-in voice (impls/builtin/torch_builtin.py). Gradients are autograd over these primitives.
Device-agnostic: everything follows x's device ("cpu" or "cuda"); weights move to x's dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..contract import spec
from ..contract.spec import GRUWeights
from .torch_activations import clip, gelu, gelu_tanh, hard_sigmoid, hard_swish, leaky_relu, relu6, silu
from .torch_conv import (
    _pad_nhwc,
    avg_pool2d,
    avg_pool2d_vjp,
    conv2d,
    conv2d_vjp,
    max_pool2d,
    max_pool2d_vjp,
)
from .torch_core import _leaf, _like, _vjp, asarray, synchronize, to_numpy, torch, torch_dtype
from .torch_seq import (
    concat,
    embedding,
    ids_mask,
    lengths_of,
    lstm,
    mask_steps,
    mean_steps,
    reverse_steps,
    take_steps,
    time_maps,
    values_mask,
)
from .torch_norm import lrn  # issue 24's normalization family
from .torch_attn import mask_scores, matmul, prepend_token  # attention's ops (issue 25)


NAME = "torch"
FRAMEWORK = "torch"
MODE = "eager"
MODES = ("eager", "torch.compile")

# --------------------------------------------------------------------------- boundary (dtypes, arrays: torch_core.py)


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as it runs in `mode`: itself for "eager", torch.compile(fn) for "torch.compile"."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for {NAME}; valid modes: {', '.join(MODES)}")
    return fn if mode == "eager" else torch.compile(fn)


# --------------------------------------------------------------------------- activations


def relu(x: Any) -> Any:
    return torch.maximum(x, x.new_zeros(()))


def tanh(x: Any) -> Any:
    return torch.tanh(x)


def sigmoid(x: Any) -> Any:
    return torch.sigmoid(x)


def zero_pad2d(x: Any, pads: tuple[int, int, int, int]) -> Any:
    """NHWC zeros around each image: pads (top, bottom, left, right)."""
    return _pad_nhwc(x, pads)


def softmax(x: Any, axis: int = -1) -> Any:
    e = torch.exp(x - torch.amax(x, dim=axis, keepdim=True))  # shifted: exp never overflows
    return e / torch.sum(e, dim=axis, keepdim=True)


# --------------------------------------------------------------------------- GRU


def gru(x: Any, weights: GRUWeights, variant: str, h0: Any = None) -> tuple[Any, Any]:
    """x (B, T, I) -> (y (B, T, H), h_T (B, H)). One input GEMM for all steps, then per step the
    recurrent GEMM(s) and elementwise gates. reset_after needs one recurrent GEMM per step (h U + b_h);
    the others apply r before the candidate's product, so they take h U_zr, then (r * h) U_h."""
    spec.check_variant(variant)
    B, T, I, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    W, U, b_x, b_h = (_like(a, x) for a in (weights.W, weights.U, weights.b_x, weights.b_h))
    h = x.new_zeros((B, H)) if h0 is None else _like(h0, x)
    if variant == "reset_after":
        xp = (x.reshape(B * T, I) @ W + b_x).reshape(B, T, 3 * H)  # (B, T, 3H), gates z, r, h
    else:  # every gate adds b_x + b_h outside any product: fold both into the input projection
        xp = (x.reshape(B * T, I) @ W + (b_x + b_h)).reshape(B, T, 3 * H)
        U_zr, U_h = U[:, : 2 * H], U[:, 2 * H :]
    ys = []
    for t in range(T):
        xz, xr, xh = xp[:, t, :H], xp[:, t, H : 2 * H], xp[:, t, 2 * H :]  # (B, H) each
        if variant == "reset_after":
            hp = h @ U + b_h  # (B, 3H)
            z = torch.sigmoid(xz + hp[:, :H])
            r = torch.sigmoid(xr + hp[:, H : 2 * H])
            h_tilde = torch.tanh(xh + r * hp[:, 2 * H :])
        else:
            hp = h @ U_zr  # (B, 2H)
            z = torch.sigmoid(xz + hp[:, :H])
            r = torch.sigmoid(xr + hp[:, H:])
            h_tilde = torch.tanh(xh + (r * h) @ U_h)
        if variant == "seed":  # (1 - z) * h (+) r * h~, with a (+) b = (a + b) / 2
            h = ((1.0 - z) * h + r * h_tilde) / 2.0
        elif variant == "chung":
            h = (1.0 - z) * h + z * h_tilde
        else:
            h = z * h + (1.0 - z) * h_tilde
        ys.append(h)
    return torch.stack(ys, dim=1), h


# --------------------------------------------------------------------------- shapes and reductions (issue 18's kinds)


def reshape(x: Any, shape: Any) -> Any:
    """Row-major (C order), as NumPy's: torch.reshape of a contiguous tensor."""
    return torch.reshape(x, tuple(int(d) for d in shape))


def transpose(x: Any, perm: Any) -> Any:
    return torch.permute(x, tuple(int(p) for p in perm))


def mean(x: Any, axes: Any, keepdims: bool = False) -> Any:
    return torch.mean(x, dim=tuple(int(a) for a in axes), keepdim=keepdims)


def amax(x: Any, axes: Any, keepdims: bool = False) -> Any:
    """Its backward splits dy evenly among tied maxima (the reference sends it to the first)."""
    return torch.amax(x, dim=tuple(int(a) for a in axes), keepdim=keepdims)


def rsqrt(x: Any) -> Any:
    return torch.rsqrt(x)


# --------------------------------------------------------------------------- dense (conv and pools: torch_conv.py)


def dense(x: Any, kernel: Any, bias: Any) -> Any:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    return x @ _like(kernel, x) + _like(bias, x)


# --------------------------------------------------------------------------- the seed's 1-D equations


def seed_conv1d(x: Any, w: Any, b: Any) -> Any:
    """Seed section 2.2: y_ij = sum_k w_ik x_i,j+k-1 + b_i per channel i. (B, L, C) -> (B, L-K+1, C)."""
    spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    win = x.unfold(1, int(w.shape[0]), 1)  # (B, L-K+1, C, K)
    return torch.sum(win * _like(w, x).T, dim=-1) + _like(b, x)  # w.T (C, K): taps per channel


def seed_pool1d(y: Any) -> Any:
    """Seed section 2.2: x_ij = max(y_ij, y_i,j+1). (B, L, C) -> (B, L-1, C)."""
    spec.check_seed_pool1d(y.shape)
    return torch.maximum(y[:, :-1, :], y[:, 1:, :])


# --------------------------------------------------------------------------- the seed models


def flatten(x):
    """(B, ...) -> (B, prod(...)), in memory order: for NHWC that is Keras' (h, w, c) order."""
    return x.reshape(x.shape[0], -1)


# --------------------------------------------------------------------------- gradients (autograd)


def chain_vjp(chain: Callable, weights: list[dict[str, Any]], x: Any, dy: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Autograd of <dy, chain(weights, x)>: (dx, the weights' gradients in the same nesting). For any model; dx is
    None where x holds integer token ids (an embedding's input)."""
    ids = not (x.is_floating_point() or x.is_complex())  # integer token ids: no gradient, dx is None
    leaves = {} if ids else {"x": _leaf(x, x)}
    for i, w in enumerate(weights):
        leaves.update({f"{i}/{k}": _leaf(v, v) for k, v in w.items()})
    like = dy if ids and isinstance(dy, torch.Tensor) else x  # dy in the weights' float dtype, not the ids'
    with torch.enable_grad():
        ws = [{k: leaves[f"{i}/{k}"] for k in w} for i, w in enumerate(weights)]
        g = _vjp(chain(ws, x if ids else leaves["x"]), _like(dy, like), leaves)
    return g.get("x"), [{k: g[f"{i}/{k}"] for k in w} for i, w in enumerate(weights)]


def gru_vjp(x: Any, weights: GRUWeights, variant: str, dy: Any, h0: Any = None, dh_T: Any = None) -> dict[str, Any]:
    """Cotangents of sum(y * dy) + sum(h_T * dh_T) for x, h0 (zeros when None), W, U, b_x, b_h.
    dy=None (or dh_T=None) means zeros; both None is a ValueError."""
    spec.check_variant(variant)
    B, _, _, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    leaves = {"x": _leaf(x, x), "h0": _leaf(x.new_zeros((B, H)) if h0 is None else h0, x)}
    leaves |= {k: _leaf(getattr(weights, k), x) for k in ("W", "U", "b_x", "b_h")}
    with torch.enable_grad():
        y, h_T = gru(leaves["x"], GRUWeights(leaves["W"], leaves["U"], leaves["b_x"], leaves["b_h"]), variant, leaves["h0"])
        loss = (0 if dy is None else torch.sum(y * _like(dy, x))) + (0 if dh_T is None else torch.sum(h_T * _like(dh_T, x)))
        return _vjp(loss, None, leaves)


def dense_vjp(x: Any, kernel: Any, bias: Any, dy: Any) -> dict[str, Any]:
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    spec.check_dy("dense_vjp", dy.shape, (*x.shape[:-1], kernel.shape[1]))
    leaves = {"x": _leaf(x, x), "kernel": _leaf(kernel, x), "bias": _leaf(bias, x)}
    with torch.enable_grad():
        return _vjp(dense(leaves["x"], leaves["kernel"], leaves["bias"]), _like(dy, x), leaves)


def relu_vjp(x: Any, dy: Any) -> dict[str, Any]:
    spec.check_dy("relu_vjp", dy.shape, x.shape)
    leaves = {"x": _leaf(x, x)}
    with torch.enable_grad():
        return _vjp(relu(leaves["x"]), _like(dy, x), leaves)


def _check_xent(logits: Any, onehot: Any) -> None:
    if tuple(logits.shape) != tuple(onehot.shape) or len(logits.shape) != 2:
        raise spec.ShapeError(
            f"softmax_cross_entropy needs logits and onehot of the same (B, classes) shape: "
            f"logits.shape={tuple(logits.shape)}, onehot.shape={tuple(onehot.shape)}"
        )


def softmax_cross_entropy(logits: Any, onehot: Any) -> Any:
    """Mean over the batch of -sum(onehot * log softmax(logits)); log softmax via logsumexp."""
    _check_xent(logits, onehot)
    log_p = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    return torch.mean(-torch.sum(_like(onehot, logits) * log_p, dim=-1))


def softmax_cross_entropy_vjp(logits: Any, onehot: Any) -> dict[str, Any]:
    _check_xent(logits, onehot)
    leaves = {"logits": _leaf(logits, logits)}
    with torch.enable_grad():
        return _vjp(softmax_cross_entropy(leaves["logits"], onehot), None, leaves)


__all__ = [
    "clip",
    "gelu",
    "gelu_tanh",
    "hard_sigmoid",
    "hard_swish",
    "leaky_relu",
    "relu6",
    "silu",
    "mask_scores",
    "matmul",
    "prepend_token",
    "FRAMEWORK",
    "MODE",
    "MODES",
    "NAME",
    "amax",
    "asarray",
    "avg_pool2d",
    "avg_pool2d_vjp",
    "chain_vjp",
    "compile",
    "concat",
    "conv2d",
    "conv2d_vjp",
    "dense",
    "dense_vjp",
    "embedding",
    "flatten",
    "gru",
    "gru_vjp",
    "ids_mask",
    "lengths_of",
    "lstm",
    "mask_steps",
    "mean_steps",
    "max_pool2d",
    "max_pool2d_vjp",
    "mean",
    "relu",
    "relu_vjp",
    "reshape",
    "reverse_steps",
    "rsqrt",
    "seed_conv1d",
    "seed_pool1d",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_vjp",
    "synchronize",
    "take_steps",
    "tanh",
    "time_maps",
    "to_numpy",
    "torch_dtype",
    "transpose",
    "values_mask",
    "zero_pad2d",
]  # fmt: skip
