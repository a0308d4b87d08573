"""Weight and layout converters between the canonical layouts and the frameworks' own.

Pure NumPy; every fact about a framework's weight layout lives here and nowhere else:
- canonical GRU: W (I, 3H), U (H, 3H), b_x, b_h (3H,), gate order (z, r, h)
- torch.nn.GRU: weight_ih_l0 (3H, I), weight_hh_l0 (3H, H), bias_ih_l0, bias_hh_l0 (3H,), gate order (r, z, n)
- keras.layers.GRU: kernel (I, 3H), recurrent_kernel (H, 3H), gate order (z, r, h);
  bias (2, 3H) = [input bias, recurrent bias] when reset_after=True, a single (3H,) bias when False:
  that layer cannot hold b_x and b_h apart, so the canonical weights it reads back are the stated
  projection `keras_single_bias` (b_x + b_h, 0), and a gradient goes to it as g_b_x (= g_b_h), never summed
- ONNX GRU: W (1, 3H, I), R (1, 3H, H), B (1, 6H) = [Wb, Rb], gate order (z, r, h)
- flax.linen.GRUCell: one Dense per gate and side, ir/iz/in {kernel (I, H), bias (H,)}, hr/hz {kernel (H, H)}
  without bias, hn {kernel (H, H), bias (H,)}: r = sig(x W_ir + b_ir + h W_hr), z likewise, n = tanh(x W_in + b_in
  + r * (h W_hn + b_hn)), h' = (1 - z) n + z h. That is reset_after with the z and r biases folded into one each:
  it holds every reset_after weight set (b_iz = b_xz + b_hz, b_ir = b_xr + b_hr) and reads back as the stated
  projection `flax_folded_bias` (b_x = (b_iz, b_ir, b_in), b_h = (0, 0, b_hn)); gradients go to a folded bias as
  g_b_x (= g_b_h), never summed. flax.nnx.GRUCell differs again: its recurrent Dense has no bias at all (no b_hn,
  though its docstring writes one), so it holds reset_after only where b_hh of the candidate is zero
- conv, dense in Flax: HWIO kernels on NHWC images and (in, out) kernels, the canonical layouts themselves
- conv: canonical HWIO kernel, NHWC images; torch OIHW kernel, NCHW images; with groups both hold
  I = C_in / groups and output channel o in group o // (C_out / groups), so one transpose serves every groups;
  Keras DepthwiseConv2D (KH, KW, C, M) is the grouped kernel (KH, KW, 1, C * M) with output c * M + m
- padding: canonical (top, bottom, left, right); ONNX pads [top, left, bottom, right]; torch F.pad /
  nn.ZeroPad2d (left, right, top, bottom)
- dense: canonical (in, out); torch.nn.Linear weight (out, in)
- Flatten: Keras flattens NHWC in (h, w, c) order, torch NCHW in (c, h, w) order, so the first Dense
  after a conv stack needs its rows permuted when a model moves between them.
"""

from __future__ import annotations

import numpy as np

from .contract.spec import GRUWeights, LSTMWeights, ShapeError

_TORCH_FROM_CANON = (1, 0, 2)  # torch block i holds canonical gate _TORCH_FROM_CANON[i]: r, z, n


def _blocks(a: np.ndarray, H: int) -> list[np.ndarray]:
    return [a[..., g * H : (g + 1) * H] for g in range(3)]


def _reorder(a: np.ndarray, H: int, order) -> np.ndarray:
    b = _blocks(a, H)
    return np.concatenate([b[i] for i in order], axis=-1)


def _np(a) -> np.ndarray:
    return np.asarray(a)


# --------------------------------------------------------------------------- GRU


def gru_to_torch(w: GRUWeights, suffix: str = "l0") -> dict[str, np.ndarray]:
    """Canonical -> torch.nn.GRU state of one layer and direction (`suffix` "l0", "l0_reverse", "l1", ...).
    Only reset_after maps exactly."""
    W, U, bx, bh = map(_np, (w.W, w.U, w.b_x, w.b_h))
    H = U.shape[0]
    return {
        f"weight_ih_{suffix}": _reorder(W, H, _TORCH_FROM_CANON).T.copy(),
        f"weight_hh_{suffix}": _reorder(U, H, _TORCH_FROM_CANON).T.copy(),
        f"bias_ih_{suffix}": _reorder(bx, H, _TORCH_FROM_CANON).copy(),
        f"bias_hh_{suffix}": _reorder(bh, H, _TORCH_FROM_CANON).copy(),
    }


def gru_from_torch(state: dict, suffix: str = "l0") -> GRUWeights:
    """torch.nn.GRU state (or its gradients, same layout) -> canonical. The (r, z, n) swap is its own inverse."""
    wih, whh = _np(state[f"weight_ih_{suffix}"]), _np(state[f"weight_hh_{suffix}"])
    H = whh.shape[1]
    if wih.shape[0] != 3 * H or whh.shape != (3 * H, H):
        raise ShapeError(f"torch GRU state: weight_ih_{suffix}.shape={wih.shape}, weight_hh_{suffix}.shape={whh.shape}")
    return GRUWeights(
        W=_reorder(wih.T, H, _TORCH_FROM_CANON),
        U=_reorder(whh.T, H, _TORCH_FROM_CANON),
        b_x=_reorder(_np(state[f"bias_ih_{suffix}"]), H, _TORCH_FROM_CANON),
        b_h=_reorder(_np(state[f"bias_hh_{suffix}"]), H, _TORCH_FROM_CANON),
    )


def gru_to_keras(w: GRUWeights, reset_after: bool) -> list[np.ndarray]:
    """Canonical -> [kernel, recurrent_kernel, bias] for keras.layers.GRU(reset_after=...).
    With reset_after=False Keras has one bias, so b_x + b_h is folded (exact for reset_before)."""
    W, U, bx, bh = map(_np, (w.W, w.U, w.b_x, w.b_h))
    bias = np.stack([bx, bh]) if reset_after else bx + bh
    return [W.copy(), U.copy(), bias]


def keras_single_bias(w: GRUWeights) -> GRUWeights:
    """What keras.layers.GRU(reset_after=False) can hold of canonical weights, exactly: (W, U, b_x + b_h, 0).
    The projection changes no output of the variants where the biases only ever add (reset_before, chung,
    seed); reset_after's b_hh sits inside r * (...), so there it is a different model (verify/ shows both)."""
    bx, bh = _np(w.b_x), _np(w.b_h)
    return GRUWeights(_np(w.W), _np(w.U), bx + bh, np.zeros_like(bh))


def gru_grads_to_keras(g: GRUWeights, reset_after: bool) -> list[np.ndarray]:
    """Canonical gradients -> Keras' [kernel, recurrent_kernel, bias] gradients. Without reset_after the one
    bias c enters as b_x = c, b_h = 0 (keras_single_bias), so dL/dc = g_b_x (which equals g_b_h where only
    b_x + b_h enters): summing the two, as gru_to_keras sums weights, would double it."""
    W, U, bx, bh = map(_np, (g.W, g.U, g.b_x, g.b_h))
    return [W.copy(), U.copy(), np.stack([bx, bh]) if reset_after else bx.copy()]


def gru_grads_from_keras(grads: list, reset_after: bool) -> GRUWeights:
    """Keras' [kernel, recurrent_kernel, bias] gradients -> canonical gradients. Without reset_after the one
    bias c stands for b_x + b_h, so dL/db_x = dL/db_h = dL/dc: both take it (gru_from_keras, which reads
    weights, would give b_h's gradient as zero)."""
    if reset_after:
        return gru_from_keras(grads, reset_after=True)
    w = gru_from_keras(grads, reset_after=False)
    return GRUWeights(w.W, w.U, w.b_x, w.b_x.copy())


def gru_from_keras(weights: list, reset_after: bool) -> GRUWeights:
    """[kernel, recurrent_kernel, bias] -> canonical weights (gradients: gru_grads_from_keras). Without
    reset_after the single bias goes to b_x and b_h is zero: keras_single_bias's projection, read back."""
    kernel, rec, bias = map(_np, weights)
    if reset_after:
        if bias.ndim != 2 or bias.shape[0] != 2:
            raise ShapeError(f"keras GRU(reset_after=True) bias must be (2, 3H), got {bias.shape}")
        return GRUWeights(kernel, rec, bias[0], bias[1])
    if bias.ndim != 1:
        raise ShapeError(f"keras GRU(reset_after=False) bias must be (3H,), got {bias.shape}")
    return GRUWeights(kernel, rec, bias, np.zeros_like(bias))


def gru_to_onnx(w: GRUWeights) -> dict[str, np.ndarray]:
    """Canonical -> ONNX GRU inputs W, R, B (one direction). Gate order is already (z, r, h)."""
    W, U, bx, bh = map(_np, (w.W, w.U, w.b_x, w.b_h))
    return {"W": W.T[None].copy(), "R": U.T[None].copy(), "B": np.concatenate([bx, bh])[None]}


def gru_from_onnx(W: np.ndarray, R: np.ndarray, B: np.ndarray) -> GRUWeights:
    W, R, B = _np(W)[0], _np(R)[0], _np(B)[0]
    H = R.shape[1]
    return GRUWeights(W.T, R.T, B[: 3 * H], B[3 * H :])


FLAX_GATES = ("iz", "ir", "in")  # flax.linen.GRUCell's input Dense per canonical gate z, r, h
FLAX_RECURRENT = ("hz", "hr", "hn")  # and its recurrent Dense; only hn has a bias


def flax_folded_bias(w: GRUWeights) -> GRUWeights:
    """What flax.linen.GRUCell can hold of canonical weights, exactly: the z and r gates' b_x + b_h in b_x, b_h
    zero there; the candidate's b_xh and b_hh apart (b_hh sits inside r * (...)). Changes no reset_after output."""
    bx, bh = _np(w.b_x), _np(w.b_h)
    H = bh.shape[0] // 3
    return GRUWeights(_np(w.W), _np(w.U), np.concatenate([bx[: 2 * H] + bh[: 2 * H], bx[2 * H :]]),
                      np.concatenate([np.zeros(2 * H, bh.dtype), bh[2 * H :]]))  # fmt: skip


def gru_to_flax(w: GRUWeights) -> dict:
    """Canonical -> flax.linen.GRUCell params {"ir": {"kernel", "bias"}, ..., "hn": {"kernel", "bias"}}; the z and r
    biases folded (flax_folded_bias). Exact for reset_after, the one variant the cell computes."""
    f = flax_folded_bias(w)
    Wb, Ub, bx, bh = (_blocks(_np(a), _np(w.U).shape[0]) for a in (f.W, f.U, f.b_x, f.b_h))
    out = {name: {"kernel": Wb[g].copy(), "bias": bx[g].copy()} for g, name in enumerate(FLAX_GATES)}
    out |= {name: {"kernel": Ub[g].copy()} for g, name in enumerate(FLAX_RECURRENT)}
    out["hn"]["bias"] = bh[2].copy()
    return out


def gru_from_flax(params: dict) -> GRUWeights:
    """flax.linen.GRUCell params -> canonical weights (the projection flax_folded_bias, read back exactly)."""
    H = _np(params["hn"]["kernel"]).shape[0]
    bias_h = _np(params["hn"]["bias"])
    return GRUWeights(
        W=np.concatenate([_np(params[n]["kernel"]) for n in FLAX_GATES], axis=1),
        U=np.concatenate([_np(params[n]["kernel"]) for n in FLAX_RECURRENT], axis=1),
        b_x=np.concatenate([_np(params[n]["bias"]) for n in FLAX_GATES]),
        b_h=np.concatenate([np.zeros(2 * H, bias_h.dtype), bias_h]),
    )


def gru_grads_to_flax(g: GRUWeights) -> dict:
    """Canonical gradients -> flax.linen.GRUCell gradients. A folded bias c enters as b_x = c, b_h = 0, so
    dL/dc = g_b_x of its gate (which equals g_b_h where only the sum enters): carried over, never summed."""
    H = _np(g.U).shape[0]
    return gru_to_flax(GRUWeights(g.W, g.U, g.b_x, np.concatenate([np.zeros(2 * H, _np(g.b_h).dtype), _np(g.b_h)[2 * H :]])))


def gru_grads_from_flax(grads: dict) -> GRUWeights:
    """flax.linen.GRUCell gradients -> canonical: a folded bias stands for b_x + b_h of its gate, so both take its
    gradient (gru_from_flax, which reads weights, would give b_hz and b_hr zero)."""
    w = gru_from_flax(grads)
    H = _np(w.U).shape[0]
    return GRUWeights(w.W, w.U, w.b_x, np.concatenate([w.b_x[: 2 * H], w.b_h[2 * H :]]))


# --------------------------------------------------------------------------- LSTM
# Canonical gate order (i, f, g, o) is torch's and Keras' own (Keras calls g "c"); ONNX stores (i, o, f, c).

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
    w = lstm_from_keras(grads)
    return LSTMWeights(w.W, w.U, w.b_x, w.b_x.copy())


def lstm_to_onnx(ws: list[LSTMWeights]) -> dict[str, np.ndarray]:
    """Canonical (one weights per direction: [forward] or [forward, reverse]) -> ONNX LSTM inputs W (D, 4H, I),
    R (D, 4H, H), B (D, 8H) = [Wb, Rb], gate blocks reordered to ONNX's (i, o, f, c)."""
    return {"W": np.stack([_blocks4(_np(w.W), ONNX_LSTM_FROM_CANON).T for w in ws]),
            "R": np.stack([_blocks4(_np(w.U), ONNX_LSTM_FROM_CANON).T for w in ws]),
            "B": np.stack([np.concatenate([_blocks4(_np(w.b_x), ONNX_LSTM_FROM_CANON),
                                           _blocks4(_np(w.b_h), ONNX_LSTM_FROM_CANON)]) for w in ws])}


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


# ---- Flax normalisation
# flax.linen.BatchNorm / LayerNorm (flax 0.12.8 linen/normalization.py): params {scale (C,), bias (C,)} (present as
# use_scale / use_bias say: the description's scale / center), and BatchNorm's collection "batch_stats" {mean, var}.
# BatchNorm's `momentum` is the fraction of the OLD value kept (ra = momentum * ra + (1 - momentum) * batch), the
# description's convention; it updates ra_var with the variance it normalises by, the biased one (_compute_stats:
# mean((x - mu)^2)), which is variance_update "biased". No parameter is folded: gradients map one to one.

FLAX_NORM_PARAMS = {"gamma": "scale", "beta": "bias"}
FLAX_NORM_STATS = {"moving_mean": "mean", "moving_var": "var"}


def batch_norm_momentum_to_flax(momentum: float) -> float:
    """The description's momentum (the old value's share) as nn.BatchNorm's momentum: the same number."""
    return float(momentum)


def norm_to_flax(w: dict) -> tuple[dict, dict]:
    """A batch_norm / layer_norm's canonical weights -> (flax params {scale, bias}, batch_stats {mean, var}); what the
    layer lacks is absent (a layer_norm has no batch_stats)."""
    params = {FLAX_NORM_PARAMS[k]: _np(v) for k, v in w.items() if k in FLAX_NORM_PARAMS}
    stats = {FLAX_NORM_STATS[k]: _np(v) for k, v in w.items() if k in FLAX_NORM_STATS}
    unknown = sorted(set(w) - set(FLAX_NORM_PARAMS) - set(FLAX_NORM_STATS))
    if unknown:
        raise ShapeError(f"normalisation weights {unknown} have no flax.linen name (it holds {sorted(FLAX_NORM_PARAMS)} "
                         f"and {sorted(FLAX_NORM_STATS)})")
    return params, stats


def norm_from_flax(params: dict, stats: dict | None = None) -> dict:
    """(flax params {scale, bias}, batch_stats {mean, var} or None) -> canonical {gamma, beta, moving_mean,
    moving_var}, as many as given. Gradients map the same way (nothing is folded)."""
    back = {v: k for k, v in FLAX_NORM_PARAMS.items()} | {v: k for k, v in FLAX_NORM_STATS.items()}
    out = {}
    for tree in (params or {}, stats or {}):
        for k, v in tree.items():
            if k not in back:
                raise ShapeError(f"flax normalisation variable {k!r} is none of {sorted(back)}")
            out[back[k]] = _np(v)
    return out


# --------------------------------------------------------------------------- conv, dense, layouts


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def hwio_to_oihw(k: np.ndarray) -> np.ndarray:
    """(KH, KW, I, O) -> (O, I, KH, KW). Grouped kernels too: both layouts hold I = C_in / groups."""
    return np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1)))


def oihw_to_hwio(k: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(k, (2, 3, 1, 0)))


def depthwise_to_grouped(k: np.ndarray) -> np.ndarray:
    """Keras DepthwiseConv2D kernel (KH, KW, C, M) -> canonical grouped HWIO (KH, KW, 1, C * M), groups = C:
    output channel c * M + m is input channel c's m-th filter in both."""
    k = _np(k)
    if k.ndim != 4:
        raise ShapeError(f"a depthwise kernel is (KH, KW, C, M), got shape {k.shape}")
    kh, kw, c, m = k.shape
    return np.ascontiguousarray(k.reshape(kh, kw, 1, c * m))


def grouped_to_depthwise(k: np.ndarray, groups: int) -> np.ndarray:
    """Canonical HWIO (KH, KW, 1, C * M) with groups = C -> Keras DepthwiseConv2D kernel (KH, KW, C, M)."""
    k = _np(k)
    if k.ndim != 4 or k.shape[2] != 1 or k.shape[3] % groups:
        raise ShapeError(f"a depthwise (groups = C_in) HWIO kernel is (KH, KW, 1, C * M) with C = groups; "
                         f"got kernel.shape={k.shape}, groups={groups}")  # fmt: skip
    return np.ascontiguousarray(k.reshape(k.shape[0], k.shape[1], groups, k.shape[3] // groups))


def pads_to_onnx(pads: tuple[int, int, int, int]) -> list[int]:
    """Canonical (top, bottom, left, right) -> ONNX pads [top, left, bottom, right] (begins, then ends)."""
    t, b, l, r = pads
    return [t, l, b, r]


def pads_from_onnx(pads) -> tuple[tuple[int, int], tuple[int, int]]:
    """ONNX pads [top, left, bottom, right] -> canonical explicit padding ((top, bottom), (left, right))."""
    t, l, b, r = (int(p) for p in pads)
    return (t, b), (l, r)


def pads_to_torch(pads: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """Canonical (top, bottom, left, right) -> F.pad / nn.ZeroPad2d order on NCHW (left, right, top, bottom)."""
    t, b, l, r = pads
    return l, r, t, b


def dense_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(in, out) -> nn.Linear weight (out, in)."""
    return np.ascontiguousarray(_np(kernel).T)


def dense_from_torch(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_np(weight).T)


def flatten_rows_nhwc_to_nchw(kernel: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Rows of a Dense kernel that follows Flatten: Keras order (h, w, c) -> torch order (c, h, w)."""
    h, w, c = feature_shape
    kernel = _np(kernel)
    if kernel.shape[0] != h * w * c:
        raise ShapeError(f"dense kernel.shape={kernel.shape} does not follow a flatten of {feature_shape}")
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)


def features_nhwc_to_nchw(y: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """A flattened map's features (B, h*w*c): Keras' order (h, w, c) -> torch's (c, h, w)."""
    h, w, c = feature_shape
    y = _np(y)
    return np.ascontiguousarray(y.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(y.shape))


def features_nchw_to_nhwc(y: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = feature_shape
    y = _np(y)
    return np.ascontiguousarray(y.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(y.shape))


def flatten_rows_nchw_to_nhwc(kernel: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = feature_shape
    kernel = _np(kernel)
    if kernel.shape[0] != h * w * c:
        raise ShapeError(f"dense kernel.shape={kernel.shape} does not follow a flatten of {feature_shape}")
    return kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
