"""FLOP counts as closed forms: matrix products of the GRU, LSTM, Conv2D and Dense (one multiply-add = 2 FLOPs), the
GRU's elementwise work apart, the backward pass (the x3 convention and BPTT's exact count), DeepBench's convention,
and the seed models' forward products. Symbols and conventions: impls/contract/formulas.py."""

from __future__ import annotations

from dataclasses import dataclass

from .count_args import check_choice, check_flag, check_size, check_sizes
from .param_counts import seed_cnn_model_table
from .spec import VARIANTS, ShapeError, check_padding, out_size

MULTIPLY_ADD_FLOPS = 2
"""One multiply-add = 2 FLOPs (a multiply and an add)."""


def gru_matmul_flops(B: int, T: int, I: int, H: int) -> int:
    """Forward matrix products of one GRU layer: per step x_t (B, I) @ (I, 3H) and h (B, H) @ (H, 3H),
    2 * B * T * 3H * (I + H). The same for every variant (the reset gate moves, the shapes do not)."""
    B, T, I, H = check_sizes(B=B, T=T, I=I, H=H)
    return MULTIPLY_ADD_FLOPS * B * T * 3 * H * (I + H)


def lstm_matmul_flops(B: int, T: int, I: int, H: int) -> int:
    """Forward matrix products of one LSTM direction: per step x_t (B, I) @ (I, 4H) and h (B, H) @ (H, 4H),
    2 * B * T * 4H * (I + H): 4/3 of a GRU's at the same sizes."""
    B, T, I, H = check_sizes(B=B, T=T, I=I, H=H)
    return MULTIPLY_ADD_FLOPS * B * T * 4 * H * (I + H)


GRU_ELEMENTWISE: dict[str, tuple[int, int]] = {
    # variant: (arithmetic ops, transcendentals) per hidden unit per step, sigmoid and tanh counted as
    # one transcendental each. z and r: 3 adds (x part + b_x + h part + b_h) and a sigmoid each (6, 2).
    "reset_after": (6 + 4 + 4, 3),  # h~: 3 adds, r * (.) 1 mul, tanh; h = z*h + (1-z)*h~: 1 sub, 2 mul, 1 add
    "reset_before": (6 + 4 + 4, 3),  # h~: r * h 1 mul, 3 adds, tanh; same update
    "chung": (6 + 4 + 4, 3),  # as reset_before with (1-z)*h + z*h~
    "seed": (6 + 4 + 5, 3),  # update ((1-z)*h + r*h~) / 2: 1 sub, 2 mul, 1 add, 1 div
}


@dataclass(frozen=True)
class ElementwiseOps:
    arithmetic: int  # adds, subtracts, multiplies, divides
    transcendental: int  # sigmoid, tanh evaluations


def gru_elementwise_ops(B: int, T: int, H: int, variant: str) -> ElementwiseOps:
    """The elementwise work of one GRU layer's forward pass, kept apart from the matrix products."""
    B, T, H = check_sizes(B=B, T=T, H=H)
    arith, trans = GRU_ELEMENTWISE[check_choice("GRU variant", variant, VARIANTS)]
    return ElementwiseOps(arith * B * T * H, trans * B * T * H)


def fwd_bwd_flops(forward_flops: int) -> int:
    """The x3 convention: backward = 2 x forward (one product for the input gradient, one for the weights)."""
    return 3 * check_size("forward_flops", forward_flops)


def gru_fwd_bwd_flops(B: int, T: int, I: int, H: int) -> int:
    """x3 convention on gru_matmul_flops: 6 * B * T * 3H * (I + H)."""
    return fwd_bwd_flops(gru_matmul_flops(B, T, I, H))


def gru_fwd_bwd_matmul_flops(B: int, T: int, I: int, H: int, grad_x: bool = True, grad_h0: bool = True) -> int:
    """Exact matrix-product FLOPs of forward + backward (backprop through time) of one GRU layer.

    Backward per step: weight gradients x_t^T dG and h^T dG (always), the input gradient dG W^T only
    when x needs a gradient, and dG U^T into h_{t-1} at every step but the first unless h0 needs one.
    With both gradients this equals the x3 convention; autograd with h0 not requiring a gradient does
    2 * B * 3H * H fewer."""
    B, T, I, H = check_sizes(B=B, T=T, I=I, H=H)
    check_flag("grad_x", grad_x), check_flag("grad_h0", grad_h0)
    two = MULTIPLY_ADD_FLOPS
    weights = two * B * T * 3 * H * (I + H)
    dx = two * B * T * 3 * H * I if grad_x else 0
    dh = two * B * (T - 1 + int(grad_h0)) * 3 * H * H
    return gru_matmul_flops(B, T, I, H) + weights + dx + dh


def deepbench_gru_flops(T: int, N: int, H: int) -> int:
    """DeepBench's convention for a recurrent layer's forward pass: 6 * T * N * H^2.

    DeepBench (baidu-research/DeepBench, README, "Recurrent Layers") states that "the calculation of the
    inputs should not be included in the time for the recurrent layer calculation", "so in
    h_t = g(Wx_t + Uh_t-1) the time for the calculation of Wx_t for all t should not be included"; its
    cuDNN benchmark (code/nvidia/rnn_bench.cu) builds the layer with CUDNN_SKIP_INPUT and input size =
    hidden size. What is left for a GRU is 3 recurrent (H, H) products per step on N columns:
    3 * 2 * N * H^2 per step. The closed form is derived from that statement, not quoted from DeepBench."""
    T, N, H = check_sizes(T=T, N=N, H=H)
    return 3 * MULTIPLY_ADD_FLOPS * T * N * H * H


def conv2d_output_hw(
    height: int, width: int, kh: int, kw: int, stride: int = 1, padding: str = "valid", dilation: int = 1
) -> tuple[int, int]:
    """(OH, OW) of a 2-D convolution or pooling, TensorFlow's 'valid' / 'same' rules; a dilated kernel
    spans (k - 1) * dilation + 1 pixels."""
    height, width, kh, kw, stride, dilation = check_sizes(height=height, width=width, kh=kh, kw=kw, stride=stride,
                                                          dilation=dilation)  # fmt: skip
    if padding not in ("valid", "same"):
        check_padding(padding)
        raise ShapeError(f"conv2d_output_hw takes 'valid' or 'same', got padding={padding!r}")
    ekh, ekw = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if padding == "valid" and (ekh > height or ekw > width):
        raise ShapeError(f"kernel {kh}x{kw} (dilation {dilation}) larger than the input {height}x{width} with 'valid' padding")
    return out_size(height, ekh, stride, padding), out_size(width, ekw, stride, padding)


def conv2d_flops(B: int, OH: int, OW: int, kh: int, kw: int, c_in: int, c_out: int, groups: int = 1) -> int:
    """2 * B * OH * OW * KH * KW * C_in * C_out / groups (products only; the bias add is conv2d_bias_flops):
    each output reads C_in / groups channels. Dilation changes OH x OW, not the products per output."""
    B, OH, OW, kh, kw, c_in, c_out, groups = check_sizes(
        B=B, OH=OH, OW=OW, kh=kh, kw=kw, c_in=c_in, c_out=c_out, groups=groups
    )
    if c_in % groups or c_out % groups:
        raise ShapeError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    return MULTIPLY_ADD_FLOPS * B * OH * OW * kh * kw * (c_in // groups) * c_out


def conv2d_bias_flops(B: int, OH: int, OW: int, c_out: int) -> int:
    """One add per output element."""
    B, OH, OW, c_out = check_sizes(B=B, OH=OH, OW=OW, c_out=c_out)
    return B * OH * OW * c_out


def dense_flops(N: int, n_in: int, n_out: int) -> int:
    """2 * N * n_in * n_out for N rows (products only; the bias add is dense_bias_flops)."""
    N, n_in, n_out = check_sizes(N=N, n_in=n_in, n_out=n_out)
    return MULTIPLY_ADD_FLOPS * N * n_in * n_out


def dense_bias_flops(N: int, n_out: int) -> int:
    N, n_out = check_sizes(N=N, n_out=n_out)
    return N * n_out


def max_pool2d_comparisons(B: int, OH: int, OW: int, C: int, ph: int, pw: int) -> int:
    """A max over ph * pw values takes ph * pw - 1 comparisons per output element."""
    B, OH, OW, C, ph, pw = check_sizes(B=B, OH=OH, OW=OW, C=C, ph=ph, pw=pw)
    return B * OH * OW * C * (ph * pw - 1)


def seed_gru_model_flops(
    B: int, input_shape: tuple[int, int] = (100, 64), units: tuple[int, int] = (128, 64), classes: int = 10
) -> int:
    """Forward matrix products of the seed GRU model ("model" convention: the two GRUs and the Dense)."""
    T, I = input_shape
    h1, h2 = units
    return gru_matmul_flops(B, T, I, h1) + gru_matmul_flops(B, T, h1, h2) + dense_flops(B, h2, classes)


def seed_cnn_model_flops(B: int, pools: bool = True, **sizes) -> int:
    """Forward products of the seed CNN (convolutions and Dense layers; pools and ReLU are not products)."""
    check_size("B", B)
    table = seed_cnn_model_table(pools, **sizes)
    image = sizes.get("image", (28, 28, 1))
    kernel = sizes.get("kernel", 3)
    total, c, n_in = 0, image[2], None
    for row in table:
        if row.name.startswith("conv"):
            oh, ow, f = row.output_shape
            total += conv2d_flops(B, oh, ow, kernel, kernel, c, f)
            c = f
        elif row.name == "flatten":
            n_in = row.output_shape[0]
        elif row.name.startswith("dense"):
            total += dense_flops(B, n_in, row.output_shape[0])
            n_in = row.output_shape[0]
    return total
