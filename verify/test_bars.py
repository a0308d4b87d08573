"""Bars that bite: for every precision in impls/contract/tolerance.py, the comparison rejects an error of the size the
bar exists to catch and accepts an honest computation in that precision; and no bar is looser than its own
documented calibration (tolerance.CALIBRATION, read here, never copied).

The computation is one GRU layer at the seed's sizes (B 2, T 100, I 64, H 128, reset_after), compared with
NumPy float64 on the same dtype-rounded inputs, as everywhere. Arithmetic per precision: float64 and
float32 in NumPy and torch; float16 and bfloat16 in torch on the CPU; TF32 (a GPU mode) emulated in NumPy
by rounding every matrix product's operands to 10 fraction bits and accumulating in float32. The honest
errors go into the headroom table of the verification summary (voice "torch", or "numpy" for the TF32
emulation).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from impls.contract.inputs import round_mantissa, round_to
from impls.contract.spec import GRUWeights, init_gru, random_array
from impls.contract.tolerance import (
    CALIBRATED_FACTOR,
    CALIBRATED_FACTOR_MEASURED,
    CALIBRATION,
    OVERRIDE_CALIBRATION,
    OVERRIDES,
    TOLERANCES,
    assert_close,
    calibrated_tolerance,
    error_stats,
    tolerance,
)
from impls.primitives import numpy_impl as ref
from impls.train import numpy_train
from verify.conftest import load, load_framework
from verify.headroom import check

B, T, I, H = 2, 100, 64, 128
X, W = random_array((B, T, I), 1), init_gru(I, H, 2)
VARIANT = "reset_after"
PRECISIONS = tuple(TOLERANCES)


def flipped_gates(w: GRUWeights) -> GRUWeights:
    """The realistic bug: the update and reset gates swapped (z, r, h read as r, z, h), as a wrong gate order
    in a converter or a kernel does."""

    def swap(a):
        z, r, h = np.split(np.asarray(a), 3, axis=-1)
        return np.concatenate([r, z, h], axis=-1)

    return GRUWeights(*(swap(getattr(w, k)) for k in ("W", "U", "b_x", "b_h")))


class TF32(np.ndarray):
    """float32 arrays whose matrix products round both operands to TF32's 10 fraction bits first (what a
    tensor core does with float32 storage), accumulating in float32; other ufuncs run in float32."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [np.asarray(a, dtype=np.float32) if isinstance(a, np.ndarray) else a for a in inputs]
        if ufunc is np.matmul:
            args = [round_mantissa(a, 10).astype(np.float32) for a in args]
        out = getattr(ufunc, method)(*args, **kwargs)
        return out.view(TF32) if isinstance(out, np.ndarray) else out


def _tf32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).view(TF32)


def run(precision: str, w: GRUWeights) -> np.ndarray:
    """One GRU layer computed in `precision`'s arithmetic, as float64 NumPy."""
    if precision == "tf32":
        y = ref.gru(_tf32(X), w.map(_tf32), VARIANT)[0]
        return np.asarray(y, dtype=np.float64)
    mod = load("torch")
    return mod.to_numpy(mod.gru(mod.asarray(X, precision), w.map(lambda a: mod.asarray(a, precision)), VARIANT)[0]).astype(np.float64)


@cache
def reference(precision: str) -> np.ndarray:
    """NumPy float64 on the inputs as `precision` holds them (TF32 stores float32)."""
    held = round_to({"x": X, "w": W}, "float32" if precision == "tf32" else precision)
    return ref.gru(held["x"], held["w"], VARIANT)[0]


BUGS = {  # precision: the realistic errors its bar must reject, besides a flipped gate
    "float64": {"float32 arithmetic": lambda: run("float32", W)},
    "float32": {"float16 arithmetic": lambda: ref.gru(X.astype(np.float16), W.map(lambda a: a.astype(np.float16)), VARIANT)[0]},
}


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_bar_is_no_looser_than_its_calibration(precision):
    c = CALIBRATION[precision]
    assert tolerance(precision) <= c.bar * (1 + 1e-12), (
        f"{precision}: the bar {tolerance(precision):.3g} is looser than its calibration {c.units:g} u = {c.bar:.3g} "
        f"({c.reason})")  # fmt: skip
    finfo = {"float64": np.finfo(np.float64).nmant, "float32": np.finfo(np.float32).nmant,
             "float16": np.finfo(np.float16).nmant, "tf32": 10}  # fmt: skip
    if precision == "bfloat16":
        torch = load_framework("torch")
        finfo["bfloat16"] = -int(np.log2(torch.finfo(torch.bfloat16).eps))
    assert c.mantissa_bits == finfo[precision], f"{precision} keeps {finfo[precision]} fraction bits, not {c.mantissa_bits}"


def test_the_float32_recurrence_factor_is_no_looser_than_its_calibration():
    """bench's calibrated bar for ill-conditioned float32 recurrences: max(table, factor x NumPy's own float32
    error); the factor is at most twice the largest spread measured between summation orders."""
    assert CALIBRATED_FACTOR <= 2 * CALIBRATED_FACTOR_MEASURED
    assert calibrated_tolerance("float32", "gru", 1e-5) == max(tolerance("float32"), CALIBRATED_FACTOR * 1e-5)


def test_every_precision_and_override_has_a_calibration():
    assert set(CALIBRATION) == set(TOLERANCES)
    assert set(OVERRIDE_CALIBRATION) == set(OVERRIDES)


def test_the_adam_override_is_no_looser_than_its_calibration():
    """Keras hands float64 Adam beta_1 and beta_2 through float32: its step size lr sqrt(1 - b2^t) / (1 - b1^t)
    is off by a relative eps_alpha, computed here; the override allows factor x lr x eps_alpha."""
    lr, b1, b2 = 1e-3, 0.9, 0.999
    f1, f2 = float(np.float32(b1)), float(np.float32(b2))
    eps_alpha = abs((np.sqrt(1 - f2) / (1 - f1)) / (np.sqrt(1 - b2) / (1 - b1)) - 1)
    assert 1e-6 < eps_alpha < 1e-4
    factor, basis = OVERRIDE_CALIBRATION[("adam_step", "float64")]
    assert OVERRIDES[("adam_step", "float64")][0] <= factor * lr * eps_alpha, basis
    assert numpy_train.DEFAULT_EPS["keras"] < 1e-6  # the step is m / (sqrt(v) + eps) ~ 1 in size at step 1


def test_the_error_measure_is_normwise_and_relative_to_the_reference():
    """max|actual - expected| / max|expected|, the expected being the float64 reference: an output 3x too large
    is off by 2 (not 2/3, as scaling by the actual would say), one too small by 2/3; NaN where the reference
    has none is infinitely off."""
    y = reference("float64")
    assert error_stats(3 * y, y).rel == pytest.approx(2.0, rel=1e-12)
    assert error_stats(y / 3, y).rel == pytest.approx(2 / 3, rel=1e-12)
    off = y.copy()
    off[0, 3, 5] = np.nan
    assert error_stats(off, y).rel == float("inf")
    with pytest.raises(AssertionError, match="shape mismatch"):
        error_stats(y[:, :-1], y)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_comparison_rejects_ten_times_the_bar_and_accepts_a_tenth(precision):
    """The measure is sharp at the bar: one element off by 10x the bar (relative to max|ref|) fails, 0.1x passes."""
    y = reference("float64")
    bar, scale = tolerance(precision), np.abs(y).max()
    off = y.copy()
    off[1, 57, 3] += 10 * bar * scale
    with pytest.raises(AssertionError, match=r"1 of \d+ elements off"):
        assert_close(off, y, precision, what="10x the bar")
    off[1, 57, 3] = y[1, 57, 3] + 0.1 * bar * scale
    assert_close(off, y, precision, what="a tenth of the bar")


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_bar_accepts_honest_arithmetic_and_rejects_a_flipped_gate(precision):
    honest = run(precision, W)
    check(honest, reference(precision), precision, "numpy" if precision == "tf32" else "torch", "gru",
          f"GRU B{B}T{T}I{I}H{H} in {precision} arithmetic")  # fmt: skip
    bug = error_stats(run(precision, flipped_gates(W)), reference(precision))
    assert bug.rel > tolerance(precision), f"{precision}: a flipped gate ({bug.rel:.2e}) passes the bar {tolerance(precision):.0e}"


@pytest.mark.parametrize("precision, bug", [(p, b) for p, bugs in BUGS.items() for b in bugs])
def test_the_bar_rejects_a_lower_precision_hiding_in_its_path(precision, bug):
    got = BUGS[precision][bug]()
    err = error_stats(got, reference(precision))
    assert err.rel > tolerance(precision), f"{precision}: {bug} ({err.rel:.2e}) passes the bar {tolerance(precision):.0e}"
