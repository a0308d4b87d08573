"""Normalisation layers' weights: canonical batch_norm / layer_norm <-> flax.linen.BatchNorm / LayerNorm.

flax.linen.BatchNorm / LayerNorm (flax 0.12.8 linen/normalization.py): params {scale (C,), bias (C,)} (present as
use_scale / use_bias say: the description's scale / center), and BatchNorm's collection "batch_stats" {mean, var}.
BatchNorm's `momentum` is the fraction of the OLD value kept (ra = momentum * ra + (1 - momentum) * batch), the
description's convention; it updates ra_var with the variance it normalises by, the biased one (_compute_stats:
mean((x - mu)^2)), which is variance_update "biased". No parameter is folded: gradients map one to one.
"""

from __future__ import annotations

from ..contract.spec import ShapeError
from .common import _np

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
