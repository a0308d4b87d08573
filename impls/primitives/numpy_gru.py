"""The NumPy reference's GRU: one step as DESIGN.md's equations, the forward over time keeping its tape, and
backpropagation through time written by hand beside it.

Re-exported by impls/primitives/numpy_impl.py (the reference voice); kept apart so each module stays readable.
Every variant (seed, reset_before, reset_after, chung) is a branch of the same step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..contract import spec
from ..contract.spec import GRUWeights
from .numpy_activations import sigmoid, tanh


def _cast(w, dtype):
    return w.map(lambda a: np.asarray(a, dtype=dtype))


def _gru_step(x_t, h, w: GRUWeights, variant: str):
    """One step. x_t (B, I), h (B, H) -> (h_t (B, H), what the backward needs). Lines follow DESIGN.md's
    equations."""
    H = w.hidden_size
    Wz, Wr, Wh = w.W[:, :H], w.W[:, H : 2 * H], w.W[:, 2 * H :]
    Uz, Ur, Uh = w.U[:, :H], w.U[:, H : 2 * H], w.U[:, 2 * H :]
    bxz, bxr, bxh = w.b_x[:H], w.b_x[H : 2 * H], w.b_x[2 * H :]
    bhz, bhr, bhh = w.b_h[:H], w.b_h[H : 2 * H], w.b_h[2 * H :]

    z = sigmoid(x_t @ Wz + bxz + h @ Uz + bhz)  # (B, H)
    r = sigmoid(x_t @ Wr + bxr + h @ Ur + bhr)  # (B, H)
    if variant == "reset_after":  # cuDNN, torch.nn.GRU, Keras default
        hU = h @ Uh + bhh  # (B, H) the recurrent product, reset after it
        h_tilde = tanh(x_t @ Wh + bxh + r * hU)
    else:  # seed, reset_before, chung: the reset gate acts before the recurrent product
        hU = None
        h_tilde = tanh(x_t @ Wh + bxh + (r * h) @ Uh + bhh)

    if variant == "seed":  # h_t = (1 - z) * h_{t-1} (+) r * h~, with a (+) b = (a + b) / 2
        h_t = ((1.0 - z) * h + r * h_tilde) / 2.0
    elif variant == "chung":  # Chung et al. 2014: z weighs the candidate
        h_t = (1.0 - z) * h + z * h_tilde
    else:  # reset_before, reset_after (Cho et al. 2014)
        h_t = z * h + (1.0 - z) * h_tilde
    return h_t, (z, r, h_tilde, hU)


def gru_cell(x_t, h, w: GRUWeights, variant: str):
    """One step. x_t (B, I), h (B, H) -> h_t (B, H)."""
    return _gru_step(x_t, h, w, variant)[0]


@dataclass(frozen=True)
class GRUTape:
    """What backpropagation through time needs from a forward pass, stacked over time (axis 1)."""

    x: np.ndarray  # (B, T, I)
    w: GRUWeights  # cast to x's dtype
    variant: str
    h_prev: np.ndarray  # (B, T, H) h_{t-1} entering step t; h_prev[:, 0] = h0
    z: np.ndarray  # (B, T, H)
    r: np.ndarray  # (B, T, H)
    h_tilde: np.ndarray  # (B, T, H)
    hU: np.ndarray | None  # (B, T, H) h_{t-1} U_h + b_hh, reset_after only
    y: np.ndarray  # (B, T, H) outputs h_1 .. h_T


def gru_forward(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None) -> GRUTape:
    """The forward pass, keeping what gru_backward needs. tape.y is gru(...)[0], tape.y[:, -1] is h_T."""
    spec.check_variant(variant)
    B, T, _, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    w = _cast(weights, x.dtype)
    h = np.zeros((B, H), dtype=x.dtype) if h0 is None else np.asarray(h0, dtype=x.dtype)
    h_prev, saved, ys = [], [], []
    for t in range(T):
        h_prev.append(h)
        h, s = _gru_step(x[:, t, :], h, w, variant)
        saved.append(s)
        ys.append(h)
    z, r, h_tilde, hU = ([s[i] for s in saved] for i in range(4))
    return GRUTape(
        x=x, w=w, variant=variant, h_prev=np.stack(h_prev, axis=1), z=np.stack(z, axis=1),
        r=np.stack(r, axis=1), h_tilde=np.stack(h_tilde, axis=1),
        hU=np.stack(hU, axis=1) if variant == "reset_after" else None, y=np.stack(ys, axis=1),
    )  # fmt: skip


def gru(x: np.ndarray, weights: GRUWeights, variant: str, h0: np.ndarray | None = None):
    """x (B, T, I) -> (y (B, T, H), h_T (B, H))."""
    tape = gru_forward(x, weights, variant, h0)
    return tape.y, tape.y[:, -1]


def gru_backward(tape: GRUTape, dy: np.ndarray | None, dh_T: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Backpropagation through time over a recorded forward. dy (B, T, H) and/or dh_T (B, H), None = zeros.

    Per step, from dh = dL/dh_t (dy_t plus what flows back from step t+1), with a_* the gate
    pre-activations (z = sigmoid(a_z), r = sigmoid(a_r), h~ = tanh(a_h)):
        update      dz, dh~ and the direct part of dh_{t-1}, per variant
        candidate   da_h = dh~ * (1 - h~^2)
          reset_after:  a_h = x W_h + b_xh + r * hU, hU = h U_h + b_hh -> dr = da_h * hU, dhU = da_h * r
          otherwise:    a_h = x W_h + b_xh + q U_h + b_hh, q = r * h -> dq = da_h U_h^T, dr = dq * h
        gates       da_z = dz * z (1 - z), da_r = dr * r (1 - r)
        h_{t-1}     += da_z U_z^T + da_r U_r^T + (dhU U_h^T | dq * r)
    Weight gradients are summed over batch and time at the end: dW = sum x^T [da_z, da_r, da_h],
    dU = sum [h, h, (h | q)]^T [da_z, da_r, (dhU | da_h)], db_x and db_h the matching sums.
    """
    w, variant = tape.w, tape.variant
    B, T, H = tape.y.shape
    if dy is None and dh_T is None:
        raise ValueError("gru_backward needs dy, dh_T or both; got neither")
    if dy is not None:
        spec.check_dy("gru_vjp", dy.shape, (B, T, H))
        dy = np.asarray(dy, dtype=tape.x.dtype)
    if dh_T is not None:
        spec.check_dy("gru_vjp dh_T", dh_T.shape, (B, H))
    Uz, Ur, Uh = w.U[:, :H], w.U[:, H : 2 * H], w.U[:, 2 * H :]
    dt = tape.x.dtype
    dh = np.zeros((B, H), dtype=dt) if dh_T is None else np.asarray(dh_T, dtype=dt)
    da = np.empty((B, T, 3 * H), dtype=dt)  # dL/d[a_z, a_r, a_h] per step
    d_rec = np.empty((B, T, H), dtype=dt)  # dL/d(output of the candidate's recurrent product)
    for t in reversed(range(T)):
        if dy is not None:
            dh = dh + dy[:, t]
        h, z, r, h_tilde = tape.h_prev[:, t], tape.z[:, t], tape.r[:, t], tape.h_tilde[:, t]
        if variant == "seed":  # h_t = ((1 - z) h + r h~) / 2
            dz, dr, dh_tilde, dh_prev = -dh * h / 2.0, dh * h_tilde / 2.0, dh * r / 2.0, dh * (1.0 - z) / 2.0
        elif variant == "chung":  # h_t = (1 - z) h + z h~
            dz, dr, dh_tilde, dh_prev = dh * (h_tilde - h), 0.0, dh * z, dh * (1.0 - z)
        else:  # h_t = z h + (1 - z) h~
            dz, dr, dh_tilde, dh_prev = dh * (h - h_tilde), 0.0, dh * (1.0 - z), dh * z
        da_h = dh_tilde * (1.0 - h_tilde * h_tilde)
        if variant == "reset_after":
            dr = dr + da_h * tape.hU[:, t]
            d_rec[:, t] = da_h * r  # dL/dhU
            dh_prev = dh_prev + d_rec[:, t] @ Uh.T
        else:
            dq = da_h @ Uh.T  # q = r * h
            dr = dr + dq * h
            dh_prev = dh_prev + dq * r
            d_rec[:, t] = da_h
        da_z = dz * z * (1.0 - z)
        da_r = dr * r * (1.0 - r)
        dh = dh_prev + da_z @ Uz.T + da_r @ Ur.T
        da[:, t, :H], da[:, t, H : 2 * H], da[:, t, 2 * H :] = da_z, da_r, da_h
    # sums over batch and time as one matrix product each: rows are the B*T (b, t) pairs
    h_all = tape.h_prev.reshape(B * T, H)  # h_{t-1}
    rec_in = h_all if variant == "reset_after" else (tape.r * tape.h_prev).reshape(B * T, H)  # what U_h multiplies
    da2 = da.reshape(B * T, 3 * H)
    dU = np.concatenate([h_all.T @ da2[:, : 2 * H], rec_in.T @ d_rec.reshape(B * T, H)], axis=1)
    return {
        "x": da @ w.W.T,  # (B, T, I)
        "h0": dh,  # (B, H)
        "W": tape.x.reshape(B * T, -1).T @ da2,  # (I, 3H)
        "U": dU,  # (H, 3H)
        "b_x": da.sum(axis=(0, 1)),  # (3H,)
        "b_h": np.concatenate([da[..., : 2 * H].sum(axis=(0, 1)), d_rec.sum(axis=(0, 1))]),  # (3H,)
    }


def gru_vjp(
    x: np.ndarray,
    weights: GRUWeights,
    variant: str,
    dy: np.ndarray | None,
    h0: np.ndarray | None = None,
    dh_T: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Gradients of <dy, y> + <dh_T, h_T> for (y, h_T) = gru(x, weights, variant, h0), by BPTT.
    Returns {"x", "h0", "W", "U", "b_x", "b_h"}; h0=None means zeros and "h0" is still returned. In the
    seed and the reset-before variants b_x and b_h only ever appear as b_x + b_h, so their gradients are
    equal."""
    spec.check_variant(variant)
    spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    return gru_backward(gru_forward(x, weights, variant, h0), dy, dh_T)
