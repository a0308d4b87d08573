"""Every implementation's vector-Jacobian products against the NumPy float64 backward (itself checked
against finite differences in test_finite_differences.py), plus the conventions where voices may
legitimately differ, each stated per implementation and checked by running it:
- max_pool2d with deliberate ties: which tied input receives dy;
- relu at exactly 0 (a subgradient each voice chooses);
- NaN in the input: which gradient entries become NaN (and the two ops whose gradient does not
  simply propagate NaN: relu and max_pool2d);
- a cotangent of the wrong shape: a ShapeError naming both shapes.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls.contract.inputs import round_to, to_native
from impls.contract.spec import ShapeError, init_conv, init_dense, init_gru, random_array
from impls.primitives import numpy_impl as ref
from verify.cases import matrix, voices
from verify.conftest import load
from verify.conv_cases import OPTION_VJP_CASES
from verify.grad_cases import VJP_CASES
from verify.headroom import check


def _numpy_dict(mod, out: dict) -> dict[str, np.ndarray]:
    return {k: mod.to_numpy(v) for k, v in out.items()}


@pytest.mark.parametrize("case, impl, dtype", matrix(VJP_CASES + OPTION_VJP_CASES))
def test_vjp_matches_float64_reference(case, impl, dtype):
    mod = load(impl)
    inputs = case.make()
    expected = _numpy_dict(ref, case.call(ref, round_to(inputs, dtype)))
    got = _numpy_dict(mod, case.call(mod, to_native(mod, inputs, dtype)))
    assert set(got) == set(expected), f"{case.id(impl, dtype)}: returned {sorted(got)}, expected {sorted(expected)}"
    for name, e in expected.items():
        g = got[name]
        assert g.dtype == dtype, f"{case.id(impl, dtype)}: gradient {name!r} has dtype {g.dtype}, asked for {dtype}"
        check(g, e, dtype, impl, work=case.op, what=f"{case.id(impl, dtype)} d/d{name}")


# --------------------------------------------------------------------------- max_pool2d: ties on purpose

# (1, 4, 6, 1) image, 2x2 windows, stride 2: six windows, five of them with ties of 2, 3 or 4 equal maxima.
TIE_IMAGE = np.array(
    [
        [1.0, 3.0, 3.0, 3.0, 0.0, 2.0],  # windows: [[1,3],[3,0]] diagonal tie, [[3,3],[3,3]] four-way tie,
        [3.0, 0.0, 3.0, 3.0, 1.0, 2.0],  #          [[0,2],[1,2]] vertical tie
        [5.0, 5.0, -1.0, 4.0, -2.0, -2.0],  # [[5,5],[1,1]] horizontal tie, [[-1,4],[2,0]] no tie,
        [1.0, 1.0, 2.0, 0.0, -2.0, -3.0],  #  [[-2,-2],[-2,-3]] three-way tie among negatives
    ]
)[None, :, :, None]

TIE_ROUTING = {  # how each voice routes a window's dy among tied maxima, with the reason
    "numpy": "first",  # np.argmax over the row-major window picks the first maximum (our convention)
    "torch_nn": "first",  # max_pool2d's CPU kernel keeps the first maximum it meets (strict >) and its index
    "keras": "first",  # TensorFlow's MaxPoolGrad (CPU) sends dy to the first maximum in the window
    "torch": "split",  # built from torch.amax, whose backward divides dy evenly among the tied maxima
    "tensorflow": "split",  # built from tf.reduce_max, whose gradient divides dy evenly among tied maxima
    "jax": "first",  # lax.reduce_window(max)'s transpose is select_and_scatter_add with >=: the first maximum
    "flax": "first",  # nn.max_pool is that same lax.reduce_window
}


def tie_routing(x: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> str:
    """Name the rule a max_pool2d (2x2, stride 2) gradient followed in every window with tied maxima:
    'first' / 'last' (all of dy to the first / last maximum in row-major order), 'split' (dy / k to each
    of k), 'all' (dy to each); anything else is reported as it is."""
    rules = set()
    for oh in range(dy.shape[1]):
        for ow in range(dy.shape[2]):
            win = x[0, 2 * oh : 2 * oh + 2, 2 * ow : 2 * ow + 2, 0].ravel()
            got = dx[0, 2 * oh : 2 * oh + 2, 2 * ow : 2 * ow + 2, 0].ravel()
            tied = np.flatnonzero(win == win.max())
            if len(tied) < 2:
                continue
            d = dy[0, oh, ow, 0]
            candidates = {}
            for name, idx, share in (("first", tied[:1], d), ("last", tied[-1:], d),
                                     ("split", tied, d / len(tied)), ("all", tied, d)):  # fmt: skip
                want = np.zeros(4)
                want[idx] = share
                candidates[name] = want
            match = [n for n, want in candidates.items() if np.allclose(got, want, rtol=1e-12, atol=0)]
            rules.add(match[0] if match else f"other{got.tolist()} for window {win.tolist()}")
    return rules.pop() if len(rules) == 1 else "mixed: " + ", ".join(sorted(rules))


@pytest.mark.parametrize("impl", voices("max_pool2d_vjp"))
def test_max_pool2d_ties_route_as_declared(impl):
    mod = load(impl)
    dy = np.arange(1.0, 7.0).reshape(1, 2, 3, 1)  # a distinct cotangent per window
    expected_forward = ref.max_pool2d(TIE_IMAGE, 2)
    y = mod.to_numpy(mod.max_pool2d(mod.asarray(TIE_IMAGE, "float64"), 2))
    np.testing.assert_array_equal(y, expected_forward)
    dx = mod.to_numpy(mod.max_pool2d_vjp(mod.asarray(TIE_IMAGE, "float64"), mod.asarray(dy, "float64"), 2)["x"])
    np.testing.assert_allclose(dx.sum(), dy.sum(), rtol=1e-12, err_msg=f"{impl}: the pool gradient must conserve dy")
    rule = tie_routing(TIE_IMAGE, dx, dy)
    assert rule == TIE_ROUTING[impl], f"{impl} routes tied maxima by {rule!r}; declared {TIE_ROUTING[impl]!r}"


# --------------------------------------------------------------------------- relu at exactly 0


RELU_AT_ZERO = {  # relu's gradient at exactly 0 (and -0.0): "0", "dy" or "dy/2"
    "numpy": "0",  # our convention: dy * (x > 0)
    "torch_nn": "0",  # nn.ReLU -> threshold_backward: 0 where x <= 0
    "keras": "0",  # keras ReLU -> tf.nn.relu -> ReluGrad: dy * (x > 0)
    "torch": "dy/2",  # built as torch.maximum(x, 0), whose backward splits dy evenly between tied arguments
    "tensorflow": "dy",  # built as tf.maximum(x, 0), whose gradient goes to x wherever x >= 0
    "jax": "dy/2",  # built as jnp.maximum(x, 0), whose JVP splits evenly between tied arguments
    "flax": "0",  # nn.relu is jax.nn.relu, whose custom JVP is dy * (x > 0)
}


@pytest.mark.parametrize("impl", voices("relu_vjp"))
def test_relu_gradient_at_zero_follows_declared_convention(impl):
    """relu is not differentiable at 0; each voice picks a subgradient (declared above, checked here).
    Away from 0, even at +-1e-300, every voice gives dy * (x > 0)."""
    mod = load(impl)
    x = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0], [0.0, -1e-300, 0.5, 0.0, -4.0]])
    dy = np.arange(1.0, 11.0).reshape(2, 5)
    got = mod.to_numpy(mod.relu_vjp(mod.asarray(x, "float64"), mod.asarray(dy, "float64"))["x"])
    at0 = x == 0
    np.testing.assert_array_equal(got[~at0], np.where(x > 0, dy, 0.0)[~at0], err_msg=f"{impl}: relu gradient off 0")
    rules = {"0": 0.0 * dy, "dy": dy, "dy/2": dy / 2}
    rule = next((n for n, want in rules.items() if np.array_equal(got[at0], want[at0])), f"other {got[at0].tolist()}")
    assert rule == RELU_AT_ZERO[impl], f"{impl}: relu gradient at 0 is {rule!r}; declared {RELU_AT_ZERO[impl]!r}"


# --------------------------------------------------------------------------- NaN in the input


def _nan_cases():
    """(name, numpy inputs with one NaN, call, what the NaN must reach in the gradients)."""
    B, T, I, H = 3, 4, 5, 2
    x = random_array((B, T, I), 1)
    x[0, 1, 2] = np.nan
    w = init_gru(I, H, 2)
    gru = ({"x": x, "weights": w, "dy": random_array((B, T, H), 3)},
           lambda m, a: m.gru_vjp(a["x"], a["weights"], "reset_after", a["dy"]))  # fmt: skip
    xc = random_array((2, 5, 6, 3), 4)
    xc[1, 2, 3, 1] = np.nan
    k = init_conv(3, 3, 3, 2, 5)
    conv = ({"x": xc, "kernel": k.kernel, "bias": k.bias, "dy": random_array((2, 3, 4, 2), 6)},
            lambda m, a: m.conv2d_vjp(a["x"], a["kernel"], a["bias"], a["dy"]))  # fmt: skip
    xd = random_array((4, 6), 7)
    xd[1, 2] = np.nan
    d = init_dense(6, 3, 8)
    dense = ({"x": xd, "kernel": d.kernel, "bias": d.bias, "dy": random_array((4, 3), 9)},
             lambda m, a: m.dense_vjp(a["x"], a["kernel"], a["bias"], a["dy"]))  # fmt: skip
    logits = random_array((3, 5), 10)
    logits[2, 4] = np.nan
    xent = ({"logits": logits, "onehot": np.eye(5)[[1, 0, 3]]},
            lambda m, a: m.softmax_cross_entropy_vjp(a["logits"], a["onehot"]))  # fmt: skip
    return {"gru_vjp": gru, "conv2d_vjp": conv, "dense_vjp": dense, "softmax_cross_entropy_vjp": xent}


NAN_CASES = _nan_cases()


def _expected_nan_pattern(op: str, g: dict[str, np.ndarray]) -> None:
    """What NaN must reach, derived from the equations (asserted on the reference first)."""
    nan = {k: np.isnan(v) for k, v in g.items()}
    if op == "gru_vjp":  # NaN in x[0, 1]: h_t of batch row 0 is NaN from t = 1 on, so every summed weight
        # gradient is NaN, and x's and h0's gradients are NaN in batch row 0 only (BPTT carries it back to t=0)
        assert all(nan[k].all() for k in ("W", "U", "b_x", "b_h"))
        assert nan["x"][0].all() and not nan["x"][1:].any() and nan["h0"][0].all() and not nan["h0"][1:].any()
    elif op == "conv2d_vjp":  # NaN in x[1, 2, 3, channel 1]: only kernel[..., 1, :] reads it;
        # the bias gradient and x's gradient (dy times the kernel) never read x
        assert nan["kernel"][:, :, 1, :].any() and not nan["kernel"][:, :, [0, 2], :].any()
        assert not nan["bias"].any() and not nan["x"].any()
    elif op == "dense_vjp":  # NaN in x[1, 2]: row 2 of the kernel gradient (x^T dy); bias and x gradients clean
        assert nan["kernel"][2].all() and not np.delete(nan["kernel"], 2, axis=0).any()
        assert not nan["bias"].any() and not nan["x"].any()
    elif op == "softmax_cross_entropy_vjp":  # NaN in logits[2]: that row's softmax is NaN, other rows clean
        assert nan["logits"][2].all() and not nan["logits"][:2].any()


@pytest.mark.parametrize("op", list(NAN_CASES))
@pytest.mark.parametrize("impl", voices("gru_vjp"))
def test_nan_input_propagates_to_nan_gradients(impl, op):
    """NaN in the input propagates to NaN in exactly the gradient entries that read it, in every voice."""
    mod = load(impl)
    inputs, call = NAN_CASES[op]
    expected = _numpy_dict(ref, call(ref, inputs))
    _expected_nan_pattern(op, expected)
    got = _numpy_dict(mod, call(mod, to_native(mod, inputs, "float64")))
    for name, e in expected.items():
        np.testing.assert_array_equal(
            np.isnan(got[name]), np.isnan(e), err_msg=f"{impl} {op}: NaN pattern of d/d{name} differs from NumPy's"
        )


RELU_AT_NAN = {  # relu's gradient where x is NaN: "0" (dy * (x > 0)) or "dy" (passed through)
    "numpy": "0",  # our convention, dy * (x > 0), as TensorFlow's ReluGrad
    "tensorflow": "0",  # ReluGrad: gradients * (features > 0)
    "keras": "0",  # keras ReLU -> tf.nn.relu -> ReluGrad
    "torch": "dy",  # threshold_backward zeroes where x <= 0, and NaN <= 0 is False
    "torch_nn": "dy",  # nn.ReLU: the same threshold_backward
    "jax": "0",  # jnp.maximum(x, 0)'s JVP selects by comparisons, and every comparison with NaN is false
    "flax": "0",  # jax.nn.relu's custom JVP: dy * (x > 0), false for NaN
}
POOL_AT_NAN = {  # max_pool2d over a window [[1, NaN], [NaN, 2]] (forward value -> where dy goes)
    "numpy": "nan->first NaN",  # np.max propagates NaN; np.argmax picks the first NaN
    "torch_nn": "nan->last NaN",  # the CPU kernel takes every NaN it meets (val > max || isnan(val)): the last
    "keras": "2->the 2",  # TensorFlow's MaxPool ignores NaN here: the window's max is 2 and dy goes there
    "torch": "nan->NaN everywhere",  # torch.amax is NaN; its backward, dy * (x == max) / count, is 0/0 = NaN
    "tensorflow": "nan->NaN everywhere",  # tf.reduce_max is NaN; its gradient divides by a count of 0: NaN
    "jax": "nan->the 2",  # reduce_window's max is NaN, but select_and_scatter_add's >= is false for NaN: the 2
    "flax": "nan->the 2",  # nn.max_pool: the same reduce_window
}


def _pool_nan_rule(y: float, dx: np.ndarray) -> str:
    where = {(0, 1): "first NaN", (1, 0): "last NaN", (1, 1): "the 2", (0, 0): "the 1"}
    if np.isnan(dx).all():
        hit = ["NaN everywhere"]
    else:
        hit = [where[tuple(int(i) for i in ix)] for ix in np.argwhere(dx != 0)]
    return ("nan" if np.isnan(y) else f"{y:g}") + "->" + (", ".join(hit) if hit else "nowhere")


@pytest.mark.parametrize("impl", voices("relu_vjp"))
def test_relu_and_max_pool2d_at_nan_follow_declared_conventions(impl):
    """The two ops whose gradient only compares x's values: with a NaN input, the built-in kernels and our
    NumPy do not produce NaN gradients; the NaN decides where dy goes, and the voices disagree. The
    from-primitives max (amax / reduce_max) does turn the whole window's gradient into NaN. Declared above,
    checked here."""
    mod = load(impl)
    x = np.array([[-1.0, np.nan, 2.0]])
    g = mod.to_numpy(mod.relu_vjp(mod.asarray(x, "float64"), mod.asarray(np.full((1, 3), 5.0), "float64"))["x"])
    rule = {0.0: "0", 5.0: "dy"}.get(float(g[0, 1]), f"other ({g[0, 1]})")
    assert rule == RELU_AT_NAN[impl], f"{impl}: relu gradient at NaN is {rule!r}; declared {RELU_AT_NAN[impl]!r}"
    assert g[0, 0] == 0.0 and g[0, 2] == 5.0

    xp = np.array([[1.0, np.nan], [np.nan, 2.0]])[None, :, :, None]
    xn = mod.asarray(xp, "float64")
    y = float(mod.to_numpy(mod.max_pool2d(xn, 2)).ravel()[0])
    dx = mod.to_numpy(mod.max_pool2d_vjp(xn, mod.asarray(np.ones((1, 1, 1, 1)), "float64"), 2)["x"])[0, :, :, 0]
    rule = _pool_nan_rule(y, dx)
    assert rule == POOL_AT_NAN[impl], f"{impl}: max_pool2d at NaN does {rule!r}; declared {POOL_AT_NAN[impl]!r}"


# --------------------------------------------------------------------------- a cotangent of the wrong shape


def _bad_dy_calls():
    """(name, numpy inputs, call, the wrong shape passed, the right shape)."""
    x, w = random_array((2, 3, 4), 1), init_gru(4, 5, 2)
    k, d = init_conv(3, 3, 2, 4, 3), init_dense(6, 3, 4)
    xi = random_array((1, 6, 7, 2), 5)
    return {
        "gru_vjp-dy": ({"x": x, "weights": w, "dy": np.zeros((2, 3, 6))}, (2, 3, 6), (2, 3, 5),
                       lambda m, a: m.gru_vjp(a["x"], a["weights"], "reset_after", a["dy"])),
        "gru_vjp-dh_T": ({"x": x, "weights": w, "dy": np.zeros((2, 3, 5)), "dh": np.zeros((3, 5))}, (3, 5), (2, 5),
                         lambda m, a: m.gru_vjp(a["x"], a["weights"], "reset_after", a["dy"], dh_T=a["dh"])),
        "conv2d_vjp": ({"x": xi, "k": k.kernel, "b": k.bias, "dy": np.zeros((1, 5, 4, 4))}, (1, 5, 4, 4), (1, 4, 5, 4),
                       lambda m, a: m.conv2d_vjp(a["x"], a["k"], a["b"], a["dy"])),
        "max_pool2d_vjp": ({"x": xi, "dy": np.zeros((1, 3, 3, 1))}, (1, 3, 3, 1), (1, 3, 3, 2),
                           lambda m, a: m.max_pool2d_vjp(a["x"], a["dy"], 2)),
        "dense_vjp": ({"x": random_array((4, 6), 6), "k": d.kernel, "b": d.bias, "dy": np.zeros((3, 4))}, (3, 4), (4, 3),
                      lambda m, a: m.dense_vjp(a["x"], a["k"], a["b"], a["dy"])),
        "relu_vjp": ({"x": random_array((4, 6), 7), "dy": np.zeros((4, 6, 1))}, (4, 6, 1), (4, 6),
                     lambda m, a: m.relu_vjp(a["x"], a["dy"])),
    }  # fmt: skip


BAD_DY = _bad_dy_calls()


@pytest.mark.parametrize("what", list(BAD_DY))
@pytest.mark.parametrize("impl", voices("relu_vjp"))
def test_wrong_dy_shape_is_a_shape_error_naming_both_shapes(impl, what):
    mod = load(impl)
    inputs, bad, right, call = BAD_DY[what]
    with pytest.raises(ShapeError) as e:
        call(mod, to_native(mod, inputs, "float64"))
    msg = str(e.value)
    assert str(bad) in msg and str(right) in msg, f"{impl} {what}: message should name {bad} and {right}: {msg!r}"
