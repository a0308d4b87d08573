"""Parameter counts as closed forms: one layer of each kind (GRU, LSTM, RNN, Conv2D, Dense, pooling) in each
framework's convention, and the seed's two models layer by layer (sections 4.1 and 4.2), as keras Model.summary()
prints them. Symbols and conventions: impls/contract/formulas.py."""

from __future__ import annotations

from dataclasses import dataclass

from .count_args import check_choice, check_flag, check_size, check_sizes
from .spec import VARIANTS, ShapeError, out_size

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
    check_choice("GRU convention", convention, GRU_CONVENTIONS)
    return 3 * (I * H + H * H) + GRU_BIAS_VECTORS[convention] * H


def gru_effective_param_count(I: int, H: int, variant: str) -> int:
    """Independent parameters of a GRU variant: biases that only ever appear as a sum count once.

    z and r see b_x + b_h only, in every variant (2H). The candidate sees b_xh + b_hh only in
    reset_before, chung and seed (H), but b_xh outside and b_hh inside r * (...) in reset_after (2H),
    which is why Keras can drop a bias vector only when reset_after=False."""
    I, H = check_sizes(I=I, H=H)
    check_choice("GRU variant", variant, VARIANTS)
    return 3 * (I * H + H * H) + (4 if variant == "reset_after" else 3) * H


LSTM_BIAS_VECTORS: dict[str, int] = {"torch": 8, "keras": 4}  # torch: b_ih + b_hh (4H each); Keras: one 4H
RNN_BIAS_VECTORS: dict[str, int] = {"torch": 2, "keras": 1}  # nn.RNN: b_ih, b_hh; keras SimpleRNN: one


def lstm_param_count(I: int, H: int, convention: str = "torch") -> int:
    """One LSTM layer, 4 blocks (i, f, g, o): 4(IH + H^2) + 8H (torch) or + 4H (Keras)."""
    I, H = check_sizes(I=I, H=H)
    check_choice("LSTM convention", convention, tuple(LSTM_BIAS_VECTORS))
    return 4 * (I * H + H * H) + LSTM_BIAS_VECTORS[convention] * H


def rnn_param_count(I: int, H: int, convention: str = "torch") -> int:
    """One vanilla (Elman) RNN layer, 1 block: IH + H^2 + 2H (torch nn.RNN) or + H (Keras SimpleRNN)."""
    I, H = check_sizes(I=I, H=H)
    check_choice("RNN convention", convention, tuple(RNN_BIAS_VECTORS))
    return I * H + H * H + RNN_BIAS_VECTORS[convention] * H


def conv2d_param_count(kh: int, kw: int, c_in: int, c_out: int, groups: int = 1, bias: bool = True) -> int:
    """KH * KW * (C_in / groups) * C_out + C_out (bias). groups must divide both channel counts."""
    kh, kw, c_in, c_out, groups = check_sizes(kh=kh, kw=kw, c_in=c_in, c_out=c_out, groups=groups)
    check_flag("bias", bias)
    if c_in % groups or c_out % groups:
        raise ShapeError(f"groups={groups} must divide c_in={c_in} and c_out={c_out}")
    return kh * kw * (c_in // groups) * c_out + (c_out if bias else 0)


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
    """n_in * n_out + n_out (bias)."""
    n_in, n_out = check_sizes(n_in=n_in, n_out=n_out)
    return n_in * n_out + (n_out if check_flag("bias", bias) else 0)


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
        if check_flag("pools", pools):
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
