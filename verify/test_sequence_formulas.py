"""The LSTM's counts in impls/contract/formulas.py against the layers frameworks build, and a model description's
param_count() / flops() for lstm, bidirectional and embedding models against counts by hand.

    lstm_param_count(I, H, "torch") = torch.nn.LSTM(I, H)'s parameters (one and two directions, two layers);
    lstm_param_count(I, H, "keras") = keras.layers.LSTM(H) built on I features (and inside Bidirectional);
    lstm_matmul_flops(B, T, I, H) = torch.utils.flop_counter's count of nn.LSTM's forward on the meta device (per
    direction);
    Model.param_count() is the canonical count (torch's two biases); Keras' is 4H less per direction.

A missing framework skips with its reason (verify/conftest.load_framework).
"""

from __future__ import annotations

import itertools

import pytest

from impls.contract import formulas as F
from impls.model import seeded
from verify.conftest import load_framework

SIZES = [(1, 1), (3, 2), (4, 3), (2, 5), (7, 4)]  # (I, H), I != H mostly


def _torch_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("I, H", SIZES)
def test_lstm_param_count_is_torch_nn_lstms(I, H):
    torch = load_framework("torch")
    one = F.lstm_param_count(I, H, "torch")
    assert one == 4 * (I * H + H * H) + 8 * H
    assert _torch_params(torch.nn.LSTM(I, H)) == one
    assert _torch_params(torch.nn.LSTM(I, H, bidirectional=True)) == 2 * one
    # two layers: the second takes the first's output, H features (2H bidirectional)
    assert _torch_params(torch.nn.LSTM(I, H, num_layers=2)) == one + F.lstm_param_count(H, H, "torch")
    assert _torch_params(torch.nn.LSTM(I, H, num_layers=2, bidirectional=True)) == 2 * (
        one + F.lstm_param_count(2 * H, H, "torch"))
    assert _torch_params(torch.nn.LSTM(I, H, bias=False)) == one - 8 * H


@pytest.mark.parametrize("I, H", SIZES)
def test_lstm_param_count_is_keras_lstms(I, H):
    keras = load_framework("keras")
    one = F.lstm_param_count(I, H, "keras")
    assert one == 4 * (I * H + H * H) + 4 * H == F.lstm_param_count(I, H, "torch") - 4 * H
    lstm = keras.layers.LSTM(H)
    lstm.build((None, 5, I))
    assert lstm.count_params() == one
    bi = keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True))
    bi.build((None, 5, I))
    assert bi.count_params() == 2 * one


@pytest.mark.parametrize("B, T, I, H", [(1, 1, 1, 1), (2, 3, 4, 3), (3, 2, 2, 5)])
def test_lstm_matmul_flops_are_torch_flop_counters(B, T, I, H):
    torch = load_framework("torch")
    from torch.utils.flop_counter import FlopCounterMode

    expected = F.lstm_matmul_flops(B, T, I, H)
    assert expected == 2 * B * T * 4 * H * (I + H)
    assert 3 * expected == 4 * F.gru_matmul_flops(B, T, I, H)  # the docstring's 4/3 of a GRU
    meta = {"device": "meta"}  # the CPU's fused aten::lstm is opaque to the counter; on meta it decomposes
    x = torch.empty((B, T, I), **meta)
    for directions, module in ((1, torch.nn.LSTM(I, H, batch_first=True, **meta)),
                               (2, torch.nn.LSTM(I, H, batch_first=True, bidirectional=True, **meta))):
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            module(x)
        assert counter.get_total_flops() == directions * expected, f"{directions} direction(s)"


def _hand_lstm(I, H, directions=1):
    return directions * (I * 4 * H + H * 4 * H + 4 * H + 4 * H)  # W, U, b_x, b_h per direction


@pytest.mark.parametrize("B", [1, 3])
def test_model_param_count_and_flops_of_sequence_models_are_the_hand_counts(B):
    T, V, D, H1, H2 = 6, 11, 4, 3, 5
    m = seeded.chain("seq", (T,), [
        ("embedding", "e", {"input_dim": V, "output_dim": D, "mask_zero": True}),
        ("lstm", "b", {"units": H1, "return_sequences": True, "direction": "bidirectional"}),  # concat: 2 H1
        ("dense", "d", {"units": 2}),
        ("lstm", "s", {"units": H2, "return_sequences": True, "direction": "bidirectional", "merge_mode": "sum"}),
        ("take_step", "t", {"index": -1}),
    ], batch=B)  # fmt: skip
    params = V * D + _hand_lstm(D, H1, 2) + (2 * H1 * 2 + 2) + _hand_lstm(2, H2, 2)
    assert m.param_count() == params
    flops = (0  # a lookup has no products
             + 2 * (2 * B * T * 4 * H1 * (D + H1))  # two directions
             + 2 * B * T * (2 * H1) * 2  # the dense on every step
             + 2 * (2 * B * T * 4 * H2 * (2 + H2)))  # fmt: skip
    assert m.flops(B) == flops

    masked = seeded.chain("masked", (T, D), [
        ("masking", "m", {"mask_value": 0.0}),
        ("lstm", "l", {"units": H1, "return_sequences": True}),
        ("gru", "g", {"units": H2, "direction": "bidirectional", "merge_mode": "ave"}),
    ], batch=B)  # fmt: skip
    gru = 3 * (H1 * H2 + H2 * H2) + 6 * H2
    assert masked.param_count() == _hand_lstm(D, H1) + 2 * gru
    assert masked.flops(B) == 2 * B * T * 4 * H1 * (D + H1) + 2 * (2 * B * T * 3 * H2 * (H1 + H2))
    assert masked.flops(B) == F.lstm_matmul_flops(B, T, D, H1) + 2 * F.gru_matmul_flops(B, T, H1, H2)


def test_a_bidirectional_stack_counts_what_torch_and_keras_build():
    """The description of two stacked bidirectional LSTMs holds torch's nn.LSTM(num_layers=2, bidirectional)
    parameters exactly, and 4H per direction and layer more than Keras' Bidirectional(LSTM) pair (one bias)."""
    torch, keras = load_framework("torch"), load_framework("keras")
    T, I, H = 4, 3, 5
    bi = {"units": H, "return_sequences": True, "direction": "bidirectional"}
    m = seeded.chain("stack", (T, I), [("lstm", "a", bi), ("lstm", "b", bi)], batch=2)
    assert m.param_count() == _torch_params(torch.nn.LSTM(I, H, num_layers=2, bidirectional=True))
    x = keras.Input((T, I))
    y = keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True))(x)
    y = keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True))(y)
    assert m.param_count() == keras.Model(x, y).count_params() + 2 * 2 * 4 * H


@pytest.mark.parametrize("I, H", list(itertools.product([0, -1, 2.5, True], [3])) + [(3, 0)])
def test_lstm_counts_refuse_bad_sizes(I, H):
    with pytest.raises((ValueError, TypeError)):
        F.lstm_param_count(I, H)
    with pytest.raises((ValueError, TypeError)):
        F.lstm_matmul_flops(2, 3, I, H)


def test_lstm_param_count_refuses_an_unknown_convention():
    with pytest.raises(ValueError, match="onnx"):
        F.lstm_param_count(3, 3, "onnx")
