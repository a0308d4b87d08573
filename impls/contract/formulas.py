"""Parameter and FLOP counts as closed forms, and the seed article's own formulas exactly as printed.

No framework here: these are the formulas that verify/test_formulas.py checks against layers the
frameworks build (impls/builtin/torch_builtin.py, impls/builtin/keras_builtin.py), against the sizes of the canonical
weights (impls/contract/spec.py) and against multiply-adds counted while the NumPy reference runs.

FLOP convention: one multiply-add is 2 FLOPs (as torch.utils.flop_counter, and DeepBench, count a
matrix product: 2*m*n*k). Matrix products are counted apart from elementwise work (bias adds, gates,
activations), which is reported separately and never folded into the "gemm" count. Backward passes use
the x3 convention (forward + two products of the same size for the input and weight gradients) unless
a function says it is exact.

Symbols: B batch, T time steps, I input features, H hidden units, KH x KW kernel, C_in / C_out
channels, OH x OW output map. Every size must be an int >= 1 (bool and float refused): bad input
raises spec.ShapeError (a ValueError) naming the argument and its value.

One module a subject, every name re-exported here (`from impls.contract import formulas; formulas.X`):
param_counts.py (parameters per layer and the seed models' tables), flop_counts.py (matrix products, elementwise
work, backward passes, DeepBench's convention), seed_formulas.py (the seed's section 6, exactly as printed, and
its readings), count_args.py (the size checks they share).
"""

from __future__ import annotations

from .count_args import check_choice, check_flag, check_size, check_sizes
from .flop_counts import (
    GRU_ELEMENTWISE,
    MULTIPLY_ADD_FLOPS,
    ElementwiseOps,
    conv2d_bias_flops,
    conv2d_flops,
    conv2d_output_hw,
    deepbench_gru_flops,
    dense_bias_flops,
    dense_flops,
    fwd_bwd_flops,
    gru_elementwise_ops,
    gru_fwd_bwd_flops,
    gru_fwd_bwd_matmul_flops,
    gru_matmul_flops,
    lstm_matmul_flops,
    max_pool2d_comparisons,
    seed_cnn_model_flops,
    seed_gru_model_flops,
)
from .param_counts import (
    GRU_BIAS_VECTORS,
    GRU_CONVENTIONS,
    LSTM_BIAS_VECTORS,
    RNN_BIAS_VECTORS,
    LayerCount,
    conv2d_param_count,
    dense_param_count,
    gru_effective_param_count,
    gru_param_count,
    lstm_param_count,
    max_pool2d_param_count,
    rnn_param_count,
    seed_cnn_model_param_count,
    seed_cnn_model_table,
    seed_gru_model_param_count,
    seed_gru_model_table,
)
from .seed_formulas import (
    seed_cnn_formula,
    seed_cnn_formula_layer,
    seed_cnn_model_readings,
    seed_cnn_reading_layer_input,
    seed_cnn_reading_layer_output,
    seed_cnn_reading_network_image,
    seed_gru_formula,
    seed_gru_formula_model_io,
    seed_gru_formula_next_layer,
    seed_gru_formula_own_units,
    seed_gru_model_readings,
)

__all__ = [
    "GRU_BIAS_VECTORS", "GRU_CONVENTIONS", "GRU_ELEMENTWISE", "LSTM_BIAS_VECTORS", "MULTIPLY_ADD_FLOPS",
    "RNN_BIAS_VECTORS", "ElementwiseOps", "LayerCount", "check_choice", "check_flag", "check_size", "check_sizes",
    "conv2d_bias_flops", "conv2d_flops", "conv2d_output_hw", "conv2d_param_count", "deepbench_gru_flops",
    "dense_bias_flops", "dense_flops", "dense_param_count", "fwd_bwd_flops", "gru_effective_param_count",
    "gru_elementwise_ops", "gru_fwd_bwd_flops", "gru_fwd_bwd_matmul_flops", "gru_matmul_flops", "gru_param_count",
    "lstm_matmul_flops", "lstm_param_count", "max_pool2d_comparisons", "max_pool2d_param_count", "rnn_param_count",
    "seed_cnn_formula", "seed_cnn_formula_layer", "seed_cnn_model_flops", "seed_cnn_model_param_count",
    "seed_cnn_model_readings", "seed_cnn_model_table", "seed_cnn_reading_layer_input", "seed_cnn_reading_layer_output",
    "seed_cnn_reading_network_image", "seed_gru_formula", "seed_gru_formula_model_io", "seed_gru_formula_next_layer",
    "seed_gru_formula_own_units", "seed_gru_model_flops", "seed_gru_model_param_count", "seed_gru_model_readings",
    "seed_gru_model_table",
]  # fmt: skip
