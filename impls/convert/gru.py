"""The GRU's weights: canonical <-> torch.nn.GRU, keras.layers.GRU, ONNX GRU and flax.linen.GRUCell, and their
gradients where a layout folds a bias.

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
"""

from __future__ import annotations

import numpy as np

from ..contract.spec import GRUWeights, ShapeError
from .common import _np, package

_TORCH_FROM_CANON = (1, 0, 2)  # torch block i holds canonical gate _TORCH_FROM_CANON[i]: r, z, n


def _blocks(a: np.ndarray, H: int) -> list[np.ndarray]:
    return [a[..., g * H : (g + 1) * H] for g in range(3)]


def _reorder(a: np.ndarray, H: int, order) -> np.ndarray:
    b = _blocks(a, H)
    return np.concatenate([b[i] for i in order], axis=-1)


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
        return package().gru_from_keras(grads, reset_after=True)  # looked up on the package: common.py says why
    w = package().gru_from_keras(grads, reset_after=False)
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
