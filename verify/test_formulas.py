"""Property tests of impls/contract/formulas.py over random sizes: parameter counts against the layers PyTorch and
Keras build and the canonical weights' sizes; the seed's section 6 formulas against the truth, with the
exact difference as a closed form; FLOP counts against torch.utils.flop_counter and against multiply-adds
counted while the NumPy reference runs. Plus bad input.

Every property runs 200 examples (derandomized, so a run is reproducible), except where the strategy has
fewer distinct values and hypothesis stops when it has tried them all: Keras layers (5-10 ms to build) and
torch's GRU flop count (15-35 ms a call) run over every size of a small range instead; each family still
gets >= 200 random sizes from its other properties. Built counts are cached per size.
Cost on the shared 2-core machine: about 15 s of tests plus the TensorFlow and torch imports (~8 s,
shared with the rest of verify/).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from collections import Counter
from functools import cache
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impls import GRU_VARIANTS, LAYER_COUNTS, backend, convert
from impls.contract import formulas as F
from impls.contract.models import init_seed_cnn, init_seed_gru
from impls.contract.spec import VARIANTS, ShapeError, init_conv, init_dense, init_gru, random_array
from impls.model import seed as seed_models
from impls.primitives import numpy_activations, numpy_conv, numpy_gru, numpy_impl
from verify.conftest import load

N = 200  # examples per formula family (the bar)
PROPS = settings(max_examples=N, deadline=None, derandomize=True, database=None)
small = st.integers(1, 6)
tiny = st.integers(1, 4)
three = st.integers(1, 3)


@cache
def built(impl: str, fn: str, *args) -> int:
    """A count taken from a layer the framework builds, once per size."""
    return getattr(backend(impl), fn)(*args)


# Built layers: torch builds on the meta device in ~0.3 ms, so it gets 200 random sizes from a wide range; a Keras
# layer takes ~5-10 ms to build, so Keras runs over every size of a small range instead (each built once, cached).
LAYER_SIZE = {"torch_nn": st.integers(1, 64), "keras": small}
BUILT_GRU = {i: tuple(v for v in GRU_VARIANTS[i] if v in ("reset_before", "reset_after")) for i in LAYER_COUNTS}
LSTM_CONVENTION = {"torch_nn": "torch", "keras": "keras"}

# =========================================================================== parameter counts


@PROPS
@given(I=st.integers(1, 40), H=st.integers(1, 40))
def test_gru_count_is_the_size_of_every_layout(I, H):
    """Canonical weights and each framework's layout (through the converters, which own the layout facts)."""
    w = init_gru(I, H, seed=I * 100 + H)
    size = lambda arrays: sum(int(np.asarray(a).size) for a in arrays)
    assert size([w.W, w.U, w.b_x, w.b_h]) == F.gru_param_count(I, H, "canonical")
    assert size(convert.gru_to_torch(w).values()) == F.gru_param_count(I, H, "torch")
    assert size(convert.gru_to_keras(w, reset_after=True)) == F.gru_param_count(I, H, "keras_reset_after")
    assert size(convert.gru_to_keras(w, reset_after=False)) == F.gru_param_count(I, H, "keras_reset_before")
    assert size(convert.gru_to_onnx(w).values()) == F.gru_param_count(I, H, "onnx")
    assert F.gru_param_count(I, H, "torch") == 3 * (I * H + H * H + 2 * H)
    assert F.gru_param_count(I, H, "keras_reset_before") == 3 * (I * H + H * H + H)
    for v in VARIANTS:  # biases that only enter as b_x + b_h count once
        assert F.gru_param_count(I, H) - F.gru_effective_param_count(I, H, v) == (2 if v == "reset_after" else 3) * H


@pytest.mark.parametrize("impl", LAYER_COUNTS)
@PROPS
@given(data=st.data())
def test_gru_count_equals_the_built_layer_and_the_seed_formula_misses_its_biases(impl, data):
    """Every GRU form the framework builds; section 6.1 read as (3I + 3H) * H falls short by the biases."""
    load(impl)
    I, H = data.draw(LAYER_SIZE[impl], "I"), data.draw(LAYER_SIZE[impl], "H")
    for variant in BUILT_GRU[impl]:
        count = built(impl, "gru_param_count", I, H, variant)
        assert count == F.gru_param_count(I, H, "torch" if impl == "torch_nn" else f"keras_{variant}")
        assert F.seed_gru_formula_own_units(I, H) - count == -(3 if variant == "reset_before" else 6) * H


@pytest.mark.parametrize("impl", LAYER_COUNTS)
@PROPS
@given(data=st.data())
def test_lstm_count_equals_the_built_layer_and_a_gru_is_three_quarters_of_it(impl, data):
    load(impl)
    I, H = data.draw(LAYER_SIZE[impl], "I"), data.draw(LAYER_SIZE[impl], "H")
    conv = LSTM_CONVENTION[impl]
    lstm = built(impl, "lstm_param_count", I, H)
    assert lstm == F.lstm_param_count(I, H, conv)
    # matched bias conventions (2 or 1 bias vectors per block): GRU = 3 blocks, LSTM = 4, exactly 3/4
    gru = F.gru_param_count(I, H, "torch" if conv == "torch" else "keras_reset_before")
    assert 4 * gru == 3 * lstm
    # Keras' defaults mix conventions (GRU reset_after: 6H biases, LSTM: 4H): LSTM - GRU = H (I + H - 2)
    if impl == "keras":
        assert lstm - F.gru_param_count(I, H, "keras_reset_after") == H * (I + H - 2)


@st.composite
def conv_sizes(draw, wide: bool):
    n = st.integers(1, 8) if wide else three
    g = draw(st.integers(1, 4 if wide else 2))
    return (draw(n), draw(n), g * draw(n if wide else st.integers(1, 2)), g * draw(n), g, draw(st.booleans()))


@pytest.mark.parametrize("impl", LAYER_COUNTS)
@PROPS
@given(data=st.data())
def test_conv2d_count_equals_the_built_layer(impl, data):
    load(impl)
    kh, kw, c_in, c_out, groups, bias = data.draw(conv_sizes(wide=impl == "torch_nn"))
    assert built(impl, "conv2d_param_count", kh, kw, c_in, c_out, groups, bias) == F.conv2d_param_count(
        kh, kw, c_in, c_out, groups=groups, bias=bias
    )


@PROPS
@given(kh=small, kw=small, c_in=small, c_out=small, n_in=st.integers(1, 30), n_out=st.integers(1, 30))
def test_conv_and_dense_counts_are_the_canonical_weight_sizes(kh, kw, c_in, c_out, n_in, n_out):
    c = init_conv(kh, kw, c_in, c_out)
    assert c.kernel.size + c.bias.size == F.conv2d_param_count(kh, kw, c_in, c_out)
    d = init_dense(n_in, n_out)
    assert d.kernel.size + d.bias.size == F.dense_param_count(n_in, n_out)
    assert F.dense_param_count(n_in, n_out, bias=False) == d.kernel.size


@pytest.mark.parametrize("impl", LAYER_COUNTS)
@PROPS
@given(data=st.data(), bias=st.booleans())
def test_dense_count_equals_the_built_layer(impl, data, bias):
    load(impl)
    n_in, n_out = data.draw(LAYER_SIZE[impl], "n_in"), data.draw(LAYER_SIZE[impl], "n_out")
    assert built(impl, "dense_param_count", n_in, n_out, bias) == F.dense_param_count(n_in, n_out, bias=bias)


@pytest.mark.parametrize("impl", LAYER_COUNTS)
def test_seed_model_counts_equal_the_built_models(impl):
    """The seed's own models (section 4): 112,394 and 225,034 are what Keras' model.summary() prints."""
    mod = load(impl)
    assert mod.seed_gru_model_param_count() == F.seed_gru_model_param_count("keras_reset_after") == 112_394
    assert mod.seed_cnn_model_param_count() == F.seed_cnn_model_param_count(pools=True) == 225_034
    assert mod.seed_cnn_model_param_count(pools=False) == F.seed_cnn_model_param_count(pools=False)


def test_seed_model_counts_are_the_canonical_parameter_sizes():
    size = lambda p: sum(int(np.asarray(getattr(getattr(p, f), g)).size) for f, g in _fields(p))
    assert size(init_seed_gru()) == F.seed_gru_model_param_count("canonical")
    assert size(init_seed_cnn()) == F.seed_cnn_model_param_count()
    assert F.max_pool2d_param_count(2) == 0


def _fields(p):
    for layer in dataclasses.fields(p):
        for arr in dataclasses.fields(getattr(p, layer.name)):
            yield layer.name, arr.name


@pytest.mark.parametrize("variant", VARIANTS)
def test_effective_gru_count_folds_exactly_the_biases_whose_split_does_not_matter(variant):
    """gru_effective_param_count counts b_x + b_h once where only the sum enters: moving mass between
    b_x and b_h leaves the output unchanged there, and changes it in reset_after (r * (h U_h + b_hh))."""
    I, H = 3, 5
    x, w = random_array((2, 4, I), 1), init_gru(I, H, seed=2)
    shift = np.linspace(0.3, -0.2, 3 * H)
    moved = w.map(np.copy)
    moved.b_x[:] += shift
    moved.b_h[:] -= shift
    diff = float(np.max(np.abs(numpy_impl.gru(x, moved, variant)[0] - numpy_impl.gru(x, w, variant)[0])))
    folded = F.gru_param_count(I, H) - F.gru_effective_param_count(I, H, variant)
    if variant == "reset_after":
        assert diff > 1e-3 and folded == 2 * H, (diff, folded)
    else:
        assert diff < 1e-12 and folded == 3 * H, (diff, folded)


# =========================================================================== the seed's formulas


@PROPS
@given(I=st.integers(1, 300), H=st.integers(1, 300), n_next=st.integers(1, 300))
def test_seed_gru_formula_differences_in_closed_form(I, H, n_next):
    """Section 6.1 against the truth. Reading A (output layer = own units) counts the weight matrices and
    no bias: short by exactly 6H against torch / Keras reset_after / ONNX, 3H against Keras reset_before
    and against the seed's own section 2.1 equations. Reading B (output layer = next layer) is off by
    3H (n_next - H) - 6H: right only when the next layer happens to have H + 2 units."""
    seed_a = F.seed_gru_formula_own_units(I, H)
    assert seed_a == (3 * I + 3 * H) * H
    for convention, missing in (("torch", 6), ("keras_reset_after", 6), ("onnx", 6),
                                ("keras_reset_before", 3), ("seed_equations", 3)):  # fmt: skip
        assert seed_a - F.gru_param_count(I, H, convention) == -missing * H
    diff_b = F.seed_gru_formula_next_layer(I, H, n_next) - F.gru_param_count(I, H, "keras_reset_after")
    assert diff_b == 3 * H * (n_next - H) - 6 * H
    assert (diff_b == 0) == (n_next == H + 2)


@PROPS
@given(c_in=st.integers(1, 64), c_out=st.integers(1, 64), k=st.integers(1, 7), h=st.integers(1, 40), w=st.integers(1, 40))
def test_seed_cnn_formula_differences_in_closed_form(c_in, c_out, k, h, w):
    """Section 6.2 on one Conv2D (kernels = out_channels = c_out) on an h x w map: it exceeds the true
    count by c_out (c_in k^2 (hw - 1) + c_out hw - 1), which is zero only for a 1 x 1 map and c_out = 1.
    Read as a compute count on the output map it is the multiply-adds plus c_out^2 * h * w."""
    seed = F.seed_cnn_formula_layer(c_in, c_out, k, h, w)
    true = F.conv2d_param_count(k, k, c_in, c_out)
    assert seed - true == c_out * (c_in * k * k * (h * w - 1) + c_out * h * w - 1)
    assert (seed == true) == (h * w == 1 and c_out == 1)
    macs = F.conv2d_flops(1, h, w, k, k, c_in, c_out) // F.MULTIPLY_ADD_FLOPS
    assert seed - macs == c_out * c_out * h * w


def test_seed_formulas_on_the_seed_models():
    """Every reading, on the seed's own models: none gives the true counts."""
    gru = F.seed_gru_model_readings()
    assert gru["A: per layer, output layer = own units"] == 110_592  # = 111,744 - 6 * (128 + 64)
    assert F.seed_gru_model_param_count() - gru["A: per layer, output layer = own units"] == 6 * (128 + 64) + 650
    assert 112_394 not in gru.values() and 111_744 not in gru.values()
    cnn = F.seed_cnn_model_readings()
    assert cnn == {"A: network input image": 18_690_560, "B: layer input map": 4_835_840, "C: layer output map": 3_612_800}
    assert 225_034 not in cnn.values() and 320 + 18_496 not in cnn.values()


# =========================================================================== FLOPs: torch.utils.flop_counter


@cache
def torch_flops(work: str, backward: bool, *items) -> int:
    return backend("torch_nn").flop_count(work, backward=backward, **dict(items))


@PROPS
@given(B=st.integers(1, 2), T=st.integers(1, 2), I=three, H=three, backward=st.booleans())
def test_gru_flops_equal_torch_flop_counter(B, T, I, H, backward):
    """torch counts nn.GRU's products; its backward (x requires grad, h0 = zeros does not) skips the
    product into h0, so it is the x3 convention minus 2 * B * 3H * H."""
    load("torch_nn")
    counted = torch_flops("gru", backward, ("B", B), ("T", T), ("I", I), ("H", H))
    if not backward:
        assert counted == F.gru_matmul_flops(B, T, I, H) == 2 * B * T * 3 * H * (I + H)
    else:
        assert counted == F.gru_fwd_bwd_matmul_flops(B, T, I, H, grad_x=True, grad_h0=False)
        assert F.gru_fwd_bwd_flops(B, T, I, H) - counted == 2 * B * 3 * H * H


@st.composite
def conv_problem(draw):
    kh, kw, groups, dilation = draw(tiny), draw(tiny), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    h, w = draw(st.integers((kh - 1) * dilation + 1, kh + 5)), draw(st.integers((kw - 1) * dilation + 1, kw + 5))
    return (draw(st.integers(1, 2)), h, w, groups * draw(st.integers(1, 2)), kh, kw, groups * draw(st.integers(1, 2)),
            draw(st.integers(1, 3)), draw(st.sampled_from(("valid", "same"))), dilation, groups)  # fmt: skip


@PROPS
@given(p=conv_problem(), n_in=st.integers(1, 20), n_out=st.integers(1, 20))
def test_conv_and_dense_flops_equal_torch_flop_counter(p, n_in, n_out):
    load("torch_nn")
    B, h, w, c, kh, kw, o, stride, padding, dilation, groups = p
    if dilation > 1 and stride > 1:
        stride = 1  # one option at a time is enough for a count
    oh, ow = F.conv2d_output_hw(h, w, kh, kw, stride, padding, dilation)
    counted = torch_flops("conv2d", False, ("B", B), ("H", h), ("W", w), ("C", c), ("KH", kh), ("KW", kw), ("O", o),
                          ("stride", stride), ("padding", padding), ("dilation", dilation), ("groups", groups))  # fmt: skip
    assert counted == F.conv2d_flops(B, oh, ow, kh, kw, c, o, groups)
    assert torch_flops("dense", False, ("B", B), ("n_in", n_in), ("n_out", n_out)) == F.dense_flops(B, n_in, n_out)


def test_seed_cnn_model_flops_equal_torch_flop_counter():
    """(The seed GRU model is left to the reference count below: on the meta device torch's counter
    walks its 2 x 100 steps one by one, about 2 s.)"""
    load("torch_nn")
    assert torch_flops("seed_cnn_model", False, ("B", 2)) == F.seed_cnn_model_flops(2)


# =========================================================================== FLOPs: counted in the NumPy reference


class Counted(np.ndarray):
    """An ndarray that books, into `Counted.book`, 2*m*n*k FLOPs per matmul and einsum contraction (from the
    operand shapes it sees at run time), the elements each other ufunc produces, and the comparisons of a
    max reduction. The reference's math runs unchanged on the plain arrays underneath."""

    book: ClassVar[Counter] = Counter()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = _unwrap(inputs)
        out = getattr(ufunc, method)(*args, **_unwrap(kwargs))  # in-place ops pass out=(Counted,)
        if ufunc is np.matmul and method == "__call__":
            Counted.book["flops"] += _matmul_flops(*args)
        elif method == "__call__":
            Counted.book[ufunc.__name__] += int(np.size(out))
        elif method == "reduce":
            Counted.book[f"{ufunc.__name__}.reduce"] += int(np.size(args[0]) - np.size(out))
        return _wrap(out)

    def __array_function__(self, func, types, args, kwargs):
        args = _unwrap(args)
        if func is np.einsum:
            Counted.book["flops"] += _einsum_flops(*args)
        return _wrap(func(*args, **_unwrap(kwargs)))


def _matmul_flops(a, b) -> int:
    a, b = np.asarray(a), np.asarray(b)
    m = 1 if a.ndim == 1 else a.shape[-2]
    n = 1 if b.ndim == 1 else b.shape[-1]
    batch = math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    return 2 * batch * m * a.shape[-1] * n


def _einsum_flops(subscripts, *operands) -> int:
    """A two-operand contraction does one multiply-add per combination of all its labels."""
    ins = re.sub(r"\s", "", subscripts).split("->")[0].split(",")
    assert len(ins) == 2 == len(operands), f"count only two-operand einsums, got {subscripts!r}"
    sizes = {lab: d for s, op in zip(ins, operands) for lab, d in zip(s, np.shape(op))}
    return 2 * math.prod(sizes.values())


def _unwrap(obj):
    if isinstance(obj, Counted):
        return obj.view(np.ndarray)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unwrap(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _unwrap(v) for k, v in obj.items()}
    return obj


def _wrap(obj):
    if type(obj) is np.ndarray:
        return obj.view(Counted)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    return obj


class _CountingNumpy:
    """Stands in for `np` inside numpy_impl while counting: every array a NumPy function returns there
    (zeros, empty, asarray, stack ...) comes back as a Counted view, so no product escapes the count."""

    UNCOUNTED = ("dot", "tensordot", "inner", "outer", "vdot", "kron", "linalg")

    def __getattr__(self, name):
        if name in self.UNCOUNTED:  # a product the harness does not count: fail loudly, not undercount
            raise AssertionError(f"numpy_impl now uses np.{name}: teach the counting harness in {__file__} to count it")
        f = getattr(np, name)
        if isinstance(f, (type, np.ufunc)) or not callable(f):
            return f
        if f is np.einsum:
            return lambda *a, **k: _count_einsum(*_unwrap(a), **_unwrap(k))
        return lambda *a, **k: _wrap(f(*a, **k))


def _count_einsum(*args, **kwargs):
    Counted.book["flops"] += _einsum_flops(*args)
    return _wrap(np.einsum(*args, **kwargs))


@contextlib.contextmanager
def counting():
    """Run numpy_impl with its `np` swapped for the counting stand-in; yields the book."""
    saved, Counted.book = numpy_impl.np, Counter()
    # numpy_conv (conv2d and the pools), numpy_gru (the GRU), numpy_activations: re-exported by numpy_impl
    numpy_impl.np = numpy_conv.np = numpy_gru.np = numpy_activations.np = _CountingNumpy()
    try:
        yield Counted.book
    finally:
        numpy_impl.np = numpy_conv.np = numpy_gru.np = numpy_activations.np = saved


def _c(a):
    return np.asarray(a).view(Counted)


@PROPS
@given(B=tiny, T=tiny, I=st.integers(1, 6), H=st.integers(1, 6), variant=st.sampled_from(VARIANTS))
def test_gru_flops_equal_the_products_counted_in_the_reference(B, T, I, H, variant):
    """Forward: the products match gru_matmul_flops, the elementwise work matches gru_elementwise_ops
    (the reference's sigmoid, 0.5 * (1 + tanh(0.5 x)), spends one tanh and 3 arithmetic ops where the
    formula books one transcendental). Forward + backward (BPTT with every gradient, h0's included) matches the x3 convention exactly."""
    x, w = random_array((B, T, I), 5), init_gru(I, H, seed=6)
    with counting() as book:
        numpy_impl.gru(_c(x), w.map(_c), variant)
    ops = F.gru_elementwise_ops(B, T, H, variant)
    assert book["flops"] == F.gru_matmul_flops(B, T, I, H)
    arith = book["add"] + book["subtract"] + book["multiply"] + book["divide"]
    assert (arith, book["tanh"]) == (ops.arithmetic + 2 * 3 * B * T * H, ops.transcendental)
    # DeepBench leaves out exactly the input products, 2 B T 3H I
    assert F.gru_matmul_flops(B, T, I, H) - F.deepbench_gru_flops(T, B, H) == 2 * B * T * 3 * H * I
    dy = random_array((B, T, H), 7)
    with counting() as book:
        numpy_impl.gru_vjp(_c(x), w.map(_c), variant, _c(dy))
    assert book["flops"] == F.gru_fwd_bwd_matmul_flops(B, T, I, H) == F.gru_fwd_bwd_flops(B, T, I, H)


@PROPS
@given(B=tiny, T=st.integers(1, 5), H=st.integers(1, 12))
def test_deepbench_flops_are_the_recurrent_products_of_the_reference(B, T, H):
    """With I = H, DeepBench's benchmark shape (CUDNN_SKIP_INPUT, input size = hidden size), the reference's
    products split in two equal halves: the input products and the recurrent ones (6 T N H^2)."""
    x, w = random_array((B, T, H), 8), init_gru(H, H, seed=9)
    with counting() as book:
        numpy_impl.gru(_c(x), w.map(_c), "reset_after")
    assert book["flops"] == 2 * F.deepbench_gru_flops(T, B, H)


@PROPS
@given(p=conv_problem(), ph=st.integers(1, 3), pw=st.integers(1, 3))
def test_conv_pool_dense_flops_equal_the_counts_in_the_reference(p, ph, pw):
    B, h, w, c, kh, kw, o, stride, padding, dilation, groups = p
    x, k = random_array((B, h, w, c), 1), init_conv(kh, kw, c, o, seed=2, groups=groups)
    oh, ow = F.conv2d_output_hw(h, w, kh, kw, stride, padding, dilation)
    with counting() as book:
        y = numpy_impl.conv2d(_c(x), _c(k.kernel), _c(k.bias), stride, padding, dilation, groups)
    assert y.shape == (B, oh, ow, o)
    fwd = F.conv2d_flops(B, oh, ow, kh, kw, c, o, groups)
    assert book["flops"] == fwd
    assert book["add"] == F.conv2d_bias_flops(B, oh, ow, o)
    with counting() as book:
        numpy_impl.conv2d_vjp(_c(x), _c(k.kernel), _c(k.bias), _c(np.ones((B, oh, ow, o))), stride, padding, dilation, groups)
    assert fwd + book["flops"] == F.fwd_bwd_flops(fwd)
    if ph <= h and pw <= w:
        poh, pow_ = F.conv2d_output_hw(h, w, ph, pw, stride, "valid")
        with counting() as book:
            numpy_impl.max_pool2d(_c(x), (ph, pw), stride, "valid")
        assert book["maximum.reduce"] == F.max_pool2d_comparisons(B, poh, pow_, c, ph, pw)
    d = init_dense(c, o, seed=3)
    xs = random_array((B * h, c), 4)
    with counting() as book:
        numpy_impl.dense(_c(xs), _c(d.kernel), _c(d.bias))
    assert (book["flops"], book["add"]) == (F.dense_flops(B * h, c, o), F.dense_bias_flops(B * h, o))


@PROPS
@given(B=st.integers(1, 2), T=three, I=tiny, h1=tiny, h2=tiny, classes=tiny, side=st.integers(10, 13),
       c=st.integers(1, 2), f1=tiny, f2=tiny)  # fmt: skip
def test_seed_model_flops_equal_the_counts_in_the_reference(B, T, I, h1, h2, classes, side, c, f1, f2):
    x = random_array((B, T, I), 1)
    with counting() as book:
        seed_models.reference_model(init_seed_gru(2, input_size=I, units=(h1, h2), classes=classes))(_c(x))
    assert book["flops"] == F.seed_gru_model_flops(B, (T, I), (h1, h2), classes)
    sizes = {"image": (side, side + 1, c), "filters": (f1, f2), "dense_units": h1, "classes": classes}
    img = random_array((B, side, side + 1, c), 3)
    with counting() as book:
        seed_models.reference_model(init_seed_cnn(4, **sizes))(_c(img))
    assert book["flops"] == F.seed_cnn_model_flops(B, **sizes)


def test_the_counting_harness_sees_every_product():
    """The harness itself: a product it missed would make every count above too small."""
    a, b = random_array((3, 4), 1), random_array((4, 5), 2)
    with counting() as book:
        numpy_impl.dense(_c(a), _c(b), _c(np.zeros(5)))
        numpy_impl.np.einsum("ij,jk->ik", a, b)
    assert book["flops"] == 2 * (2 * 3 * 4 * 5)
    assert numpy_impl.np is np and numpy_conv.np is np


# =========================================================================== bad input

BAD_SIZES = [0, -3, True, 2.0, "4", None]
CALLS = [
    ("I", lambda v: F.gru_param_count(v, 4)),
    ("H", lambda v: F.lstm_param_count(3, v)),
    ("H", lambda v: F.rnn_param_count(3, v)),
    ("c_in", lambda v: F.conv2d_param_count(3, 3, v, 4)),
    ("groups", lambda v: F.conv2d_param_count(3, 3, 4, 4, groups=v)),
    ("n_out", lambda v: F.dense_param_count(3, v)),
    ("pool", lambda v: F.max_pool2d_param_count(v)),
    ("T", lambda v: F.gru_matmul_flops(2, v, 3, 4)),
    ("OH", lambda v: F.conv2d_flops(1, v, 2, 3, 3, 1, 1)),
    ("N", lambda v: F.deepbench_gru_flops(3, v, 4)),
    ("hidden", lambda v: F.seed_gru_formula(3, 4, v)),
    ("kernel_size", lambda v: F.seed_cnn_formula(2, 1, v, 2, 5, 5)),
    ("forward_flops", lambda v: F.fwd_bwd_flops(v)),
]


@pytest.mark.parametrize("value", BAD_SIZES, ids=repr)
@pytest.mark.parametrize("name, call", CALLS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CALLS)])
def test_bad_sizes_raise_naming_the_argument_and_value(name, call, value):
    with pytest.raises(ValueError, match=re.escape(name)) as e:
        call(value)
    assert isinstance(e.value, ShapeError) and repr(value) in str(e.value)


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: F.conv2d_param_count(3, 3, 4, 6, groups=4), ("groups=4", "c_in=4", "c_out=6")),
        (lambda: F.conv2d_flops(1, 2, 2, 3, 3, 6, 4, groups=4), ("groups=4", "c_in=6")),
        (lambda: F.gru_param_count(3, 4, "tensorflow"), ("'tensorflow'", "keras_reset_after")),
        (lambda: F.gru_elementwise_ops(1, 2, 3, "lstm"), ("'lstm'", "reset_before")),
        (lambda: F.dense_param_count(3, 4, bias=1), ("bias", "1")),
        (lambda: F.conv2d_output_hw(2, 2, 3, 3), ("3x3", "2x2", "valid")),
        (lambda: F.conv2d_output_hw(5, 5, 3, 3, padding="full"), ("'full'",)),
        (lambda: F.seed_cnn_model_table(image=(6, 6, 1)), ("(6, 6, 1)",)),
    ],
)
def test_bad_options_raise_naming_them(call, words):
    with pytest.raises(ValueError) as e:
        call()
    assert all(w in str(e.value) for w in words), str(e.value)


@PROPS
@given(v=st.integers(-10**6, 0))
def test_every_non_positive_size_is_refused(v):
    with pytest.raises(ShapeError, match=f"={v}"):
        F.conv2d_param_count(3, 3, 2, v)
