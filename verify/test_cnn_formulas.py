"""Issue 18's kinds in a model description's param_count() / flops() against the layers frameworks build.

    conv1d: Model.param_count() = torch.nn.Conv1d's parameters = keras Conv1D's count_params() (groups, no bias);
    Model.flops(B) = formulas.conv2d_flops of its (1, K) view on a (B, 1, L, C) map = torch.utils.flop_counter's
    count of torch's conv1d forward (on the meta device), in every padding mode with strides, dilation and groups.
    batch_norm: 4C = Keras' count_params() (trainable gamma, beta + non-trainable moving mean, variance) = torch
    BatchNorm1d's parameters + its running_mean / running_var buffers (num_batches_tracked is a step counter, not a
    weight); parameters() holds the trainable 2C, state() the moving 2C. layer_norm: 2C (center/scale off: less).
    The parameter-free kinds (global pools, reshape, permute, add, concatenate) count 0 parameters and 0 FLOPs.
    Whole models (a time-series classifier) against the same model built in Keras and in torch.

A missing framework skips with its reason (verify/conftest.load_framework).
"""

from __future__ import annotations

import pytest

from impls.contract import formulas as F
from impls.model import seeded
from impls.model.description import INPUT
from verify.conftest import load_framework

L = 11
CONV1D = [  # (C, filters, K, strides, padding, dilation, groups, use_bias): C != filters
    (4, 6, 3, 1, "valid", 1, 1, True),
    (4, 6, 3, 2, "valid", 1, 2, False),
    (3, 5, 2, 1, "same", 2, 1, True),
    (4, 2, 3, 2, "same", 1, 2, True),
    (6, 4, 3, 1, "causal", 2, 2, True),
    (3, 4, 2, 3, "causal", 1, 1, False),
    (4, 6, 3, 2, [2, 1], 1, 2, True),
    (2, 3, 4, 1, [0, 3], 2, 1, True),
]


def _conv1d_model(C, filters, K, strides, padding, dilation, groups, use_bias, batch=3):
    return seeded.chain("conv1d", (L, C), [("conv1d", "c", {
        "filters": filters, "kernel_size": K, "strides": strides, "padding": padding, "dilation": dilation,
        "groups": groups, "use_bias": use_bias})], batch=batch)  # fmt: skip


def _pads(K, strides, padding, dilation) -> tuple[int, int]:
    """(left, right) by hand: TensorFlow's "same" puts the odd pad after; "causal" all (K - 1) d before."""
    span = dilation * (K - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    if padding == "same":
        out = -(-L // strides)
        total = max((out - 1) * strides + span - L, 0)
        return total // 2, total - total // 2
    return tuple(padding)


def _out_len(K, strides, padding, dilation) -> int:
    left, right = _pads(K, strides, padding, dilation)
    return (L + left + right - dilation * (K - 1) - 1) // strides + 1


def _torch_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("case", CONV1D, ids=lambda c: "-".join(map(str, c)))
def test_conv1d_param_count_is_torch_conv1d_and_keras_conv1d(case):
    C, filters, K, strides, padding, dilation, groups, use_bias = case
    m = _conv1d_model(*case)
    hand = K * (C // groups) * filters + (filters if use_bias else 0)
    assert m.param_count() == hand == sum(a.size for a in m.parameters().values())
    torch = load_framework("torch")
    assert _torch_params(torch.nn.Conv1d(C, filters, K, stride=strides, dilation=dilation, groups=groups,
                                         bias=use_bias)) == hand
    keras = load_framework("keras")
    layer = keras.layers.Conv1D(filters, K, strides=strides, dilation_rate=dilation, groups=groups, use_bias=use_bias,
                                padding=padding if isinstance(padding, str) else "valid")
    layer.build((None, L, C))
    assert layer.count_params() == hand


@pytest.mark.parametrize("case", CONV1D, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("B", [1, 3])
def test_conv1d_flops_are_conv2d_flops_of_the_1_by_k_view_and_torch_flop_counters(case, B):
    C, filters, K, strides, padding, dilation, groups, _ = case
    m = _conv1d_model(*case, batch=B)
    OL = _out_len(K, strides, padding, dilation)
    assert m.shapes(B)[-1] == (B, OL, filters)
    view = F.conv2d_flops(B, 1, OL, 1, K, C, filters, groups)
    assert m.flops(B) == view == 2 * B * OL * K * (C // groups) * filters
    torch = load_framework("torch")
    from torch.utils.flop_counter import FlopCounterMode

    left, right = _pads(K, strides, padding, dilation)
    x = torch.empty((B, C, L + left + right), device="meta")  # the pads are data movement, not products
    w = torch.empty((filters, C // groups, K), device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = torch.nn.functional.conv1d(x, w, None, stride=strides, dilation=dilation, groups=groups)
    assert tuple(y.shape) == (B, filters, OL)
    assert counter.get_total_flops() == view


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)])
def test_batch_norm_counts_4c_as_keras_and_torch_parameters_plus_buffers(center, scale):
    C = 5
    m = seeded.chain("bn", (L, C), [("batch_norm", "bn", {"center": center, "scale": scale})])
    trainable = C * (int(center) + int(scale))
    assert m.param_count() == trainable + 2 * C
    assert sum(a.size for a in m.parameters().values()) == trainable
    assert sorted(k[1] for k in m.state()) == ["moving_mean", "moving_var"]
    assert sum(a.size for a in m.state().values()) == 2 * C
    assert m.flops(3) == 0
    keras = load_framework("keras")
    bn = keras.layers.BatchNormalization(center=center, scale=scale)
    bn.build((None, L, C))
    assert bn.count_params() == m.param_count()
    assert sum(int(w.shape[0]) for w in bn.trainable_weights) == trainable
    assert sum(int(w.shape[0]) for w in bn.non_trainable_weights) == 2 * C
    torch = load_framework("torch")
    if center == scale:  # torch's affine switches gamma and beta together
        tbn = torch.nn.BatchNorm1d(C, affine=center)
        buffers = {n: b.numel() for n, b in tbn.named_buffers()}
        assert buffers.pop("num_batches_tracked") == 1  # a step counter, not a weight: not counted
        assert _torch_params(tbn) == trainable and sum(buffers.values()) == 2 * C
        assert _torch_params(tbn) + sum(buffers.values()) == m.param_count()


@pytest.mark.parametrize("center, scale", [(True, True), (False, True), (True, False), (False, False)])
def test_layer_norm_counts_as_keras_and_torch(center, scale):
    C = 6
    m = seeded.chain("ln", (L, C), [("layer_norm", "ln", {"center": center, "scale": scale})])
    assert m.param_count() == C * (int(center) + int(scale)) == sum(a.size for a in m.parameters().values())
    assert not m.state() and m.flops(3) == 0
    keras = load_framework("keras")
    ln = keras.layers.LayerNormalization(center=center, scale=scale)
    ln.build((None, L, C))
    assert ln.count_params() == m.param_count()
    torch = load_framework("torch")
    if scale:  # torch's bias needs elementwise_affine (its gamma)
        assert _torch_params(torch.nn.LayerNorm(C, elementwise_affine=True, bias=center)) == m.param_count()
    elif not center:
        assert _torch_params(torch.nn.LayerNorm(C, elementwise_affine=False)) == 0 == m.param_count()


def test_the_parameter_free_kinds_count_nothing():
    m = seeded.chain("free", (4, 6, 3), [
        ("global_max_pool", "gmp", {}, (INPUT,)),
        ("reshape", "r", {"target_shape": [12, 6]}, (INPUT,)),
        ("permute", "p", {"dims": [2, 1]}),
        ("global_avg_pool", "gap", {}),  # (B, 12)
        ("reshape", "r2", {"target_shape": [3, 4]}),
        ("global_max_pool", "gmp1", {}),  # (B, 4)
        ("concatenate", "cat", {}, ("gmp", "gmp1")),  # (B, 7)
        ("add", "sum", {}, ("cat", "cat")),
    ])  # fmt: skip
    assert m.param_count() == 0 and m.flops(3) == 0 and not m.parameters() and not m.state()
    assert m.shapes(3)[-1] == (3, 7)


def _classifier():
    return seeded.chain("ts", (L, 3), [
        ("conv1d", "c1", {"filters": 5, "kernel_size": 3, "padding": "same"}),
        ("batch_norm", "bn1", {}),
        ("activation", "r1", {"activation": "relu"}),
        ("conv1d", "c2", {"filters": 4, "kernel_size": 3, "strides": 2, "groups": 1}),
        ("batch_norm", "bn2", {"center": False}),
        ("activation", "r2", {"activation": "relu"}),
        ("conv1d", "c3", {"filters": 6, "kernel_size": 2, "padding": "causal", "dilation": 2, "groups": 2}),
        ("layer_norm", "ln", {}),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ])  # fmt: skip


def test_a_time_series_classifiers_counts_are_the_keras_model_and_torch_modules():
    m = _classifier()
    hand = (3 * 3 * 5 + 5) + 4 * 5 + (3 * 5 * 4 + 4) + 3 * 4 + (2 * 2 * 6 + 6) + 2 * 6 + (6 * 3 + 3)
    assert m.param_count() == hand
    B = 2
    OL1, OL2 = L, (L - 3) // 2 + 1
    flops = F.conv2d_flops(B, 1, OL1, 1, 3, 3, 5) + F.conv2d_flops(B, 1, OL2, 1, 3, 5, 4) \
        + F.conv2d_flops(B, 1, OL2, 1, 2, 4, 6, 2) + F.dense_flops(B, 6, 3)
    assert m.flops(B) == flops

    keras = load_framework("keras")
    km = keras.Sequential([
        keras.Input((L, 3)),
        keras.layers.Conv1D(5, 3, padding="same"), keras.layers.BatchNormalization(), keras.layers.ReLU(),
        keras.layers.Conv1D(4, 3, strides=2), keras.layers.BatchNormalization(center=False), keras.layers.ReLU(),
        keras.layers.Conv1D(6, 2, padding="causal", dilation_rate=2, groups=2), keras.layers.LayerNormalization(),
        keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(3, activation="softmax"),
    ])  # fmt: skip
    assert km.count_params() == m.param_count()
    assert tuple(km.output_shape) == (None, 3)

    torch = load_framework("torch")
    from torch.utils.flop_counter import FlopCounterMode

    nn = torch.nn
    meta = {"device": "meta"}
    tm = nn.Sequential(
        nn.Conv1d(3, 5, 3, padding="same", **meta), nn.BatchNorm1d(5, **meta), nn.ReLU(),
        nn.Conv1d(5, 4, 3, stride=2, **meta), nn.BatchNorm1d(4, **meta), nn.ReLU(),
        nn.ConstantPad1d((2, 0), 0.0), nn.Conv1d(4, 6, 2, dilation=2, groups=2, **meta),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 3, **meta),
    )  # fmt: skip
    # FLOPs only (the normalisations count none): no LayerNorm over torch's channel axis is needed here
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        y = tm(torch.empty((B, 3, L), **meta))
    assert tuple(y.shape) == (B, 3)
    assert counter.get_total_flops() == m.flops(B)
