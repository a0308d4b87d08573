"""PyTorch from primitives: the contract written with matmul, sigmoid, tanh, maximum, exp, pad, unfold, gather and flip.

No torch.nn layer and no fused op (nn.GRU, F.conv2d, F.max_pool2d, F.linear, F.softmax) appears here:
those are the built-in voice (impls/builtin/torch_builtin.py). Gradients are autograd over these primitives.
Device-agnostic: everything follows x's device ("cpu" or "cuda"); weights move to x's dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import frameworks
from ..contract import spec
from ..contract.spec import GRUWeights, LSTMWeights

torch = frameworks.load("torch")
F = torch.nn.functional  # F.pad only: padding is data movement, not the math under test

NAME = "torch"
FRAMEWORK = "torch"
MODE = "eager"
MODES = ("eager", "torch.compile")

# --------------------------------------------------------------------------- boundary

_TORCH_ONLY = {"bfloat16": torch.bfloat16}  # dtypes NumPy cannot name


def torch_dtype(dtype: Any) -> Any:
    """A NumPy dtype or name ("float32"), "bfloat16", or a torch dtype -> the torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype in _TORCH_ONLY:
        return _TORCH_ONLY[dtype]
    name = np.dtype(dtype).name
    try:
        return getattr(torch, name)
    except AttributeError:
        raise ValueError(f"no torch dtype for {dtype!r}") from None


def asarray(a: Any, dtype: Any = "float64", device: str | None = None) -> Any:
    """A NumPy array (or a tensor) -> a new tensor of `dtype` on `device` (default "cpu")."""
    t = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.array(a))
    return t.to(device=device or "cpu", dtype=torch_dtype(dtype), copy=True)


def to_numpy(a: Any) -> np.ndarray:
    """Tensor -> NumPy on the host; bfloat16 (which NumPy lacks) comes back as float32."""
    if not isinstance(a, torch.Tensor):
        return np.asarray(a)
    a = a.detach()
    if a.dtype == torch.bfloat16:
        a = a.float()
    return a.cpu().numpy()


def synchronize(device: Any = None) -> None:
    """Wait for queued device work; CPU work is synchronous."""
    if device is None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    elif str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


def compile(fn: Callable, mode: str = MODE) -> Callable:
    """fn as it runs in `mode`: itself for "eager", torch.compile(fn) for "torch.compile"."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r} for {NAME}; valid modes: {', '.join(MODES)}")
    return fn if mode == "eager" else torch.compile(fn)


def _like(a: Any, x: Any) -> Any:
    """A weight (NumPy or tensor) as a tensor of x's dtype on x's device."""
    if isinstance(a, torch.Tensor):
        return a.to(device=x.device, dtype=x.dtype)
    return torch.from_numpy(np.asarray(a)).to(device=x.device, dtype=x.dtype)


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


# --------------------------------------------------------------------------- LSTM, embeddings, padded sequences


def lstm(x: Any, weights: LSTMWeights, h0: Any = None, c0: Any = None) -> tuple[Any, Any, Any]:
    """x (B, T, I) -> (y (B, T, H), h_T (B, H), c_T (B, H)). One input GEMM for all steps, then per step the
    recurrent GEMM and the gates (i, f, g, o): c = f * c + i * g, h = o * tanh(c). Zero state unless given."""
    B, T, I, H = spec.check_lstm(x.shape, weights, None if h0 is None else tuple(h0.shape),
                                 None if c0 is None else tuple(c0.shape))
    W, U, b_x, b_h = (_like(a, x) for a in (weights.W, weights.U, weights.b_x, weights.b_h))
    h = x.new_zeros((B, H)) if h0 is None else _like(h0, x)
    c = x.new_zeros((B, H)) if c0 is None else _like(c0, x)
    xp = (x.reshape(B * T, I) @ W + b_x).reshape(B, T, 4 * H)  # x W + b_x, every step at once
    ys = []
    for t in range(T):
        a = xp[:, t] + (h @ U + b_h)
        i, f = torch.sigmoid(a[:, :H]), torch.sigmoid(a[:, H : 2 * H])
        g, o = torch.tanh(a[:, 2 * H : 3 * H]), torch.sigmoid(a[:, 3 * H :])
        c = f * c + i * g
        h = o * torch.tanh(c)
        ys.append(h)
    return torch.stack(ys, dim=1), h, c


def embedding(ids: Any, table: Any) -> Any:
    """ids (B, T) integers -> table rows (B, T, D), a gather (index_select). Ids are checked at the model's
    boundary (Model.check_input)."""
    return torch.index_select(table, 0, ids.reshape(-1).long()).reshape(*ids.shape, table.shape[-1])


def ids_mask(ids: Any) -> Any:
    """Keras' Embedding(mask_zero=True): id 0 is padding. (B, T) bool."""
    return ids != 0


def values_mask(x: Any, value: float) -> Any:
    """Keras' Masking(mask_value): a step is padding when every feature equals the value. (B, T) bool."""
    return torch.any(x != value, dim=-1)


def lengths_of(mask: Any) -> Any:
    """Valid steps per row (B,) int64: the sum alone (the mask was checked post-padded at the model's boundary)."""
    return torch.sum(mask.long(), dim=1)


def time_maps(lengths: Any, T: int) -> tuple[Any, Any, Any, Any]:
    """(valid, hold, rev, nonempty), each (B, T); what they mean is impls/primitives/numpy_seq.py's."""
    t = torch.arange(T, device=lengths.device)[None, :]
    L = lengths.long()[:, None]
    valid = t < L
    hold = torch.clamp(torch.minimum(t, L - 1), min=0)
    rev = torch.where(valid, L - 1 - t, t)
    return valid, hold, rev, (L > 0).expand(-1, T)


def take_steps(x: Any, idx: Any) -> Any:
    """x (B, T, F), idx (B, T') int -> x[b, idx[b, t]] (B, T', F): torch.gather along time."""
    return torch.gather(x, 1, idx[:, :, None].expand(-1, -1, x.shape[2]))


def mask_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * valid.to(x.dtype)[:, :, None]


def reverse_steps(x: Any) -> Any:
    """x (B, T, ...) with its time axis reversed."""
    return torch.flip(x, dims=(1,))


def concat(xs: Any, axis: int = -1) -> Any:
    return torch.cat(list(xs), dim=axis)


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


# --------------------------------------------------------------------------- conv, pool, dense


def _windows(x: Any, kh: int, kw: int, stride: tuple[int, int], oh: int, ow: int, dilation=(1, 1)) -> Any:
    """(B, H, W, C) -> strided, dilated view (B, OH, OW, C, KH, KW)."""
    dh, dw = dilation
    v = x.unfold(1, (kh - 1) * dh + 1, stride[0]).unfold(2, (kw - 1) * dw + 1, stride[1])
    return v[:, :oh, :ow, :, ::dh, ::dw]


def _pad_nhwc(x: Any, pads: tuple[int, int, int, int], value: float = 0.0) -> Any:
    t, b, l, r = pads
    if not any(pads):
        return x
    return F.pad(x, (0, 0, l, r, t, b), value=value)  # pads run from the last axis back


def conv2d(x: Any, kernel: Any, bias: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1, groups: int = 1) -> Any:
    """Cross-correlation as im2col + one (batched, per group) GEMM. NHWC input, HWIO kernel (I = C_in / groups)."""
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    G, Cg, Og, N = g.groups, g.C // g.groups, g.O // g.groups, g.B * g.OH * g.OW
    cols = _windows(_pad_nhwc(x, g.pads), g.KH, g.KW, g.stride, g.OH, g.OW, g.dilation)  # (B, OH, OW, C, KH, KW)
    cols = cols.reshape(g.B, g.OH, g.OW, G, Cg, g.KH, g.KW).permute(3, 0, 1, 2, 5, 6, 4)  # (G, B, OH, OW, KH, KW, Cg)
    cols = cols.reshape(G, N, g.KH * g.KW * Cg)  # rows in HWI order, one matrix per group
    k = _like(kernel, x).reshape(g.KH * g.KW * Cg, G, Og).permute(1, 0, 2)  # (G, KH*KW*Cg, Og)
    y = torch.matmul(cols, k).permute(1, 0, 2).reshape(g.B, g.OH, g.OW, g.O)  # output o = group * Og + o'
    return y + _like(bias, x)


def max_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> Any:
    """Max over windows; padding pads with -inf, so padding never wins."""
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    win = _windows(_pad_nhwc(x, g.pads, float("-inf")), *g.pool, g.stride, g.OH, g.OW)  # (B, OH, OW, C, ph, pw)
    return torch.amax(win, dim=(4, 5))


def avg_pool2d(x: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid", count_include_pad: bool = False) -> Any:
    """Window sums of the zero-padded input over the window size (count_include_pad=True) or over the
    input cells each window covers (False, TensorFlow's rule): the divisor is data, not learned."""
    spec.check_count_include_pad(count_include_pad)
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    sums = torch.sum(_windows(_pad_nhwc(x, g.pads), *g.pool, g.stride, g.OH, g.OW), dim=(4, 5))  # (B, OH, OW, C)
    if count_include_pad:
        return sums / (g.pool[0] * g.pool[1])
    ones = _pad_nhwc(x.new_ones((1, g.H, g.W, 1)), g.pads)  # 1 on input cells, 0 on padding
    return sums / torch.sum(_windows(ones, *g.pool, g.stride, g.OH, g.OW), dim=(4, 5))


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


def _leaf(a: Any, x: Any) -> Any:
    """A fresh leaf of x's dtype/device that requires grad (never the caller's tensor itself)."""
    return _like(a, x).detach().clone().requires_grad_(True)


def _vjp(out: Any, dy: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    grads = torch.autograd.grad(out, list(inputs.values()), grad_outputs=dy, allow_unused=True)
    return {k: (torch.zeros_like(v) if g is None else g) for (k, v), g in zip(inputs.items(), grads)}


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


def conv2d_vjp(x: Any, kernel: Any, bias: Any, dy: Any, stride: Any = 1, padding: Any = "valid", dilation: Any = 1,
               groups: int = 1) -> dict[str, Any]:  # fmt: skip
    g = spec.check_conv2d(x.shape, kernel.shape, bias.shape, stride, padding, dilation, groups)
    spec.check_dy("conv2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.O))
    leaves = {"x": _leaf(x, x), "kernel": _leaf(kernel, x), "bias": _leaf(bias, x)}
    with torch.enable_grad():
        y = conv2d(leaves["x"], leaves["kernel"], leaves["bias"], stride, padding, dilation, groups)
        return _vjp(y, _like(dy, x), leaves)


def max_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid") -> dict[str, Any]:
    g = spec.check_pool2d(x.shape, pool, stride, padding)
    spec.check_dy("max_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    leaves = {"x": _leaf(x, x)}
    with torch.enable_grad():
        return _vjp(max_pool2d(leaves["x"], pool, stride, padding), _like(dy, x), leaves)


def avg_pool2d_vjp(x: Any, dy: Any, pool: Any = 2, stride: Any = None, padding: Any = "valid",
                   count_include_pad: bool = False) -> dict[str, Any]:  # fmt: skip
    g = spec.check_pool2d(x.shape, pool, stride, padding, op="avg_pool2d")
    spec.check_dy("avg_pool2d_vjp", dy.shape, (g.B, g.OH, g.OW, g.C))
    leaves = {"x": _leaf(x, x)}
    with torch.enable_grad():
        return _vjp(avg_pool2d(leaves["x"], pool, stride, padding, count_include_pad), _like(dy, x), leaves)


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
