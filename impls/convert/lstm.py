"""The LSTM's weights: canonical <-> torch.nn.LSTM, keras.layers.LSTM, ONNX LSTM and flax.linen.LSTMCell, and their
gradients where a layout folds a bias.

Canonical gate order (i, f, g, o) is torch's and Keras' own (Keras calls g "c"); ONNX stores (i, o, f, c).
"""

from __future__ import annotations

import numpy as np

from ..contract.spec import LSTMWeights, ShapeError
from .common import _np, package

ONNX_LSTM_FROM_CANON = (0, 3, 1, 2)  # ONNX block k holds canonical gate ONNX_LSTM_FROM_CANON[k]: i, o, f, c
_ONNX_LSTM_TO_CANON = (0, 2, 3, 1)  # canonical block k is ONNX block _ONNX_LSTM_TO_CANON[k]


def _blocks4(a: np.ndarray, order) -> np.ndarray:
    H = a.shape[-1] // 4
    return np.concatenate([a[..., g * H : (g + 1) * H] for g in order], axis=-1)


def lstm_to_torch(w: LSTMWeights, suffix: str = "l0") -> dict[str, np.ndarray]:
    """Canonical -> torch.nn.LSTM state of one layer and direction (`suffix` "l0", "l0_reverse", "l1", ...): the
    same gate order, transposed kernels, both biases kept (exact for the forward and for training)."""
    return {f"weight_ih_{suffix}": _np(w.W).T.copy(), f"weight_hh_{suffix}": _np(w.U).T.copy(),
            f"bias_ih_{suffix}": _np(w.b_x).copy(), f"bias_hh_{suffix}": _np(w.b_h).copy()}


def lstm_from_torch(state: dict, suffix: str = "l0") -> LSTMWeights:
    """torch.nn.LSTM state (or its gradients, same layout) -> canonical. A missing bias (bias=False) is zero."""
    wih, whh = _np(state[f"weight_ih_{suffix}"]), _np(state[f"weight_hh_{suffix}"])
    H = whh.shape[1]
    if wih.shape[0] != 4 * H or whh.shape != (4 * H, H):
        raise ShapeError(f"torch LSTM state: weight_ih_{suffix}.shape={wih.shape}, weight_hh_{suffix}.shape={whh.shape} "
                         f"(a proj_size LSTM is not in the contract)")
    zero = np.zeros(4 * H, wih.dtype)
    return LSTMWeights(wih.T.copy(), whh.T.copy(), _np(state.get(f"bias_ih_{suffix}", zero)).copy(),
                       _np(state.get(f"bias_hh_{suffix}", zero)).copy())


def lstm_to_keras(w: LSTMWeights) -> list[np.ndarray]:
    """Canonical -> [kernel, recurrent_kernel, bias] of keras.layers.LSTM: one bias, b_x + b_h. The forward is
    exact; a training step is not (Adam moves one bias where canonical moves two: the certificate says so)."""
    return [_np(w.W).copy(), _np(w.U).copy(), _np(w.b_x) + _np(w.b_h)]


def lstm_from_keras(weights: list) -> LSTMWeights:
    """[kernel, recurrent_kernel, bias] -> canonical: the single bias is b_x, b_h zero (use_bias=False: both zero)."""
    kernel, rec = _np(weights[0]), _np(weights[1])
    H = rec.shape[0]
    if kernel.shape[1] != 4 * H or rec.shape != (H, 4 * H):
        raise ShapeError(f"keras LSTM: kernel.shape={kernel.shape}, recurrent_kernel.shape={rec.shape}")
    bias = _np(weights[2]) if len(weights) > 2 else np.zeros(4 * H, kernel.dtype)
    if bias.shape != (4 * H,):
        raise ShapeError(f"keras LSTM bias must be (4H,) = ({4 * H},), got {bias.shape}")
    return LSTMWeights(kernel.copy(), rec.copy(), bias.copy(), np.zeros_like(bias))


def lstm_grads_to_keras(g: LSTMWeights) -> list[np.ndarray]:
    """Canonical gradients (of a model holding b_h = 0) -> Keras' gradients: the one bias c enters as b_x, so
    dL/dc = g_b_x (never g_b_x + g_b_h, which would double it)."""
    return [_np(g.W).copy(), _np(g.U).copy(), _np(g.b_x).copy()]


def lstm_grads_from_keras(grads: list) -> LSTMWeights:
    """Keras' gradients -> canonical: the one bias stands for b_x + b_h, so both take its gradient."""
    w = package().lstm_from_keras(grads)  # looked up on the package: common.py says why
    return LSTMWeights(w.W, w.U, w.b_x, w.b_x.copy())


def lstm_to_onnx(ws: list[LSTMWeights]) -> dict[str, np.ndarray]:
    """Canonical (one weights per direction: [forward] or [forward, reverse]) -> ONNX LSTM inputs W (D, 4H, I),
    R (D, 4H, H), B (D, 8H) = [Wb, Rb], gate blocks reordered to ONNX's (i, o, f, c)."""
    order = package().ONNX_LSTM_FROM_CANON  # looked up on the package: common.py says why
    return {"W": np.stack([_blocks4(_np(w.W), order).T for w in ws]),
            "R": np.stack([_blocks4(_np(w.U), order).T for w in ws]),
            "B": np.stack([np.concatenate([_blocks4(_np(w.b_x), order),
                                           _blocks4(_np(w.b_h), order)]) for w in ws])}


def lstm_from_onnx(W: np.ndarray, R: np.ndarray, B: np.ndarray | None = None) -> list[LSTMWeights]:
    """ONNX LSTM inputs -> canonical weights per direction. A missing B is zero."""
    W, R = _np(W), _np(R)
    D, G, H = R.shape
    if G != 4 * H or W.shape[:2] != (D, 4 * H):
        raise ShapeError(f"ONNX LSTM: W.shape={W.shape}, R.shape={R.shape}")
    B = np.zeros((D, 8 * H), W.dtype) if B is None else _np(B)
    return [LSTMWeights(_blocks4(W[d].T, _ONNX_LSTM_TO_CANON), _blocks4(R[d].T, _ONNX_LSTM_TO_CANON),
                        _blocks4(B[d, : 4 * H], _ONNX_LSTM_TO_CANON), _blocks4(B[d, 4 * H :], _ONNX_LSTM_TO_CANON))
            for d in range(D)]


# ---- Flax LSTM
# flax.linen.LSTMCell (flax 0.12.8 linen/recurrent.py): one Dense per gate and side, the input ones without bias,
# ii/if/ig/io {kernel (I, H)}, the hidden ones with it, hi/hf/hg/ho {kernel (H, H), bias (H,)}:
# i = sig(x W_ii + h W_hi + b_hi), f, g (tanh), o likewise, c' = f c + i g, h' = o tanh(c'); carry (c, h).
# One bias per gate, so it holds b_x + b_h folded (as Keras' LSTM does): forward-exact, not training-exact. Read back,
# the folded bias is b_x and b_h is zero (Keras' convention, lstm_from_keras); its gradient goes to both.
# (OptimizedLSTMCell's docstring says it creates params of the same names and shapes; the port uses LSTMCell.)

FLAX_LSTM_INPUT = ("ii", "if", "ig", "io")  # flax.linen.LSTMCell's input Dense per canonical gate i, f, g, o
FLAX_LSTM_HIDDEN = ("hi", "hf", "hg", "ho")  # and its hidden Dense, the one with the gate's bias


def flax_lstm_folded_bias(w: LSTMWeights) -> LSTMWeights:
    """What flax.linen.LSTMCell can hold of canonical weights, exactly: (W, U, b_x + b_h, 0). Changes no output."""
    bx, bh = _np(w.b_x), _np(w.b_h)
    return LSTMWeights(_np(w.W), _np(w.U), bx + bh, np.zeros_like(bh))


def _lstm_flax_tree(W: np.ndarray, U: np.ndarray, bias: np.ndarray) -> dict:
    H = U.shape[0]
    gate = lambda a, g: a[..., g * H : (g + 1) * H].copy()
    out = {n: {"kernel": gate(W, g)} for g, n in enumerate(FLAX_LSTM_INPUT)}
    out |= {n: {"kernel": gate(U, g), "bias": gate(bias, g)} for g, n in enumerate(FLAX_LSTM_HIDDEN)}
    return out


def lstm_to_flax(w: LSTMWeights) -> dict:
    """Canonical -> flax.linen.LSTMCell params {"ii": {"kernel"}, ..., "hi": {"kernel", "bias"}, ...}: the gate
    blocks (i, f, g, o) one Dense each, the bias b_x + b_h on the hidden side (flax_lstm_folded_bias)."""
    W, U = _np(w.W), _np(w.U)
    H = U.shape[0]
    if W.shape[1] != 4 * H or U.shape != (H, 4 * H):
        raise ShapeError(f"canonical LSTM: W.shape={W.shape}, U.shape={U.shape} (want (I, 4H), (H, 4H))")
    return _lstm_flax_tree(W, U, _np(w.b_x) + _np(w.b_h))


def lstm_from_flax(params: dict) -> LSTMWeights:
    """flax.linen.LSTMCell params -> canonical weights: the folded bias read back as b_x, b_h zero."""
    missing = [n for n in (*FLAX_LSTM_INPUT, *FLAX_LSTM_HIDDEN) if n not in params]
    if missing:
        raise ShapeError(f"flax LSTMCell params lack {missing}; it has {sorted(params)}")
    W = np.concatenate([_np(params[n]["kernel"]) for n in FLAX_LSTM_INPUT], axis=1)
    U = np.concatenate([_np(params[n]["kernel"]) for n in FLAX_LSTM_HIDDEN], axis=1)
    b = np.concatenate([_np(params[n]["bias"]) for n in FLAX_LSTM_HIDDEN])
    return LSTMWeights(W, U, b, np.zeros_like(b))


def lstm_grads_to_flax(g: LSTMWeights) -> dict:
    """Canonical gradients (of a model holding b_h = 0) -> flax.linen.LSTMCell gradients: the folded bias c enters
    as b_x = c, so dL/dc = g_b_x (never g_b_x + g_b_h, which would double it)."""
    return _lstm_flax_tree(_np(g.W), _np(g.U), _np(g.b_x))


def lstm_grads_from_flax(grads: dict) -> LSTMWeights:
    """flax.linen.LSTMCell gradients -> canonical: the folded bias stands for b_x + b_h, so both take its gradient."""
    w = lstm_from_flax(grads)
    return LSTMWeights(w.W, w.U, w.b_x, w.b_x.copy())
