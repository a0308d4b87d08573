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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import VARIANTS, ShapeError, check_padding, out_size

MULTIPLY_ADD_FLOPS = 2
"""One multiply-add = 2 FLOPs (a multiply and an add)."""


def check_size(name: str, value: object, minimum: int = 1) -> int:
    """`value` as an int >= minimum. bool, float (even 3.0), str and None are refused, naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ShapeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ShapeError(f"{name} must be an int >= {minimum}, got {name}={value!r}")
    return int(value)


def check_sizes(**named: object) -> list[int]:
    """Each named size as an int >= 1 (check_size), in order: the counts of every voice validate alike."""
    return [check_size(k, v) for k, v in named.items()]


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ShapeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


def _choice(name: str, value: object, valid) -> str:
    if value not in valid:
        raise ShapeError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    return value  # type: ignore[return-value]


# =========================================================================== parameter counts

GRU_BIAS_VECTORS: dict[str, int] = {
    "canonical": 6,  # impls/spec.GRUWeights: b_x and b_h, 3H each
    "torch": 6,  # nn.GRU: bias_ih_l0, bias_hh_l0 (3H,) each
    "keras_reset_after": 6,  # keras.layers.GRU(reset_after=True): bias (2, 3H)
    "keras_reset_before": 3,  # keras.layers.GRU(reset_after=False): bias (3H,)
    "onnx": 6,  # ONNX GRU B (1, 6H) = [Wb, Rb], for linear_before_reset 0 and 1 alike
    "seed_equations": 3,  # seed section 2.1: b_z, b_r, b_h, one H-vector per gate
}
"""Bias vectors of length H that each GRU convention stores (weights are 3(IH + H^2) in all)."""
GRU_CONVENTIONS = tuple(GRU_BIAS_VECTORS)


def gru_param_count(I: int, H: int, convention: str = "canonical") -> int:
    """Stored parameters of one GRU layer: 3(IH + H^2) + (bias vectors) * H.

    torch nn.GRU, Keras reset_after=True, ONNX (either linear_before_reset), canonical: 3(IH + H^2 + 2H);
    Keras reset_after=False: 3(IH + H^2 + H); the seed's own section 2.1 equations: 3(IH + H^2 + H)."""
    I, H = check_sizes(I=I, H=H)
    _choice("GRU convention", convention, GRU_CONVENTIONS)
    return 3 * (I * H + H * H) + GRU_BIAS_VECTORS[convention] * H


def gru_effective_param_count(I: int, H: int, variant: str) -> int:
    """Independent parameters of a GRU variant: biases that only ever appear as a sum count once.

    z and r see b_x + b_h only, in every variant (2H). The candidate sees b_xh + b_hh only in
    reset_before, chung and seed (H), but b_xh outside and b_hh inside r * (...) in reset_after (2H),
    which is why Keras can drop a bias vector only when reset_after=False."""
    I, H = check_sizes(I=I, H=H)
    _choice("GRU variant", variant, VARIANTS)
    return 3 * (I * H + H * H) + (4 if variant == "reset_after" else 3) * H


LSTM_BIAS_VECTORS: dict[str, int] = {"torch": 8, "keras": 4}  # torch: b_ih + b_hh (4H each); Keras: one 4H
RNN_BIAS_VECTORS: dict[str, int] = {"torch": 2, "keras": 1}  # nn.RNN: b_ih, b_hh; keras SimpleRNN: one


def lstm_param_count(I: int, H: int, convention: str = "torch") -> int:
    """One LSTM layer, 4 blocks (i, f, g, o): 4(IH + H^2) + 8H (torch) or + 4H (Keras)."""
    I, H = check_sizes(I=I, H=H)
    _choice("LSTM convention", convention, tuple(LSTM_BIAS_VECTORS))
    return 4 * (I * H + H * H) + LSTM_BIAS_VECTORS[convention] * H


def rnn_param_count(I: int, H: int, convention: str = "torch") -> int:
    """One vanilla (Elman) RNN layer, 1 block: IH + H^2 + 2H (torch nn.RNN) or + H (Keras SimpleRNN)."""
    I, H = check_sizes(I=I, H=H)
    _choice("RNN convention", convention, tuple(RNN_BIAS_VECTORS))
    return I * H + H * H + RNN_BIAS_VECTORS[convention] * H


def conv2d_param_count(kh: int, kw: int, c_in: int, c_out: int, groups: int = 1, bias: bool = True) -> int:
    """KH * KW * (C_in / groups) * C_out + C_out (bias). groups must divide both channel counts."""
    kh, kw, c_in, c_out, groups = check_sizes(kh=kh, kw=kw, c_in=c_in, c_out=c_out, groups=groups)
    _flag("bias", bias)
    if c_in % groups or c_out % groups:
        raise ShapeError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    return kh * kw * (c_in // groups) * c_out + (c_out if bias else 0)


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
    """n_in * n_out + n_out (bias)."""
    n_in, n_out = check_sizes(n_in=n_in, n_out=n_out)
    return n_in * n_out + (n_out if _flag("bias", bias) else 0)


def max_pool2d_param_count(pool: int = 2) -> int:
    """A pooling layer holds no parameters, whatever its window."""
    check_size("pool", pool)
    return 0


@dataclass(frozen=True)
class LayerCount:
    """One row of a model's layer-by-layer table, as keras Model.summary() prints it."""

    name: str
    output_shape: tuple[int, ...]  # without the batch axis
    params: int


def seed_gru_model_table(
    convention: str = "keras_reset_after",
    input_shape: tuple[int, int] = (100, 64),
    units: tuple[int, int] = (128, 64),
    classes: int = 10,
) -> list[LayerCount]:
    """Seed section 4.1: GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax) on (T, I) = (100, 64)."""
    T, I = check_sizes(T=input_shape[0], I=input_shape[1])
    h1, h2 = check_sizes(units_0=units[0], units_1=units[1])
    return [
        LayerCount("gru1", (T, h1), gru_param_count(I, h1, convention)),
        LayerCount("gru2", (h2,), gru_param_count(h1, h2, convention)),
        LayerCount("dense", (check_size("classes", classes),), dense_param_count(h2, classes)),
    ]


def seed_gru_model_param_count(convention: str = "keras_reset_after", **sizes) -> int:
    """112,394 for the seed's sizes with Keras' default GRU (reset_after=True)."""
    return sum(row.params for row in seed_gru_model_table(convention, **sizes))


def seed_cnn_model_table(
    pools: bool = True,
    image: tuple[int, int, int] = (28, 28, 1),
    filters: tuple[int, int] = (32, 64),
    kernel: int = 3,
    pool: int = 2,
    dense_units: int = 128,
    classes: int = 10,
) -> list[LayerCount]:
    """Seed section 4.2: Conv2D(32, 3x3) -> MaxPool 2x2 -> Conv2D(64, 3x3) -> MaxPool 2x2 -> Flatten ->
    Dense(128) -> Dense(10). pools=False: the same model without its two MaxPooling2D layers."""
    h, w, c = check_sizes(height=image[0], width=image[1], channels=image[2])
    k, p = check_size("kernel", kernel), check_size("pool", pool)
    rows: list[LayerCount] = []
    for n, f in enumerate(filters, start=1):
        f = check_size(f"filters_{n - 1}", f)
        h, w = out_size(h, k, 1, "valid"), out_size(w, k, 1, "valid")
        if min(h, w) < 1:
            raise ShapeError(f"image={image} is too small for {len(filters)} valid {k}x{k} convolutions")
        rows.append(LayerCount(f"conv{n}", (h, w, f), conv2d_param_count(k, k, c, f)))
        c = f
        if _flag("pools", pools):
            h, w = out_size(h, p, p, "valid"), out_size(w, p, p, "valid")
            if min(h, w) < 1:
                raise ShapeError(f"image={image} is too small for {len(filters)} {p}x{p} poolings")
            rows.append(LayerCount(f"pool{n}", (h, w, c), max_pool2d_param_count(p)))
    rows.append(LayerCount("flatten", (h * w * c,), 0))
    rows.append(LayerCount("dense1", (dense_units,), dense_param_count(h * w * c, dense_units)))
    rows.append(LayerCount("dense2", (classes,), dense_param_count(dense_units, classes)))
    return rows


def seed_cnn_model_param_count(pools: bool = True, **sizes) -> int:
    """225,034 for the seed's sizes; 4,738,826 without the pools (Flatten grows from 1,600 to 36,864)."""
    return sum(row.params for row in seed_cnn_model_table(pools, **sizes))


# =========================================================================== FLOP counts


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
    arith, trans = GRU_ELEMENTWISE[_choice("GRU variant", variant, VARIANTS)]
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
    _flag("grad_x", grad_x), _flag("grad_h0", grad_h0)
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


# =========================================================================== the seed's own formulas


def seed_gru_formula(inputs: int, outputs: int, hidden: int) -> int:
    """Seed section 6.1, exactly as printed:

        参数数量 = (3 × 输入层神经元数 + 3 × 输出层神经元数) × 隐藏层神经元数
        parameters = (3 x input-layer neurons + 3 x output-layer neurons) x hidden-layer neurons

    参数数量 "number of parameters"; 输入层神经元数 "neurons of the input layer" (inputs);
    输出层神经元数 "neurons of the output layer" (outputs); 隐藏层神经元数 "neurons of the hidden layer"
    (hidden). The article does not say which layer is the "output layer" of a GRU: the readings below
    try each one."""
    inputs, outputs, hidden = check_sizes(inputs=inputs, outputs=outputs, hidden=hidden)
    return (3 * inputs + 3 * outputs) * hidden


def seed_gru_formula_own_units(I: int, H: int) -> int:
    """Reading A, one GRU layer I -> H: 输出层神经元数 = the layer's own output units = H, so
    (3I + 3H) * H = 3(IH + H^2): the weight matrices, no bias."""
    return seed_gru_formula(I, H, H)


def seed_gru_formula_next_layer(I: int, H: int, n_next: int) -> int:
    """Reading B, one GRU layer I -> H: 输出层神经元数 = the size of the layer after it (n_next),
    so (3I + 3 n_next) * H."""
    return seed_gru_formula(I, n_next, H)


def seed_gru_formula_model_io(n_in: int, n_out: int, hidden: int) -> int:
    """Reading C, a whole network: 输入层 = the network's input features, 输出层 = its output layer
    (the classes), 隐藏层 = the hidden units (one hidden layer's, or all of them summed)."""
    return seed_gru_formula(n_in, n_out, hidden)


def seed_gru_model_readings(
    input_shape: tuple[int, int] = (100, 64), units: tuple[int, int] = (128, 64), classes: int = 10
) -> dict[str, int]:
    """Every reading of section 6.1 evaluated on the seed's GRU model (section 4.1)."""
    I = input_shape[1]
    h1, h2 = units
    return {
        "A: per layer, output layer = own units": seed_gru_formula_own_units(I, h1) + seed_gru_formula_own_units(h1, h2),
        "B: per layer, output layer = next layer": seed_gru_formula_next_layer(I, h1, h2)
        + seed_gru_formula_next_layer(h1, h2, classes),
        "C1: network in/out, hidden = first GRU": seed_gru_formula_model_io(I, classes, h1),
        "C2: network in/out, hidden = second GRU": seed_gru_formula_model_io(I, classes, h2),
        "C3: network in/out, hidden = both GRUs": seed_gru_formula_model_io(I, classes, h1 + h2),
    }


def seed_cnn_formula(kernels: int, in_channels: int, kernel_size: int, out_channels: int, height: int, width: int) -> int:
    """Seed section 6.2, exactly as printed:

        参数数量 = 卷积核数量 × (输入通道数 × 卷积核大小² + 输出通道数) × 输入图像高度 × 输入图像宽度
        parameters = kernels x (in_channels x kernel_size^2 + out_channels) x image height x image width

    卷积核数量 "number of convolution kernels" (kernels; in Conv2D one kernel per output channel, so
    kernels = out_channels); 输入通道数 "input channels"; 卷积核大小 "kernel size" (k of a k x k kernel);
    输出通道数 "output channels"; 输入图像高度 / 宽度 "input image height / width". The article does not say
    whether the image is the network's input or each layer's own input map: the readings try both, and
    the layer's output map (what a compute count would use)."""
    kernels, in_channels, kernel_size, out_channels, height, width = check_sizes(
        kernels=kernels, in_channels=in_channels, kernel_size=kernel_size, out_channels=out_channels,
        height=height, width=width,
    )  # fmt: skip
    return kernels * (in_channels * kernel_size**2 + out_channels) * height * width


def seed_cnn_formula_layer(c_in: int, c_out: int, k: int, height: int, width: int) -> int:
    """One Conv2D layer (kernels = out_channels = c_out) on a height x width map."""
    return seed_cnn_formula(c_out, c_in, k, c_out, height, width)


def _conv_layers(image, filters, kernel, pool) -> list[tuple[int, int, int, int, int, int, int]]:
    """(c_in, c_out, k, in_h, in_w, out_h, out_w) of each Conv2D layer of the seed CNN."""
    table = seed_cnn_model_table(True, image=image, filters=filters, kernel=kernel, pool=pool)
    h, w, c = image
    layers = []
    for row in table:
        if row.name.startswith("conv"):
            oh, ow, f = row.output_shape
            layers.append((c, f, kernel, h, w, oh, ow))
            c = f
        if len(row.output_shape) == 3:  # conv or pool: the next layer's input map
            h, w = row.output_shape[0], row.output_shape[1]
    return layers


def seed_cnn_reading_network_image(image=(28, 28, 1), filters=(32, 64), kernel=3, pool=2) -> int:
    """Reading A, summed over the seed CNN's Conv2D layers: 输入图像 = the network's input image (28 x 28)
    for every layer, as the words "input image height / width" say literally."""
    return sum(seed_cnn_formula_layer(ci, co, k, image[0], image[1]) for ci, co, k, *_ in _conv_layers(image, filters, kernel, pool))


def seed_cnn_reading_layer_input(image=(28, 28, 1), filters=(32, 64), kernel=3, pool=2) -> int:
    """Reading B: 输入图像 = each layer's own input map (28 x 28, then 13 x 13)."""
    return sum(seed_cnn_formula_layer(ci, co, k, h, w) for ci, co, k, h, w, _, _ in _conv_layers(image, filters, kernel, pool))


def seed_cnn_reading_layer_output(image=(28, 28, 1), filters=(32, 64), kernel=3, pool=2) -> int:
    """Reading C: height x width = each layer's output map (26 x 26, then 11 x 11), the map a compute count
    would use; then the formula is the multiply-adds plus c_out^2 * OH * OW."""
    return sum(seed_cnn_formula_layer(ci, co, k, oh, ow) for ci, co, k, _, _, oh, ow in _conv_layers(image, filters, kernel, pool))


def seed_cnn_model_readings(
    image: tuple[int, int, int] = (28, 28, 1), filters: tuple[int, int] = (32, 64), kernel: int = 3, pool: int = 2
) -> dict[str, int]:
    """Every reading of section 6.2 on the seed CNN's convolution layers (section 4.2), summed over them."""
    sizes = {"image": image, "filters": filters, "kernel": kernel, "pool": pool}
    return {
        "A: network input image": seed_cnn_reading_network_image(**sizes),
        "B: layer input map": seed_cnn_reading_layer_input(**sizes),
        "C: layer output map": seed_cnn_reading_layer_output(**sizes),
    }
