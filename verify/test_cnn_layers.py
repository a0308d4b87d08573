"""Issue 18's kinds (conv1d, batch_norm, layer_norm, global pools, reshape, permute, add, concatenate, graphs) in every
from-primitives voice, and the NumPy reference itself against finite differences and independent oracles.

    voice (numpy, torch, tensorflow, jax) x dtype (float64, float32) x model (CASES): voices.build(...).forward and
    every gradient (.vjp) against compose.reference_forward / reference_vjp at the table's bar (float64 1e-10,
    float32 2e-5), the reference fed the weights and inputs the voice holds (rounded to its dtype). JAX runs jitted
    (its Built.call and chain_vjp are jax.jit programs); TensorFlow also inside tf.function and XLA; torch eager.
    The reference's hand-written backward of each kind against central differences (float64), BatchNorm's
    training-mode backward included (reference_train_vjp against differences of reference_train).
    BatchNorm's training-mode moving-statistics update against torch.nn.BatchNorm1d ("unbiased", torch momentum
    = 1 - momentum) and keras BatchNormalization(training=True) ("biased"); planted convention bugs are caught.
    The graph machinery: a tensor read by two layers gets the sum of both gradients; a planted "last writer wins"
    backward is caught.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.contract.tolerance import error_stats
from impls.model import compose, seeded, voices
from impls.model.description import INPUT, Model
from impls.model.layers import normalization
from verify.conftest import load, load_framework
from verify.headroom import check
from verify.test_finite_differences import FD_BAR, central_differences

B = 3
DTYPES = ("float64", "float32")

# name: (input shape without the batch, layers [(kind, name, options) or (kind, name, options, inputs)])
CASES: dict[str, tuple[tuple[int, ...], list]] = {
    # every conv1d padding mode with strides, dilation, groups and no bias; layer_norm with center/scale on and off
    "conv1d_modes-layer_norm": ((11, 4), [
        ("conv1d", "c_valid", {"filters": 6, "kernel_size": 3, "strides": 2, "activation": "tanh"}),  # L 5
        ("layer_norm", "ln", {"epsilon": 1e-5}),
        ("conv1d", "c_same", {"filters": 4, "kernel_size": 3, "padding": "same", "dilation": 2, "groups": 2,
                              "activation": "sigmoid"}),  # L 5
        ("layer_norm", "ln_nocenter", {"center": False}),
        ("conv1d", "c_causal", {"filters": 6, "kernel_size": 2, "padding": "causal", "dilation": 3, "groups": 2}),
        ("layer_norm", "ln_noscale", {"scale": False}),
        ("conv1d", "c_explicit", {"filters": 3, "kernel_size": 3, "padding": [2, 1], "strides": 2,
                                  "use_bias": False, "activation": "tanh"}),  # L (5 + 3 - 3) // 2 + 1 = 3
        ("layer_norm", "ln_bare", {"center": False, "scale": False}),
        ("conv1d", "c_same_strided", {"filters": 5, "kernel_size": 2, "padding": "same", "strides": 2}),  # L 2
        ("flatten", "flat", {}),
        ("dense", "out", {"units": 3}),
    ]),
    # a time-series classifier: (Conv1D -> BatchNorm -> ReLU) x 3 -> global average pool -> dense softmax
    "timeseries_classifier": ((12, 3), [
        ("conv1d", "c1", {"filters": 5, "kernel_size": 3, "padding": "same"}),
        ("batch_norm", "bn1", {"epsilon": 1e-3}),
        ("activation", "r1", {"activation": "relu"}),
        ("conv1d", "c2", {"filters": 4, "kernel_size": 3, "strides": 2}),
        ("batch_norm", "bn2", {"epsilon": 1e-5, "variance_update": "unbiased", "momentum": 0.9}),
        ("activation", "r2", {"activation": "relu"}),
        ("conv1d", "c3", {"filters": 6, "kernel_size": 2, "padding": "causal", "dilation": 2}),
        ("batch_norm", "bn3", {"center": False}),
        ("activation", "r3", {"activation": "relu"}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ]),
    # a 2-D residual block: the stem's output is read twice (conv a and the add)
    "residual_block_2d": ((6, 5, 3), [
        ("conv2d", "stem", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("conv2d", "ca", {"filters": 6, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "bna", {}),
        ("activation", "ra", {"activation": "relu"}),
        ("conv2d", "cb", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "bnb", {"scale": False}),
        ("add", "res", {}, ("bnb", "stem")),
        ("activation", "r", {"activation": "relu"}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3}),
    ]),
    # global max pools 1-D and 2-D on two branches of the input, reshape and permute in the middle, concatenate
    "branches-max_pools-reshape-permute": ((5, 4, 3), [
        ("conv2d", "c2d", {"filters": 4, "kernel_size": [2, 2], "activation": "tanh"}, (INPUT,)),  # (4, 3, 4)
        ("global_max_pool", "gmp2d", {}),  # (4,)
        ("reshape", "seq", {"target_shape": [-1, 6]}, (INPUT,)),  # (10, 6)
        ("permute", "swap", {"dims": [2, 1]}),  # (6, 10)
        ("conv1d", "c1d", {"filters": 5, "kernel_size": 3, "padding": "same"}),  # (6, 5)
        ("permute", "back", {"dims": [2, 1]}),  # (5, 6)
        ("reshape", "fold", {"target_shape": [3, 10]}),  # (3, 10)
        ("layer_norm", "ln", {}),  # a normalisation right before a max pool: what broke jnp.max's jitted vjp
        ("global_max_pool", "gmp1d", {}),  # (10,)
        ("concatenate", "cat", {"axis": -1}, ("gmp2d", "gmp1d")),  # (14,)
        ("dense", "out", {"units": 3, "activation": "tanh"}),
    ]),
}  # fmt: skip
"""Few, deep models: each voice compiles (JAX, tf.function) one forward and one vjp per model and dtype. Together they
hold every issue-18 kind (test_the_cases_hold_every_issue_18_kind)."""

MAX_POOLS = {"branches-max_pools-reshape-permute": ("gmp2d", "gmp1d")}
MIN_GAP = 1e-3  # each pooled window's largest value leads the next by this much: no float32 rounding makes a tie


_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=29, batch=B)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


def data(m: Model, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *m.input_shape))


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    why = unavailable_reason(voice)
    if why is not None:
        pytest.skip(why)
    key = (voice, name, dtype)
    if key not in _BUILT:
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


def test_the_cases_hold_every_issue_18_kind():
    kinds = {la.kind for name in CASES for la in model(name).layers}
    assert {"conv1d", "batch_norm", "layer_norm", "global_avg_pool", "global_max_pool", "reshape", "permute", "add",
            "concatenate"} <= kinds
    convs = [la.options for la in model("conv1d_modes-layer_norm").layers if la.kind == "conv1d"]
    assert {str(o.get("padding", "valid")) for o in convs} >= {"valid", "same", "causal", "[2, 1]"}
    assert any(o.get("groups", 1) > 1 for o in convs) and any(o.get("dilation", 1) > 1 for o in convs)
    assert any(o.get("strides", 1) > 1 for o in convs) and any(o.get("use_bias") is False for o in convs)
    lns = [la.options for la in model("conv1d_modes-layer_norm").layers if la.kind == "layer_norm"]
    assert {(o.get("center", True), o.get("scale", True)) for o in lns} == {(True, True), (False, True),
                                                                           (True, False), (False, False)}
    res = model("residual_block_2d")
    assert len(res.consumers("stem")) == 2 and not res.is_chain()
    for name in CASES:  # I != H style: no layer keeps its input's channel count by accident, biases are non-zero
        for la in model(name).layers:
            if "bias" in la.weights:
                assert np.min(np.abs(la.weights["bias"])) > 0, f"{name}: {la.name}'s bias has a zero"


def test_the_max_pools_read_distinct_values():
    """The reference sends a pool's gradient to the first maximum, torch/TensorFlow split it among ties: the cases'
    maxima lead by MIN_GAP, so every voice is checked on its routing of an untied maximum."""
    for name, pools in MAX_POOLS.items():
        m = model(name)
        ins = compose.reference_inputs(m, data(m, 12))
        for p in pools:
            x = ins[m.layer_index(p)]
            top = np.sort(x.reshape(B, -1, x.shape[-1]), axis=1)
            gap = float(np.min(top[:, -1] - top[:, -2]))
            assert gap > MIN_GAP, f"{name}: {p}'s largest values lead by {gap:.1e} only"


MATRIX = [pytest.param(v, d, n, id=f"cnn-{SHORT[v]}-{d}-{n}") for v in voices.PRIMITIVES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, dtype, name", MATRIX)
def test_voice_forward_and_gradients_match_the_float64_reference(voice, dtype, name):
    b, m = built(voice, name, dtype), model(name)
    x = data(m, 12).astype(dtype)
    x_ref, ref_model = x.astype(np.float64), rounded(m, dtype)
    what = f"cnn-{SHORT[voice]}-{dtype}-{name}"
    y = b.forward(x)
    assert y.dtype == dtype, f"{what}: output dtype {y.dtype}, asked for {dtype}"
    check(y, compose.reference_forward(ref_model, x_ref), dtype, voice, what=f"{what} forward")

    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(ref_model, x_ref, dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    assert not set(grads) & set(m.state()), f"{what}: a gradient for a moving statistic"
    check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")


@pytest.mark.parametrize("name", ["residual_block_2d", "branches-max_pools-reshape-permute"])
def test_tensorflow_voice_runs_the_graphs_inside_tf_function_and_xla(name):
    """The bench compiles the TensorFlow voice per mode: the forward in tf.function and XLA, the tape's vjp in
    tf.function."""
    ops, tf = load("tensorflow"), load_framework("tensorflow")
    b, m = built("tensorflow", name, "float64"), model(name)
    x = data(m, 14)
    want = compose.reference_forward(m, x)
    for mode in ("tf.function", "tf.function(jit_compile=True)"):
        got = ops.to_numpy(ops.compile(b.eager, mode)(b.to_native(x)))
        check(got, want, "float64", "tensorflow", what=f"{name} forward in {mode}")
    dy = np.random.default_rng(15).uniform(-1.0, 1.0, m.shapes(B)[-1])
    dx_ref, g_ref = compose.reference_vjp(m, x, dy)
    dx, grads = tf.function(b.step)(b.to_native(x), b.native_dy(dy))
    check(ops.to_numpy(dx), dx_ref, "float64", "tensorflow", what=f"{name} dL/dx in tf.function")
    for key, g in grads.items():
        check(ops.to_numpy(g), g_ref[key], "float64", "tensorflow", what=f"{name} dL/d{key} in tf.function")


def test_jax_voice_is_one_jitted_program():
    """The JAX voice's forward is jax.jit of the whole graph (compose's jit_model), traced once per shape."""
    jax = load_framework("jax")
    b, m = built("jax", "residual_block_2d", "float64"), model("residual_block_2d")
    composed = b.eager
    assert hasattr(composed._forward, "lower"), "the JAX forward is not a jax.jit function"
    text = composed._forward.lower(composed.weights, jax.numpy.asarray(data(m, 16))).as_text()
    assert "dot_general" in text  # the convolutions' one matmul each, in one program


# --------------------------------------------------------------------------- the reference against differences

TINY: dict[str, tuple[tuple[int, ...], list]] = {
    **{f"conv1d-{label}": ((7, 4), [("conv1d", "c", {"filters": 6, "kernel_size": 3, **o})])
       for label, o in (("valid-strided", {"strides": 2}), ("same-dilated-grouped", {"padding": "same", "dilation": 2,
                                                                                   "groups": 2}),
                        ("causal-strided-dilated", {"padding": "causal", "strides": 2, "dilation": 2}),
                        ("explicit-grouped-nobias", {"padding": [2, 0], "groups": 2, "use_bias": False,
                                                     "activation": "tanh"}))},
    **{f"layer_norm-{c}-{s}": ((4, 3), [("layer_norm", "l", {"center": c, "scale": s})])
       for c in (True, False) for s in (True, False)},
    "batch_norm-2d": ((3, 2, 3), [("batch_norm", "b", {"epsilon": 1e-2, "center": False})]),
    "global_max_pool-1d": ((4, 3), [("global_max_pool", "g", {})]),
    "global_max_pool-2d": ((3, 2, 3), [("global_max_pool", "g", {})]),
    "global_avg_pool-2d": ((3, 2, 3), [("global_avg_pool", "g", {})]),
    "reshape-permute-mid": ((4, 3), [("dense", "d", {"units": 4}), ("reshape", "r", {"target_shape": [2, 8]}),
                                     ("permute", "p", {"dims": [2, 1]}), ("dense", "e", {"units": 2})]),
    "concatenate-axis1": ((3, 2), [("dense", "a", {"units": 2}, (INPUT,)), ("dense", "b", {"units": 2}, (INPUT,)),
                                   ("concatenate", "cat", {"axis": 1}, ("a", "b")), ("dense", "o", {"units": 3})]),
    "read-twice": ((3, 2), [("dense", "a", {"units": 2, "activation": "tanh"}),
                            ("dense", "b", {"units": 2}, ("a",)), ("dense", "c", {"units": 2, "activation": "tanh"}, ("a",)),
                            ("add", "s", {}, ("b", "c", "a"))]),
}  # fmt: skip


def _fd_errors(m: Model, x: np.ndarray, dy: np.ndarray, vjp, forward) -> dict[str, tuple[float, float, float]]:
    """{input or parameter: (relative error, absolute error, max |fd|)} of vjp against central differences of
    L = <dy, forward(model, x)>."""
    keys = list(m.parameters())
    inputs = {"x": x.copy(), **{f"{k[0]}.{k[1]}": np.array(a, dtype=np.float64) for k, a in m.parameters().items()}}

    def loss(a):
        return float(np.sum(dy * forward(m.with_parameters({k: a[f"{k[0]}.{k[1]}"] for k in keys}), a["x"])))

    dx, grads = vjp(m, x, dy)[:2]
    out = {}
    for name, g in {"x": dx, **{f"{k[0]}.{k[1]}": grads[k] for k in keys}}.items():
        s = error_stats(g, central_differences(loss, inputs, name))
        out[name] = (s.rel, s.max_abs, s.scale)
    return out


@pytest.mark.parametrize("case", list(TINY))
def test_reference_vjp_of_each_kind_matches_central_differences(case):
    shape, specs = TINY[case]
    m = seeded.chain(case, shape, specs, seed=50, batch=B)
    x = np.random.default_rng(51).uniform(-1.0, 1.0, (B, *shape))
    dy = np.random.default_rng(52).uniform(-1.0, 1.0, m.shapes(B)[-1])
    for name, (rel, _, _) in _fd_errors(m, x, dy, compose.reference_vjp, compose.reference_forward).items():
        assert rel <= FD_BAR, f"{case} d/d{name}: relative error {rel:.2e} > {FD_BAR:.0e}"


def _train_out(m: Model, x: np.ndarray) -> np.ndarray:
    return compose.reference_train(m, x)[0][-1]


TRAIN = {
    "conv1d-batch_norm-relu-dense": ((6, 3), [("conv1d", "c", {"filters": 4, "kernel_size": 3, "padding": "same"}),
                                              ("batch_norm", "bn", {"epsilon": 1e-3}),
                                              ("activation", "r", {"activation": "tanh"}),
                                              ("global_avg_pool", "g", {}), ("dense", "o", {"units": 2})]),
    "batch_norm-2d-unbiased-noscale": ((3, 2, 3), [("batch_norm", "bn", {"scale": False, "epsilon": 1e-2,
                                                                         "variance_update": "unbiased"})]),
    "dense-batch_norm-nocenter": ((4,), [("dense", "d", {"units": 3}),
                                         ("batch_norm", "bn", {"center": False, "momentum": 0.5}),
                                         ("dense", "o", {"units": 2, "activation": "tanh"})]),
}  # fmt: skip
ZERO_FLOOR = 1e-8  # a gradient that is exactly zero (a bias right before a training-mode BatchNorm): absolute


@pytest.mark.parametrize("case", list(TRAIN))
def test_reference_batch_norm_training_vjp_matches_central_differences(case):
    """Through the batch statistics. A bias right before the BatchNorm has an exactly-zero gradient in training mode
    (the batch mean removes it): its central differences are rounding noise, checked against an absolute floor,
    and the reference's own value must be zero to rounding."""
    shape, specs = TRAIN[case]
    m = seeded.chain(case, shape, specs, seed=60, batch=4)
    x = np.random.default_rng(61).uniform(-1.0, 1.0, (4, *shape))
    dy = np.random.default_rng(62).uniform(-1.0, 1.0, m.shapes(4)[-1])
    ref_dx, ref_grads = compose.reference_train_vjp(m, x, dy)[:2]
    for name, (rel, err, scale) in _fd_errors(m, x, dy, compose.reference_train_vjp, _train_out).items():
        if scale < ZERO_FLOOR:  # an exactly-zero gradient
            assert err <= ZERO_FLOOR, f"{case} d/d{name}: {err:.1e} from differences of {scale:.1e}"
            layer, w = name.split(".")
            assert np.max(np.abs(ref_grads[(layer, w)])) <= 1e-12, f"{case}: {name} is not zero in training mode"
        else:
            assert rel <= FD_BAR, f"{case} d/d{name}: relative error {rel:.2e} > {FD_BAR:.0e}"
    if case.startswith(("conv1d", "dense")):
        bias = ("c", "bias") if case.startswith("conv1d") else ("d", "bias")
        assert np.max(np.abs(ref_grads[bias])) <= 1e-12  # the case holds the zero-gradient bias it claims
    # and training mode is not inference: the same model's inference gradients differ
    inf_dx = compose.reference_vjp(m, x, dy)[0]
    assert np.max(np.abs(inf_dx - ref_dx)) > 1e-3


# --------------------------------------------------------------------------- BatchNorm training: independent oracles


def _bn_model(variance_update: str, momentum: float = 0.8, epsilon: float = 1e-3) -> Model:
    return seeded.chain(f"bn-{variance_update}", (5, 4), [
        ("batch_norm", "bn", {"momentum": momentum, "epsilon": epsilon, "variance_update": variance_update})],
        seed=70, batch=B)  # fmt: skip


def _bn_x() -> np.ndarray:
    return np.random.default_rng(71).normal(0.3, 1.5, (B, 5, 4))  # a mean and a spread the moving stats move to


def _torch_bn_mismatch(torch, m: Model, x: np.ndarray) -> float:
    """The worst relative error between reference_train and torch.nn.BatchNorm1d (train mode, momentum 1 - m): the
    output and the new running_mean / running_var."""
    o, w = m.layers[0].options, m.layers[0].weights
    bn = torch.nn.BatchNorm1d(4, eps=o["epsilon"], momentum=1.0 - o["momentum"], dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(w["gamma"]))
        bn.bias.copy_(torch.from_numpy(w["beta"]))
        bn.running_mean.copy_(torch.from_numpy(w["moving_mean"]))
        bn.running_var.copy_(torch.from_numpy(w["moving_var"]))
    bn.train()
    with torch.no_grad():
        y = bn(torch.from_numpy(x).permute(0, 2, 1)).permute(0, 2, 1).numpy()  # torch reads (B, C, L)
    outs, state = compose.reference_train(m, x)
    return max(error_stats(outs[-1], y).rel, error_stats(state[("bn", "moving_mean")], bn.running_mean.numpy()).rel,
               error_stats(state[("bn", "moving_var")], bn.running_var.numpy()).rel)


def _keras_bn_mismatch(keras, m: Model, x: np.ndarray) -> float:
    """The same against keras.layers.BatchNormalization(momentum=m) called with training=True, float64."""
    o, w = m.layers[0].options, m.layers[0].weights
    bn = keras.layers.BatchNormalization(momentum=o["momentum"], epsilon=o["epsilon"], dtype="float64")
    xin = keras.ops.convert_to_tensor(x, dtype="float64")
    bn.build(xin.shape)
    bn.set_weights([w["gamma"], w["beta"], w["moving_mean"], w["moving_var"]])
    y = np.asarray(bn(xin, training=True))
    outs, state = compose.reference_train(m, x)
    return max(error_stats(outs[-1], y).rel,
               error_stats(state[("bn", "moving_mean")], np.asarray(bn.moving_mean.value)).rel,
               error_stats(state[("bn", "moving_var")], np.asarray(bn.moving_variance.value)).rel)


ORACLE_BAR = 1e-12  # float64 both sides: the same sums in another order


def _plant(monkeypatch, change):
    """Plant a convention bug in the reference's BatchNorm.forward_train: `change(opts)` -> the opts it runs with."""
    real = normalization.BatchNorm.forward_train
    monkeypatch.setattr(normalization.BatchNorm, "forward_train", lambda self, x, opts, w: real(self, x, change(opts), w))


def test_reference_unbiased_update_is_torch_batchnorm1d_and_planted_conventions_are_caught(monkeypatch):
    torch = load_framework("torch")
    m, x = _bn_model("unbiased"), _bn_x()
    err = _torch_bn_mismatch(torch, m, x)
    assert err <= ORACLE_BAR, f"reference_train differs from torch.nn.BatchNorm1d by {err:.2e}"
    assert _torch_bn_mismatch(torch, _bn_model("biased"), x) > 1e-3  # the two conventions differ on this batch

    _plant(monkeypatch, lambda o: {**o, "variance_update": "biased"})  # the biased variance in the unbiased branch
    planted_variance = _torch_bn_mismatch(torch, m, x)
    monkeypatch.undo()
    _plant(monkeypatch, lambda o: {**o, "momentum": 1.0 - o["momentum"]})  # torch's momentum read as Keras'
    planted_momentum = _torch_bn_mismatch(torch, m, x)
    monkeypatch.undo()
    assert planted_variance > 1e-3, f"the biased variance in the unbiased branch still matches torch ({planted_variance:.1e})"
    assert planted_momentum > 1e-3, f"a swapped momentum still matches torch ({planted_momentum:.1e})"


def test_reference_biased_update_is_keras_batch_normalization_and_planted_conventions_are_caught(monkeypatch):
    keras = load_framework("keras")
    m, x = _bn_model("biased", momentum=0.7), _bn_x()
    err = _keras_bn_mismatch(keras, m, x)
    assert err <= ORACLE_BAR, f"reference_train differs from keras BatchNormalization(training=True) by {err:.2e}"
    assert _keras_bn_mismatch(keras, _bn_model("unbiased", momentum=0.7), x) > 1e-3

    _plant(monkeypatch, lambda o: {**o, "momentum": 1.0 - o["momentum"]})
    planted_momentum = _keras_bn_mismatch(keras, m, x)
    monkeypatch.undo()
    _plant(monkeypatch, lambda o: {**o, "variance_update": "unbiased"})
    planted_variance = _keras_bn_mismatch(keras, m, x)
    monkeypatch.undo()
    assert planted_momentum > 1e-3, f"a swapped momentum still matches Keras ({planted_momentum:.1e})"
    assert planted_variance > 1e-3, f"the unbiased update still matches Keras ({planted_variance:.1e})"


# --------------------------------------------------------------------------- the graph machinery


def _last_writer_wins(model, x, dy, inputs, masks, step):
    """compose._backward with one planted bug: a tensor read by several layers keeps the last gradient written."""
    plan = compose._plan(model)
    acc = {len(model.layers) - 1: dy}
    grads = {}
    for i in range(len(model.layers) - 1, -1, -1):
        layer, (kind, opts, _, srcs, _) = model.layers[i], plan[i]
        g = acc.pop(i)
        w = {k: np.asarray(v, dy.dtype) for k, v in layer.weights.items()}
        gx, gw = step(i, kind, opts, w, inputs[i], masks[i], g)
        for name, a in gw.items():
            grads[(layer.name, name)] = a
        for j, gj in zip(srcs, gx if kind.ARITY != 1 else [gx], strict=True):
            acc[j] = gj  # the bug: no sum
    return acc.get(-1), {k: grads[k] for k in model.parameters()}


def _read_twice_errors(m: Model, x, dy) -> dict[str, float]:
    return {k: rel for k, (rel, _, _) in _fd_errors(m, x, dy, compose.reference_vjp, compose.reference_forward).items()}


def test_a_tensor_read_twice_gets_the_sum_of_both_gradients_and_a_planted_last_writer_wins_is_caught(monkeypatch):
    """The input is read by two layers, layer a's output by three (b, c and the add): differences and every autograd
    voice agree with the reference's sum; the same backward keeping only the last writer's gradient fails."""
    shape, specs = ((3, 2), [("dense", "a", {"units": 2, "activation": "tanh"}, (INPUT,)),
                             ("dense", "a2", {"units": 2}, (INPUT,)),
                             ("dense", "b", {"units": 2}, ("a",)),
                             ("dense", "c", {"units": 2, "activation": "tanh"}, ("a",)),
                             ("add", "s", {}, ("b", "c", "a", "a2"))])  # fmt: skip
    m = seeded.chain("read-twice", shape, specs, seed=80, batch=B)
    assert len(m.consumers("a")) == 3 and len(m.consumers(INPUT)) == 2
    x = np.random.default_rng(81).uniform(-1.0, 1.0, (B, *shape))
    dy = np.random.default_rng(82).uniform(-1.0, 1.0, m.shapes(B)[-1])
    good = _read_twice_errors(m, x, dy)
    assert max(good.values()) <= FD_BAR, f"the reference's sums: {good}"
    dx_ref, g_ref = compose.reference_vjp(m, x, dy)
    for voice in ("torch", "tensorflow", "jax"):
        if unavailable_reason(voice) is None:
            dx, grads = voices.build(voice, m, "float64").vjp(x, dy)
            check(dx, dx_ref, "float64", voice, what=f"read-twice {voice} dL/dx")
            for k, g in grads.items():
                check(g, g_ref[k], "float64", voice, what=f"read-twice {voice} dL/d{k}")

    monkeypatch.setattr(compose, "_backward", _last_writer_wins)
    bad = _read_twice_errors(m, x, dy)
    monkeypatch.undo()
    assert bad["x"] > 1e-2 and bad["a.kernel"] > 1e-2, f"a last-writer-wins backward passed: {bad}"


# --------------------------------------------------------------------------- global max pool: ties and JAX's jnp.max

GLOBAL_MAX_TIES = {  # where each from-primitives voice sends a global max pool's dy among tied maxima
    "numpy": "first",  # global_pool.py: the first maximum in row-major order (max_pool2d's convention)
    "torch": "split",  # torch.amax's backward divides dy evenly among the tied maxima
    "tensorflow": "split",  # tf.reduce_max's gradient divides dy evenly among the tied maxima
    "jax": "first",  # jax_impl.amax is a gather at jnp.argmax, the first maximum
}


@pytest.mark.parametrize("voice", voices.PRIMITIVES)
def test_global_max_pool_ties_route_as_declared(voice):
    if unavailable_reason(voice) is not None:
        pytest.skip(unavailable_reason(voice))
    m = seeded.chain("gmp-ties", (4, 2), [("global_max_pool", "g", {})], batch=1)
    x = np.array([[[1.0, -2.0], [3.0, -2.0], [3.0, -5.0], [0.5, -2.0]]])  # channel 0: 2 tied, channel 1: 3 tied
    dx, _ = voices.build(voice, m, "float64").vjp(x, np.array([[6.0, 9.0]]))
    first = np.array([[[0, 9.0], [6.0, 0], [0, 0], [0, 0]]])
    split = np.array([[[0, 3.0], [3.0, 3.0], [3.0, 0], [0, 3.0]]])
    rule = "first" if np.allclose(dx, first, rtol=0, atol=1e-15) else "split" if np.allclose(dx, split, rtol=0, atol=1e-15) else f"other {dx.tolist()}"
    assert rule == GLOBAL_MAX_TIES[voice], f"{voice} routes tied maxima by {rule}; declared {GLOBAL_MAX_TIES[voice]}"


def test_jax_amax_is_a_gather_because_jnp_max_vjp_breaks_after_a_layer_norm_under_jit(monkeypatch):
    """jax_impl.amax gathers at the argmax. jnp.max's vjp finds the maxima by equality between the operand and the
    result; inside the jitted forward + backward of conv1d -> layer_norm -> global_max_pool it came out O(1) wrong
    here (XLA computes the normalised operand twice, rounded differently, so the equality misses), while the same
    vjp unjitted is right. Where a later XLA gets jnp.max right, this skips: the gather stays correct either way."""
    jax_impl = load("jax")
    name = "branches-max_pools-reshape-permute"
    m, x = model(name), data(model(name), 12)
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1])
    dx_ref, g_ref = compose.reference_vjp(m, x, dy)

    def worst() -> float:
        dx, grads = voices.build("jax", m, "float64").vjp(x, dy)
        return max(error_stats(dx, dx_ref).rel, *(error_stats(g, g_ref[k]).rel for k, g in grads.items()))

    assert worst() <= 1e-10
    jnp = load_framework("jax").numpy
    monkeypatch.setattr(jax_impl, "amax", lambda x, axes, keepdims=False: jnp.max(x, axis=tuple(axes), keepdims=keepdims))
    planted = worst()
    monkeypatch.undo()
    if planted <= 1e-10:
        pytest.skip(f"jnp.max's jitted vjp is right on this JAX/XLA ({planted:.1e}); the gather is kept, as correct")
    assert planted > 1e-3
