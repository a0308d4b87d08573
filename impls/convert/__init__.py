"""Weight and layout converters between the canonical layouts and the frameworks' own.

Pure NumPy; every fact about a framework's weight layout lives in this package and nowhere else, one module a
subject (each opens with the facts it holds):
- gru.py: the GRU, canonical <-> torch.nn.GRU, keras.layers.GRU, ONNX GRU, flax.linen.GRUCell, and the gradients'
  maps where a layout folds a bias (Keras' single bias, Flax's folded z and r biases)
- lstm.py: the LSTM, canonical <-> torch.nn.LSTM, keras.layers.LSTM, ONNX LSTM, flax.linen.LSTMCell, likewise
- normalization.py: batch_norm / layer_norm <-> flax.linen.BatchNorm / LayerNorm
- convolution.py: HWIO <-> OIHW kernels, Keras' depthwise kernel <-> the grouped one, the padding orders
- images.py: NHWC <-> NCHW, and the Flatten row permutation of the Dense after a conv stack
- dense.py: (in, out) <-> torch.nn.Linear's (out, in)

Callers use the package's names (`from impls import convert; convert.gru_to_torch(...)`), which is also where tests
plant bugs (`monkeypatch.setattr(convert, name, ...)`); common.py says which converters look others up here.
"""

from __future__ import annotations

from .convolution import (
    depthwise_to_grouped,
    grouped_to_depthwise,
    hwio_to_oihw,
    oihw_to_hwio,
    pads_from_onnx,
    pads_to_onnx,
    pads_to_torch,
)
from .attention import mha_from_torch, mha_to_torch  # issue 25
from .dense import dense_from_torch, dense_to_torch
from .gru import (
    FLAX_GATES,
    FLAX_RECURRENT,
    flax_folded_bias,
    gru_from_flax,
    gru_from_keras,
    gru_from_onnx,
    gru_from_torch,
    gru_grads_from_flax,
    gru_grads_from_keras,
    gru_grads_to_flax,
    gru_grads_to_keras,
    gru_to_flax,
    gru_to_keras,
    gru_to_onnx,
    gru_to_torch,
    keras_single_bias,
)
from .images import (
    features_nchw_to_nhwc,
    features_nhwc_to_nchw,
    flatten_rows_nchw_to_nhwc,
    flatten_rows_nhwc_to_nchw,
    nchw_to_nhwc,
    nhwc_to_nchw,
)
from .lstm import (
    FLAX_LSTM_HIDDEN,
    FLAX_LSTM_INPUT,
    ONNX_LSTM_FROM_CANON,
    flax_lstm_folded_bias,
    lstm_from_flax,
    lstm_from_keras,
    lstm_from_onnx,
    lstm_from_torch,
    lstm_grads_from_flax,
    lstm_grads_from_keras,
    lstm_grads_to_flax,
    lstm_grads_to_keras,
    lstm_to_flax,
    lstm_to_keras,
    lstm_to_onnx,
    lstm_to_torch,
)
from .normalization import (
    FLAX_NORM_PARAMS,
    FLAX_NORM_STATS,
    batch_norm_momentum_to_flax,
    norm_from_flax,
    norm_to_flax,
)

__all__ = [
    "mha_from_torch", "mha_to_torch",
    "FLAX_GATES", "FLAX_LSTM_HIDDEN", "FLAX_LSTM_INPUT", "FLAX_NORM_PARAMS", "FLAX_NORM_STATS", "FLAX_RECURRENT",
    "ONNX_LSTM_FROM_CANON", "batch_norm_momentum_to_flax", "dense_from_torch", "dense_to_torch", "depthwise_to_grouped",
    "features_nchw_to_nhwc", "features_nhwc_to_nchw", "flatten_rows_nchw_to_nhwc", "flatten_rows_nhwc_to_nchw",
    "flax_folded_bias", "flax_lstm_folded_bias", "grouped_to_depthwise", "gru_from_flax", "gru_from_keras",
    "gru_from_onnx", "gru_from_torch", "gru_grads_from_flax", "gru_grads_from_keras", "gru_grads_to_flax",
    "gru_grads_to_keras", "gru_to_flax", "gru_to_keras", "gru_to_onnx", "gru_to_torch", "hwio_to_oihw",
    "keras_single_bias", "lstm_from_flax", "lstm_from_keras", "lstm_from_onnx", "lstm_from_torch",
    "lstm_grads_from_flax", "lstm_grads_from_keras", "lstm_grads_to_flax", "lstm_grads_to_keras", "lstm_to_flax",
    "lstm_to_keras", "lstm_to_onnx", "lstm_to_torch", "nchw_to_nhwc", "nhwc_to_nchw", "norm_from_flax", "norm_to_flax",
    "oihw_to_hwio", "pads_from_onnx", "pads_to_onnx", "pads_to_torch",
]  # fmt: skip
