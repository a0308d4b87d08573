"""The conv options beyond the matrix: the seed's 1-D convolution as a depthwise conv2d, shapes that cannot
work (a ShapeError naming every shape), the refusals impls/contract/limits.py declares, and which rule each
framework's average pooling follows by default."""

from __future__ import annotations

import numpy as np
import pytest

from impls import IMPLEMENTATIONS, SHORT
from impls.contract import limits
from impls.contract.inputs import to_native
from impls.contract.spec import ShapeError, init_conv, random_array
from impls.primitives import numpy_impl as ref
from verify.cases import refused, voices
from verify.conftest import load, load_framework
from verify.conv_cases import OPTION_FORWARD_CASES, OPTION_VJP_CASES
from verify.headroom import check

IMPLS = tuple(IMPLEMENTATIONS)
IDS = [SHORT[i] for i in IMPLS]


@pytest.mark.parametrize("B, L, C, K", [(2, 11, 3, 4), (1, 5, 1, 5), (3, 6, 4, 1)])
@pytest.mark.parametrize("impl", voices("seed_conv1d"))
def test_seed_conv1d_is_a_depthwise_conv2d_with_groups_c(impl, B, L, C, K):
    """y_ij = sum_k w_ik x_i,j+k-1 + b_i is conv2d on a 1-pixel-high image with the kernel (1, K, 1, C)
    (HWIO, I = C / groups = 1) and groups = C: a depthwise conv with channel multiplier 1."""
    mod = load(impl)
    x, w, b = random_array((B, L, C), 1), random_array((K, C), 2), random_array((C,), 3)
    n = to_native(mod, {"x": x[:, None], "k": w[None, :, None, :], "b": b, "x1": x, "w": w}, "float64")
    depthwise = mod.to_numpy(mod.conv2d(n["x"], n["k"], n["b"], groups=C))[:, 0]
    seed = mod.to_numpy(mod.seed_conv1d(n["x1"], n["w"], n["b"]))
    check(seed, depthwise, "float64", impl, "seed_conv1d", f"seed_conv1d vs depthwise conv2d in {impl}")
    check(seed, ref.seed_conv1d(x, w, b), "float64", impl, "seed_conv1d", f"seed_conv1d in {impl} vs NumPy")


# --------------------------------------------------------------------------- shapes that cannot work

BAD = {  # name: (x shape, kernel shape, options, what the message must name besides every shape)
    "channels-not-divisible": ((1, 6, 6, 5), (3, 3, 2, 4), {"groups": 2}, "groups=2"),
    "outputs-not-divisible": ((1, 6, 6, 4), (3, 3, 2, 5), {"groups": 2}, "groups=2"),
    "kernel-inputs-not-c-over-groups": ((1, 6, 6, 4), (3, 3, 4, 4), {"groups": 2}, "kernel.shape[2]=4"),
    "dilation-zero": ((1, 6, 6, 2), (3, 3, 2, 4), {"dilation": 0}, "dilation=0"),
    "dilation-negative": ((1, 6, 6, 2), (3, 3, 2, 4), {"dilation": (1, -2)}, "dilation=(1, -2)"),
    "negative-pad": ((1, 6, 6, 2), (3, 3, 2, 4), {"padding": ((1, -1), (0, 0))}, "padding=((1, -1), (0, 0))"),
    "dilated-kernel-too-big": ((1, 4, 6, 2), (3, 3, 2, 4), {"dilation": 2}, "dilation=2"),
}


@pytest.mark.parametrize("what", list(BAD))
@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_conv2d_shapes_that_cannot_work_raise_naming_every_shape(impl, what):
    mod = load(impl)
    x_shape, k_shape, opts, word = BAD[what]
    x, k, b = (mod.asarray(np.ones(s), "float64") for s in (x_shape, k_shape, (k_shape[3],)))
    with pytest.raises(ShapeError) as e:
        mod.conv2d(x, k, b, **opts)
    msg = str(e.value)
    for shown in (f"x.shape={x_shape}", f"kernel.shape={k_shape}", f"bias.shape={(k_shape[3],)}", word):
        assert shown in msg, f"{impl} {what}: the message should name {shown}: {msg!r}"


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_pools_refuse_negative_pads_and_pads_as_wide_as_the_window(impl, op):
    mod = load(impl)
    x = mod.asarray(np.ones((1, 6, 7, 2)), "float64")
    for padding in (((0, -1), (0, 0)), ((0, 0), (3, 0))):
        with pytest.raises(ShapeError, match=r"x\.shape=\(1, 6, 7, 2\), pool=3.*padding="):
            getattr(mod, op)(x, 3, 1, padding)


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_count_include_pad_must_be_a_bool(impl):
    mod = load(impl)
    with pytest.raises(TypeError, match="count_include_pad must be True or False, got 1"):
        mod.avg_pool2d(mod.asarray(np.ones((1, 4, 4, 1)), "float64"), 2, padding="same", count_include_pad=1)


# --------------------------------------------------------------------------- declared refusals


@pytest.mark.parametrize("case, impl", refused(OPTION_FORWARD_CASES + OPTION_VJP_CASES))
def test_declared_refusals_are_raised_not_computed(case, impl):
    mod = load(impl)
    reason = limits.refusal(impl, case.op, **case.options)
    with pytest.raises(limits.Refused) as e:
        case.call(mod, to_native(mod, case.make(), "float64"))
    assert reason in str(e.value) and case.op.removesuffix("_vjp") in str(e.value)


def test_every_declared_refusal_has_a_case():
    """A refusal no case reaches would be an untested claim."""
    reached = {(impl, c.op.removesuffix("_vjp")) for c, impl in (p.values for p in refused(OPTION_FORWARD_CASES))}
    assert reached == set(limits.REFUSALS), f"refusals without a case: {set(limits.REFUSALS) - reached}"


# --------------------------------------------------------------------------- average pooling's default rule


def _rule(y: np.ndarray, x: np.ndarray, pool, stride, padding) -> str:
    """Which count_include_pad rule an average pool's output follows (the NumPy reference's two rules)."""
    rules = {flag: ref.avg_pool2d(x, pool, stride, padding, count_include_pad=flag) for flag in (False, True)}
    match = [name for flag, name in ((False, "excludes padding"), (True, "counts padding"))
             if y.shape == rules[flag].shape and np.allclose(y, rules[flag], rtol=1e-12, atol=0)]  # fmt: skip
    return match[0] if len(match) == 1 else "neither"


AVG_DEFAULTS = {  # framework: (its average pool at default settings, the rule it follows)
    "torch": "counts padding",  # nn.AvgPool2d(count_include_pad=True) is the default
    "tensorflow": "excludes padding",  # tf.nn.avg_pool2d(padding="SAME") divides by the input cells
    "keras": "excludes padding",  # keras.layers.AveragePooling2D(padding="same") likewise
}


@pytest.mark.parametrize("framework", list(AVG_DEFAULTS))
def test_each_frameworks_average_pool_default_follows_the_declared_rule(framework):
    x = random_array((1, 5, 6, 2), 7)
    fw = load_framework(framework)
    if framework == "torch":  # symmetric pads of 1, the layer's own padding, default count_include_pad
        y = fw.nn.AvgPool2d(3, stride=2, padding=1)(fw.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
        got = _rule(y, x, 3, 2, ((1, 1), (1, 1)))
    elif framework == "tensorflow":
        got = _rule(fw.nn.avg_pool2d(x, 3, 2, "SAME").numpy(), x, 3, 2, "same")
    else:
        got = _rule(np.asarray(fw.layers.AveragePooling2D(3, 2, padding="same", dtype="float64")(x)), x, 3, 2, "same")
    assert got == AVG_DEFAULTS[framework], f"{framework}'s default average pool {got}; declared {AVG_DEFAULTS[framework]}"
    assert _rule(ref.avg_pool2d(x, 3, 2, "same"), x, 3, 2, "same") == "excludes padding"  # the contract's default


def test_the_two_rules_differ_exactly_at_the_border():
    """Counting padded cells scales each border window by (input cells) / (window cells); inside they agree."""
    x = random_array((2, 7, 9, 3), 8)
    exc, inc = (ref.avg_pool2d(x, 3, 2, "same", count_include_pad=f) for f in (False, True))
    ones = np.ones((1, 7, 9, 1))
    share = ref.avg_pool2d(ones, 3, 2, "same", count_include_pad=True)  # covered cells / 9
    np.testing.assert_allclose(inc, exc * share, rtol=1e-13, atol=0)
    assert (share < 1).any() and (share == 1).any()


def test_grouped_conv_is_the_groups_side_by_side():
    """groups = G is G independent convolutions on consecutive channel blocks, concatenated: a fact about the
    reference's own grouping, checked with ungrouped calls."""
    x, k = random_array((2, 6, 7, 6), 9), init_conv(3, 2, 6, 9, seed=10, groups=3)
    grouped = ref.conv2d(x, k.kernel, k.bias, groups=3)
    parts = [ref.conv2d(x[..., 2 * g : 2 * g + 2], k.kernel[..., 3 * g : 3 * g + 3], k.bias[3 * g : 3 * g + 3])
             for g in range(3)]  # fmt: skip
    np.testing.assert_allclose(grouped, np.concatenate(parts, axis=-1), rtol=1e-13, atol=1e-15)
