"""The torch voice's sequence ops from primitives: the LSTM, embeddings, and the index maps of padded sequences
(what they mean is impls/primitives/numpy_seq.py's). Re-exported by torch_impl.py."""

from __future__ import annotations

from typing import Any

from ..contract import spec
from ..contract.spec import LSTMWeights
from .torch_core import _like, torch


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


def mean_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) averaged over each row's valid steps: (B, F); what it means is numpy_seq.py's."""
    v = valid.to(x.dtype)
    return (x * v[:, :, None]).sum(dim=1) / v.sum(dim=1)[:, None]


def mask_steps(x: Any, valid: Any) -> Any:
    """x (B, T, F) with the steps where valid is False set to 0."""
    return x * valid.to(x.dtype)[:, :, None]


def reverse_steps(x: Any) -> Any:
    """x (B, T, ...) with its time axis reversed."""
    return torch.flip(x, dims=(1,))


def concat(xs: Any, axis: int = -1) -> Any:
    return torch.cat(list(xs), dim=axis)
