"""The seed audit's registry: every claim in the seed article that a computation can settle.

Each Claim holds the original sentence (Chinese), an English rendering, the verdict it must reach and a
check that computes the evidence from the project's own code: the NumPy reference (always), the
formulas of impls/contract/formulas.py, and the frameworks' built-in layers (torch.nn, Keras) where they load.
verify/test_claims.py runs every check and asserts its verdict and key numbers; reports/audit.py turns
the same evidence into reports/SEED-AUDIT.md. Claims no computation can settle are listed in
NOT_COMPUTABLE, with the reason.

Verdicts: "holds", "fails", or "holds only under a stated reading" (the reading is in the evidence).
"""

from __future__ import annotations

from functools import cache

from .claim_kit import FAILS, HOLDS, NOT_MEASURED, READING, VERDICTS, Claim, Evidence
from .claims_cnn import (
    check_cnn_conv_equation,
    check_cnn_pool_equation,
    check_pooling_reduces_params,
    check_seed_cnn_formula,
    check_seed_gru_formula,
)
from .claims_gru import (
    check_gru_candidate,
    check_gru_concatenated_gates,
    check_gru_fewer_than_lstm,
    check_gru_fewer_than_rnn,
    check_gru_gate_names,
    check_gru_update_oplus,
    check_tanh_is_sinh,
)

__all__ = ["BY_ID", "CLAIMS", "FAILS", "HOLDS", "NOT_COMPUTABLE", "NOT_MEASURED", "READING", "VERDICTS", "Claim",
           "Evidence", "evidence"]  # fmt: skip

# --------------------------------------------------------------------------- the registry

CLAIMS: tuple[Claim, ...] = (
    Claim("gru-gate-names", "2.1",
          "GRU的核心概念是门（Gate）机制，包括输入门（Input Gate）、遗忘门（Forget Gate）和更新门（Update Gate）。"
          "……其中，$z_t$、$r_t$和$\\tilde{h_t}$分别表示输入门、遗忘门和更新门的输出",
          "The GRU's gates are an input gate, a forget gate and an update gate; z_t, r_t and h~_t are their outputs.",
          FAILS, check_gru_gate_names),
    Claim("gru-gates-concatenated", "2.1",
          "$z_t = \\sigma(W_z \\cdot [h_{t-1}, x_t] + b_z)$，$r_t = \\sigma(W_r \\cdot [h_{t-1}, x_t] + b_r)$",
          "The gates are a sigmoid of one weight matrix applied to the concatenation [h_{t-1}, x_t], plus one bias.",
          HOLDS, check_gru_concatenated_gates),
    Claim("gru-candidate-reset", "2.1 vs 4.1",
          "$\\tilde{h_t} = \\tanh(W_h \\cdot [r_t \\cdot h_{t-1}, x_t] + b_h)$",
          "The candidate state is tanh of W_h applied to [r_t * h_{t-1}, x_t] (the reset gate acts before the "
          "recurrent product); section 4.1 then builds 'a GRU network' with keras.layers.GRU, implying this GRU.",
          READING, check_gru_candidate),
    Claim("gru-update-oplus", "2.1",
          "$h_t = (1 - z_t) \\cdot h_{t-1} \\oplus r_t \\cdot \\tilde{h_t}$ ……$\\oplus$表示元素相加后再除以2的操作。",
          "h_t = (1 - z_t) * h_{t-1} (+) r_t * h~_t, where (+) adds element-wise and then divides by 2.",
          FAILS, check_gru_update_oplus),
    Claim("tanh-hyperbolic-sine", "2.1", "$\\tanh$表示双曲正弦函数",
          "tanh denotes the hyperbolic sine function.", FAILS, check_tanh_is_sinh),
    Claim("gru-fewer-params-than-rnn", "1.1",
          "与传统的RNN相比，GRU可以有效地减少网络中的参数数量，从而减少计算量和过拟合的风险。",
          "Compared with a traditional RNN, a GRU effectively reduces the number of parameters in the network, "
          "and so the amount of computation and the risk of overfitting.",
          READING, check_gru_fewer_than_rnn),
    Claim("gru-fewer-params-than-lstm", "6.1",
          "GRU和LSTM都是循环神经网络的变种……GRU的结构更加简洁",
          "GRU and LSTM are both RNN variants ... the GRU's structure is more concise (fewer parameters than an "
          "LSTM of the same size).",
          HOLDS, check_gru_fewer_than_lstm),
    Claim("cnn-conv-equation", "2.2 vs 4.2",
          "CNN的结构如下：$y_{ij} = \\sum_{k=1}^K w_{ik} \\cdot x_{ij + k - 1} + b_i$ ……$y_{ij}$表示卷积操作的输出；"
          "$w_{ik}$表示卷积核中第$k$个元素的权重；$x_{ij + k - 1}$表示图像中第$i$个通道的第$j$个元素；$b_i$表示偏置向量",
          "The CNN's convolution is y_ij = sum_k w_ik x_i,j+k-1 + b_i (channel i, position j): the operation of "
          "the Conv2D layers in the article's Keras CNN.",
          FAILS, check_cnn_conv_equation),
    Claim("cnn-pool-equation", "2.2 vs 4.2",
          "$x_{ij} = \\max(y_{ij}, y_{i,j+1})$ ……$x_{ij}$表示池化操作的输出。",
          "The CNN's pooling is x_ij = max(y_ij, y_i,j+1): the operation of MaxPooling2D((2, 2)) in the "
          "article's Keras CNN.",
          FAILS, check_cnn_pool_equation),
    Claim("pooling-reduces-params", "2.2, 3.2",
          "池化操作是通过采样方法（如最大池化或平均池化）将图像中的特征映射到更小的空间，从而减少参数数量和计算量。"
          "（3.2：对卷积后的特征图进行池化操作，从而减少参数数量和计算量）",
          "Pooling maps the image features to a smaller space by sampling (max or average pooling), reducing the "
          "number of parameters and the amount of computation.",
          READING, check_pooling_reduces_params),
    Claim("seed-gru-param-formula", "6.1",
          "GRU的参数数量可以通过以下公式计算：参数数量 = (3 × 输入层神经元数 + 3 × 输出层神经元数) × 隐藏层神经元数",
          "A GRU's number of parameters is (3 x input-layer neurons + 3 x output-layer neurons) x hidden-layer neurons.",
          FAILS, check_seed_gru_formula),
    Claim("seed-cnn-param-formula", "6.2",
          "CNN的参数数量可以通过以下公式计算：参数数量 = 卷积核数量 × (输入通道数 × 卷积核大小² + 输出通道数) × 输入图像高度 × 输入图像宽度",
          "A CNN's number of parameters is kernels x (input channels x kernel size^2 + output channels) x input "
          "image height x input image width.",
          FAILS, check_seed_cnn_formula),
)  # fmt: skip

BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}


@cache
def evidence(claim_id: str) -> Evidence:
    """The evidence for one claim, computed once per process (the test and the report share it)."""
    if claim_id not in BY_ID:
        raise KeyError(f"unknown claim {claim_id!r}; known: {', '.join(BY_ID)}")
    return BY_ID[claim_id].check()


NOT_COMPUTABLE: tuple[tuple[str, str, str, str], ...] = (
    ("1.1", "GRU是2014年由Cho等人提出的", "GRU was proposed by Cho et al. in 2014.",
     "a historical fact (it matches Cho et al., EMNLP 2014), not settled by computation"),
    ("1.2", "CNN是2006年由LeCun等人提出的", "CNN was proposed by LeCun et al. in 2006.",
     "a historical claim (LeCun's convolutional networks date from 1989-1998); not settled by computation"),
    ("1.1", "GRU可以有效地减少……过拟合的风险", "A GRU reduces the risk of overfitting.",
     "depends on data and training; no computation on fixed sizes settles it"),
    ("2.2", "$x_{ij + k - 1}$表示图像中第$i$个通道的第$j$个元素", "x_{i,j+k-1} is the j-th element of channel i.",
     "notation: the subscript is j+k-1, and x also names the pooling output; a reading, not a computation"),
    ("5.1", "GRU在处理长序列数据方面有很大的优势", "GRU has a great advantage on long sequences.",
     "an empirical claim about training, not settled by these checks"),
    ("6.1", "LSTM则通过引入门、遗忘门和输出门来控制信息的流动", "LSTM controls information with a gate, a forget gate and an output gate.",
     "the list is garbled (input gate presumably); an LSTM's weights do hold 4 blocks (input, forget, cell, output)"),
    ("6.2", "CNN可以自动学习特征，而传统的图像处理技术需要人工设计特征", "CNNs learn features; traditional methods hand-design them.",
     "a qualitative statement"),
)  # fmt: skip
