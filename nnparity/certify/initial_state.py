"""GRU layers started from a seeded non-zero state: each voice's op-contract gru (impls.backend(voice).gru) fed the
reference's input to the layer and h0, against impls.primitives.numpy_impl.gru in float64 (y and h_T). A model
without a GRU has no such section."""

from __future__ import annotations

from typing import Any

import numpy as np

import impls
from impls.contract import limits
from impls.contract.spec import GRUWeights, random_array
from impls.model.description import Model
from impls.model.layers import spec_of
from impls.primitives import numpy_impl

from .checks import attempt, compare
from .inputs import INPUT_RANGE, SEEDS, Reference
from .per_voice import DTYPES


def has_gru(model: Model) -> bool:
    return any(la.kind == "gru" for la in model.layers)


def initial_state_checks(model: Model, ref: Reference, available: list[str]) -> list[dict[str, Any]]:
    """One row per GRU layer, voice and dtype: y and h_T against the reference, or why the voice has none."""
    rows = []
    for i, layer in enumerate(model.layers):
        if layer.kind != "gru":
            continue
        opts = spec_of("gru").options(layer.options)
        variant, H = opts["variant"], int(opts["units"])
        x64 = ref.ins[i]
        h0 = random_array((x64.shape[0], H), SEEDS["h0"] + i, "float64", *INPUT_RANGE)
        w64 = GRUWeights(*(np.asarray(layer.weights[k], "float64") for k in ("W", "U", "b_x", "b_h")))
        y_ref, h_ref = numpy_impl.gru(x64, w64, variant, h0)
        for voice in available:
            row: dict[str, Any] = {"layer": layer.name, "index": i, "variant": variant, "voice": voice,
                                   "h0_seed": SEEDS["h0"] + i}  # fmt: skip
            if variant not in impls.GRU_VARIANTS.get(voice, ()):
                rows.append({**row, "refused": f"{voice}'s GRU computes only {', '.join(impls.GRU_VARIANTS.get(voice, ()))}"})
                continue
            for dtype in DTYPES:
                why = limits.refusal(voice, "gru", dtype)
                if why:
                    rows.append({**row, "dtype": dtype, "refused": why})
                    continue
                got, problem = attempt(_gru, voice, x64, w64, variant, h0, dtype)
                if problem:
                    rows.append({**row, "dtype": dtype, **problem})
                    continue
                y, h = got
                cy, ch = compare(y, y_ref, dtype), compare(h, h_ref, dtype)
                rows.append({**row, "dtype": dtype, "y": cy, "h_T": ch, "pass": cy["pass"] and ch["pass"]})
    return rows


def _gru(voice: str, x: np.ndarray, w: GRUWeights, variant: str, h0: np.ndarray, dtype: str):
    ops = impls.backend(voice)
    y, h = ops.gru(ops.asarray(x, dtype), w.map(lambda a: ops.asarray(a, dtype)), variant, ops.asarray(h0, dtype))
    return ops.to_numpy(y), ops.to_numpy(h)


__all__ = ["has_gru", "initial_state_checks"]
