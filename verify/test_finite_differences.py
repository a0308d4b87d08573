"""The hand-written NumPy backward passes against central finite differences, in float64.

Each case is a tiny seeded problem and a scalar L = sum(dy * output) (+ sum(dh_T * h_T) for the GRU):
every input's gradient from the NumPy vjp is compared, element by element, with
(L(a + eps e_i) - L(a - eps e_i)) / (2 eps). The bar is the issue's: normwise relative error
max|vjp - fd| / max|fd| <= 1e-6 for every input. Central differences with eps = 1e-6 carry
~eps^2 truncation and ~1e-16 |L| / eps rounding error, both far below the bar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from impls.contract.models import init_seed_cnn, init_seed_gru
from impls.contract.spec import (
    VARIANTS,
    GRUWeights,
    init_conv,
    init_dense,
    init_gru,
    padding_label,
    random_array,
)
from impls.contract.tolerance import error_stats
from impls.model import seed as seed_models
from impls.primitives import numpy_impl as ref
from impls.train import numpy_train

FD_BAR = 1e-6  # the bar for finite differences
EPS = 1e-6


@dataclass(frozen=True)
class FDCase:
    name: str
    make: Callable[[], dict[str, np.ndarray]]  # seeded float64 inputs, cotangents included
    loss: Callable[[dict[str, np.ndarray]], float]  # the scalar L whose gradient the vjp gives
    vjp: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    wrt: tuple[str, ...]  # inputs checked (the vjp's keys)


def central_differences(loss, inputs: dict[str, np.ndarray], name: str) -> np.ndarray:
    a = inputs[name]
    grad = np.empty_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + EPS
        up = loss(inputs)
        a[i] = old - EPS
        down = loss(inputs)
        a[i] = old
        grad[i] = (up - down) / (2 * EPS)
    return grad


# --------------------------------------------------------------------------- GRU


def _gru_weights(a):
    return GRUWeights(a["W"], a["U"], a["b_x"], a["b_h"])


def _gru_case(B, T, I, H, variant, with_h0, dy, dh_T, seed):
    def make():
        w = init_gru(I, H, seed)
        d = {"x": random_array((B, T, I), seed + 1), "W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}
        if with_h0:
            d["h0"] = random_array((B, H), seed + 2, low=-0.8, high=0.8)
        if dy:
            d["dy"] = random_array((B, T, H), seed + 3)
        if dh_T:
            d["dh_T"] = random_array((B, H), seed + 4)
        return d

    def loss(a):
        y, h_T = ref.gru(a["x"], _gru_weights(a), variant, h0=a.get("h0"))
        return float(np.sum(a["dy"] * y) if "dy" in a else 0.0) + float(np.sum(a["dh_T"] * h_T) if "dh_T" in a else 0.0)

    def vjp(a):
        return ref.gru_vjp(a["x"], _gru_weights(a), variant, a.get("dy"), h0=a.get("h0"), dh_T=a.get("dh_T"))

    label = f"gru-{variant}-B{B}T{T}I{I}H{H}" + ("-h0" if with_h0 else "") + ("-dy" if dy else "") + ("-dhT" if dh_T else "")
    wrt = ("x", "W", "U", "b_x", "b_h") + (("h0",) if with_h0 else ())
    return FDCase(label, make, loss, vjp, wrt)


GRU_FD = [
    c
    for v in VARIANTS
    for c in (
        _gru_case(2, 3, 3, 2, v, True, True, True, 10),  # h0 given, both cotangents
        _gru_case(3, 4, 2, 3, v, False, True, False, 20),  # zero h0, dy only
        _gru_case(2, 2, 4, 3, v, True, False, True, 30),  # dy=None: only h_T is used
    )
]

# --------------------------------------------------------------------------- conv, pool, dense, activations


def _conv_case(B, H, W, C, KH, KW, O, stride, padding, seed, dilation=1, groups=1):
    opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}

    def make():
        k = init_conv(KH, KW, C, O, seed, groups=groups)
        x = random_array((B, H, W, C), seed + 1)
        oh, ow = ref.conv2d(x, k.kernel, k.bias, **opts).shape[1:3]
        return {"x": x, "kernel": k.kernel, "bias": k.bias, "dy": random_array((B, oh, ow, O), seed + 2)}

    return FDCase(
        f"conv2d-B{B}H{H}W{W}C{C}K{KH}x{KW}O{O}-s{stride}-{padding_label(padding)}-d{dilation}-g{groups}",
        make,
        lambda a: float(np.sum(a["dy"] * ref.conv2d(a["x"], a["kernel"], a["bias"], **opts))),
        lambda a: ref.conv2d_vjp(a["x"], a["kernel"], a["bias"], a["dy"], **opts),
        ("x", "kernel", "bias"),
    )


CONV_FD = [
    _conv_case(2, 5, 6, 2, 3, 2, 3, 1, "valid", 100),
    _conv_case(2, 5, 6, 2, 3, 2, 3, 1, "same", 110),
    _conv_case(1, 8, 6, 2, 3, 3, 2, 2, "valid", 120),  # stride 2: the last row of x is read by no window
    _conv_case(1, 7, 6, 2, 3, 3, 2, 2, "same", 130),
    _conv_case(1, 6, 7, 1, 2, 3, 2, (2, 3), "same", 140),
    _conv_case(2, 5, 6, 4, 3, 2, 6, 1, "valid", 150, groups=2),  # grouped
    _conv_case(1, 6, 5, 3, 3, 3, 6, 2, "same", 160, groups=3),  # depthwise, channel multiplier 2
    _conv_case(1, 7, 8, 2, 3, 2, 3, 1, ((2, 0), (1, 3)), 170, dilation=(2, 3)),  # dilated, asymmetric pads
    _conv_case(1, 7, 8, 4, 2, 3, 4, (2, 1), ((0, 1), (2, 1)), 180, dilation=(1, 2), groups=2),
]


def _pool_case(B, H, W, C, pool, stride, padding, seed, op="max_pool2d", **flag):
    def make():
        x = random_array((B, H, W, C), seed)  # continuous values: no ties, so L is smooth near x
        oh, ow = getattr(ref, op)(x, pool, stride, padding, **flag).shape[1:3]
        return {"x": x, "dy": random_array((B, oh, ow, C), seed + 1)}

    return FDCase(
        f"{op}-B{B}H{H}W{W}C{C}-p{pool}-s{stride}-{padding_label(padding)}" + "".join(f"-{k}{v}" for k, v in flag.items()),
        make,
        lambda a: float(np.sum(a["dy"] * getattr(ref, op)(a["x"], pool, stride, padding, **flag))),
        lambda a: getattr(ref, f"{op}_vjp")(a["x"], a["dy"], pool, stride, padding, **flag),
        ("x",),
    )


POOL_FD = [
    _pool_case(2, 4, 6, 2, 2, None, "valid", 200),
    _pool_case(1, 5, 7, 2, 2, None, "same", 210),
    _pool_case(1, 6, 5, 2, 3, 1, "valid", 220),  # overlapping windows: one input can win several
    _pool_case(1, 5, 6, 1, 3, 2, "same", 230),
    _pool_case(1, 6, 7, 2, 3, 2, ((1, 2), (0, 1)), 240),  # explicit pads: -inf never wins
    _pool_case(1, 5, 7, 2, 3, 2, "same", 250, "avg_pool2d", count_include_pad=False),
    _pool_case(1, 5, 7, 2, 3, 2, "same", 260, "avg_pool2d", count_include_pad=True),
    _pool_case(2, 5, 6, 1, (2, 3), 1, ((1, 0), (0, 2)), 270, "avg_pool2d", count_include_pad=False),
    _pool_case(1, 6, 5, 2, 3, (1, 2), ((1, 1), (2, 0)), 280, "avg_pool2d", count_include_pad=True),
]


def _dense_case(shape, n_out, seed):
    def make():
        d = init_dense(shape[-1], n_out, seed)
        return {"x": random_array(shape, seed + 1), "kernel": d.kernel, "bias": d.bias,
                "dy": random_array((*shape[:-1], n_out), seed + 2)}  # fmt: skip

    return FDCase(
        "dense-x" + "x".join(map(str, shape)) + f"-out{n_out}",
        make,
        lambda a: float(np.sum(a["dy"] * ref.dense(a["x"], a["kernel"], a["bias"]))),
        lambda a: ref.dense_vjp(a["x"], a["kernel"], a["bias"], a["dy"]),
        ("x", "kernel", "bias"),
    )


DENSE_FD = [_dense_case((3, 5), 4, 300), _dense_case((2, 3, 4), 2, 310)]


def _relu_make():
    g = np.random.default_rng(400)
    x = g.uniform(0.1, 2.0, (4, 6)) * g.choice([-1.0, 1.0], (4, 6))  # |x| >= 0.1: away from the kink
    return {"x": x, "dy": random_array((4, 6), 401)}


def _ce_make():
    g = np.random.default_rng(410)
    onehot = np.eye(5)[g.integers(0, 5, 6)]
    return {"logits": random_array((6, 5), 411, low=-3.0, high=3.0), "onehot": onehot}


def _softmax_make():
    return {"x": random_array((3, 5), 420, low=-2.0, high=2.0), "dy": random_array((3, 5), 421)}


ACT_FD = [
    FDCase("relu-x4x6", _relu_make, lambda a: float(np.sum(a["dy"] * ref.relu(a["x"]))),
           lambda a: ref.relu_vjp(a["x"], a["dy"]), ("x",)),
    FDCase("softmax-x3x5", _softmax_make, lambda a: float(np.sum(a["dy"] * ref.softmax(a["x"]))),
           lambda a: {"x": ref.softmax_vjp(ref.softmax(a["x"]), a["dy"])}, ("x",)),
    FDCase("softmax_cross_entropy-x6x5", _ce_make, lambda a: float(ref.softmax_cross_entropy(a["logits"], a["onehot"])),
           lambda a: ref.softmax_cross_entropy_vjp(a["logits"], a["onehot"]), ("logits",)),
]  # fmt: skip

FD_CASES = GRU_FD + CONV_FD + POOL_FD + DENSE_FD + ACT_FD


@pytest.mark.parametrize("case", FD_CASES, ids=[c.name for c in FD_CASES])
def test_vjp_matches_central_differences(case: FDCase):
    inputs = case.make()
    grads = case.vjp({k: v.copy() for k, v in inputs.items()})
    assert set(case.wrt) <= set(grads), f"{case.name}: vjp returned {sorted(grads)}, expected {case.wrt}"
    for name in case.wrt:
        fd = central_differences(case.loss, inputs, name)
        assert np.abs(fd).max() > 1e-3, f"{case.name}: d L / d {name} is ~0, the check would be vacuous"
        s = error_stats(grads[name], fd)
        assert s.rel <= FD_BAR, (
            f"{case.name}: d L / d {name}: relative error {s.rel:.2e} > {FD_BAR:.0e}; worst at {s.worst_index}: "
            f"vjp {s.actual!r}, finite differences {s.expected!r}"
        )


@pytest.mark.parametrize("variant", ["seed", "reset_before"])
def test_gru_bias_gradients_equal_where_only_their_sum_appears(variant):
    """In the seed and reset_before variants b_x and b_h enter only as b_x + b_h, so the two
    gradients must coincide; in reset_after the candidate's b_hh sits inside r * (.), so they differ."""
    x, w, dy = random_array((2, 4, 3), 1), init_gru(3, 5, 2), random_array((2, 4, 5), 3)
    g = ref.gru_vjp(x, w, variant, dy)
    np.testing.assert_allclose(g["b_x"], g["b_h"], rtol=1e-13, atol=1e-15)
    g_after = ref.gru_vjp(x, w, "reset_after", dy)
    H = 5
    np.testing.assert_allclose(g_after["b_x"][: 2 * H], g_after["b_h"][: 2 * H], rtol=1e-13, atol=1e-15)
    assert np.abs(g_after["b_x"][2 * H :] - g_after["b_h"][2 * H :]).max() > 1e-3


# --------------------------------------------------------------------------- the seed models' training loss


def _small_model(model: str):
    g = np.random.default_rng(500)
    if model == "gru":
        params = init_seed_gru(501, input_size=4, units=(3, 2), classes=4)
        x = random_array((3, 5, 4), 502, low=-2.0, high=2.0)
    else:
        params = init_seed_cnn(501, image=(14, 14, 2), filters=(2, 3), dense_units=5, classes=4)
        x = random_array((3, 14, 14, 2), 502, low=0.0, high=1.0)
    return params, x, np.eye(4)[g.integers(0, 4, 3)]


@pytest.mark.parametrize("model", ["gru", "cnn"])
def test_seed_model_loss_gradient_matches_central_differences(model):
    """numpy_train's whole-model backward (the vjps chained through softmax and Keras' clipped
    cross-entropy) against central differences of the loss, every parameter, tiny sizes."""
    params, x, onehot = _small_model(model)
    fn = numpy_train.seed_gru_loss_and_grads if model == "gru" else numpy_train.seed_cnn_loss_and_grads
    leaves = {str(i): a.copy() for i, a in enumerate(numpy_train.leaves(params))}

    forward = seed_models.reference_model

    def loss(a):  # forward only: the model's probabilities, then the loss
        probs = forward(numpy_train.rebuild(params, [a[str(i)] for i in range(len(a))]))(x)
        return float(numpy_train.keras_categorical_crossentropy(probs, onehot)[0])

    _, grads = fn(params, x, onehot)
    for i, g in enumerate(numpy_train.leaves(grads)):
        fd = central_differences(loss, leaves, str(i))
        s = error_stats(g, fd)
        assert s.rel <= FD_BAR, f"{model} parameter {i} {g.shape}: relative error {s.rel:.2e} > {FD_BAR:.0e}"
