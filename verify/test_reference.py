"""The NumPy reference checked against independent, slower computations (scalar loops, np.correlate,
Python's math module), so the voice everything else is measured against is not taken on trust."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from impls.contract.spec import GRUWeights, init_conv, init_gru, random_array, same_pads
from impls.primitives import numpy_impl as ref


def _naive_conv2d(x, k, b, stride, padding, dilation=(1, 1), groups=1):
    B, H, W, _ = x.shape
    KH, KW, CG, O = k.shape
    sh, sw = stride
    dh, dw = dilation
    if padding == "same":
        (t, bo), (le, r) = same_pads(H, (KH - 1) * dh + 1, sh), same_pads(W, (KW - 1) * dw + 1, sw)
    elif padding == "valid":
        t = bo = le = r = 0
    else:
        (t, bo), (le, r) = padding
    OH, OW = (H + t + bo - (KH - 1) * dh - 1) // sh + 1, (W + le + r - (KW - 1) * dw - 1) // sw + 1
    per_group = O // groups
    y = np.zeros((B, OH, OW, O))
    for n, i, j, o in itertools.product(range(B), range(OH), range(OW), range(O)):
        acc = b[o]
        first = (o // per_group) * CG  # output o reads the input channels of its group
        for di, dj, c in itertools.product(range(KH), range(KW), range(CG)):
            hi, wj = i * sh + di * dh - t, j * sw + dj * dw - le
            if 0 <= hi < H and 0 <= wj < W:
                acc += x[n, hi, wj, first + c] * k[di, dj, c, o]
        y[n, i, j, o] = acc
    return y


@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [((2, 7, 6, 3), (3, 2, 3, 4), (1, 1), "valid"), ((1, 8, 7, 2), (3, 3, 2, 5), (2, 2), "same"),
     ((1, 9, 9, 2), (4, 4, 2, 3), (3, 3), "same"), ((2, 6, 9, 1), (2, 5, 1, 2), (2, 3), "valid")],
    ids=["s1-valid", "s2-same", "k4-s3-same-even-kernel", "s2x3-valid"],
)  # fmt: skip
def test_conv2d_matches_scalar_loops(shape, kernel, stride, padding):
    x = random_array(shape, 1)
    w = init_conv(*kernel, seed=2)
    got = ref.conv2d(x, w.kernel, w.bias, stride=stride, padding=padding)
    np.testing.assert_allclose(got, _naive_conv2d(x, w.kernel, w.bias, stride, padding), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "shape, kernel, stride, padding, dilation, groups",
    [((2, 7, 8, 4), (3, 2, 4, 6), (1, 1), "valid", (1, 1), 2), ((1, 8, 7, 3), (3, 3, 3, 6), (2, 2), "same", (1, 1), 3),
     ((1, 9, 8, 2), (3, 2, 2, 3), (1, 2), ((2, 0), (1, 3)), (2, 3), 1),
     ((2, 9, 10, 4), (3, 2, 4, 4), (2, 3), ((1, 2), (0, 1)), (1, 2), 2), ((1, 9, 8, 4), (3, 2, 4, 4), (1, 1), "same", (2, 1), 4)],
    ids=["groups2", "depthwise-x2-same", "dilated-explicit", "all-at-once", "depthwise-dilated-same"],
)  # fmt: skip
def test_conv2d_options_match_scalar_loops(shape, kernel, stride, padding, dilation, groups):
    x = random_array(shape, 3)
    w = init_conv(*kernel, seed=4, groups=groups)
    got = ref.conv2d(x, w.kernel, w.bias, stride, padding, dilation, groups)
    want = _naive_conv2d(x, w.kernel, w.bias, stride, padding, dilation, groups)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("padding", ["valid", "same", ((2, 0), (1, 1))])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avg_pool2d_matches_scalar_loops(padding, count_include_pad):
    x = random_array((2, 7, 5, 3), 5)
    got = ref.avg_pool2d(x, pool=(3, 2), stride=(2, 1), padding=padding, count_include_pad=count_include_pad)
    if padding == "same":
        (t, _), (le, _) = same_pads(7, 3, 2), same_pads(5, 2, 1)
    elif padding == "valid":
        t = le = 0
    else:
        (t, _), (le, _) = padding
    for n, i, j, c in itertools.product(*(range(d) for d in got.shape)):
        cells = [(hi, wj) for hi in range(i * 2 - t, i * 2 - t + 3) for wj in range(j - le, j - le + 2)]
        inside = [x[n, hi, wj, c] for hi, wj in cells if 0 <= hi < 7 and 0 <= wj < 5]
        want = sum(inside) / (len(cells) if count_include_pad else len(inside))
        assert abs(got[n, i, j, c] - want) < 1e-14


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_max_pool2d_matches_scalar_loops(padding):
    x = random_array((2, 7, 5, 3), 3)
    got = ref.max_pool2d(x, pool=(3, 2), stride=(2, 2), padding=padding)
    (t, _), (le, _) = same_pads(7, 3, 2), same_pads(5, 2, 2)
    if padding == "valid":
        t = le = 0
    for n, i, j, c in itertools.product(*(range(d) for d in got.shape)):
        window = [x[n, hi, wj, c] for hi in range(i * 2 - t, i * 2 - t + 3) for wj in range(j * 2 - le, j * 2 - le + 2)
                  if 0 <= hi < 7 and 0 <= wj < 5]  # fmt: skip
        assert got[n, i, j, c] == max(window)


def test_seed_conv1d_is_per_channel_correlation():
    """y_ij = sum_k w_ik x_i,j+k-1 + b_i is, per channel, NumPy's 'valid' cross-correlation."""
    x, w, b = random_array((2, 10, 3), 4), random_array((4, 3), 5), random_array((3,), 6)
    got = ref.seed_conv1d(x, w, b)
    for n, c in itertools.product(range(2), range(3)):
        np.testing.assert_allclose(got[n, :, c], np.correlate(x[n, :, c], w[:, c], mode="valid") + b[c], rtol=1e-13)


def test_seed_pool1d_is_window_two_stride_one_max():
    y = random_array((2, 6, 3), 7)
    got = ref.seed_pool1d(y)
    assert got.shape == (2, 5, 3)
    for j in range(5):
        np.testing.assert_array_equal(got[:, j], np.maximum(y[:, j], y[:, j + 1]))


def test_softmax_rows_sum_to_one_and_ignore_shifts():
    x = random_array((4, 7), 8, low=-50, high=50)
    p = ref.softmax(x)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(ref.softmax(x + 1000.0), p, rtol=1e-12)  # no overflow, shift-invariant


def _sig(v):
    return 1.0 / (1.0 + math.exp(-v))


@pytest.mark.parametrize("variant", ["seed", "reset_before", "reset_after", "chung"])
def test_gru_two_steps_by_hand_with_python_math(variant):
    """H = 1, I = 2, two steps, written out with Python floats and the math module."""
    w = init_gru(2, 1, seed=9)
    x = random_array((1, 2, 2), 10)
    W, U, bx, bh = w.W, w.U[0], w.b_x, w.b_h
    h = 0.4
    for t in range(2):
        xt = x[0, t]
        a = [float(xt @ W[:, g]) for g in range(3)]
        z = _sig(a[0] + bx[0] + U[0] * h + bh[0])
        r = _sig(a[1] + bx[1] + U[1] * h + bh[1])
        if variant == "reset_after":
            c = math.tanh(a[2] + bx[2] + r * (U[2] * h + bh[2]))
        else:
            c = math.tanh(a[2] + bx[2] + U[2] * (r * h) + bh[2])
        h = {"seed": ((1 - z) * h + r * c) / 2, "chung": (1 - z) * h + z * c}.get(variant, z * h + (1 - z) * c)
    y, hT = ref.gru(x, w, variant, h0=np.array([[0.4]]))
    assert abs(hT[0, 0] - h) < 1e-14 and y[0, -1, 0] == hT[0, 0]


def test_gru_weights_are_not_symmetric():
    """Guard for the test data itself: gate blocks differ, and I != H in the default sizes."""
    w = init_gru(5, 4, seed=0)
    z, r, h = np.split(w.W, 3, axis=1)
    assert not np.allclose(z, r) and not np.allclose(r, h) and w.W.shape != w.U.shape
    assert isinstance(w, GRUWeights)
