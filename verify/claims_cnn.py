"""The seed audit's CNN and formula claims (sections 2.2 vs 4.2, 3.2, 6): the 1-D convolution and pooling
equations against Conv2D / MaxPooling2D, what pooling does to the parameter count, and the article's
two parameter formulas. Each check returns Evidence; verify/claims.py registers them."""

from __future__ import annotations

import numpy as np

from impls.contract import formulas as F
from impls.contract.models import SEED_CNN_INPUT, SEED_GRU_UNITS, init_seed_cnn
from impls.contract.spec import init_conv, random_array
from impls.primitives import numpy_impl

# --------------------------------------------------------------------------- section 2.2 vs 4.2: the CNN
from .claim_kit import (
    FAILS,
    HOLDS,
    NOT_MEASURED,
    READING,
    Evidence,
    Number,
    impl_or_none,
    maxabs,
    seed_layer_sizes,
    shape_str,
)


def check_cnn_conv_equation() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    # The seed's own first layer on its own input: Conv2D(32, (3, 3)) on (1, 28, 28, 1)
    img = random_array((1, *SEED_CNN_INPUT), 911, low=0.0, high=1.0)
    conv1 = init_seed_cnn(912).conv1
    y2d = numpy_impl.conv2d(img, conv1.kernel, conv1.bias)
    # The 2.2 equation is 1-D and per channel: the best it can do on the image is row by row, channel by channel
    w_mid, b0 = conv1.kernel[1, :, :, 0], conv1.bias[:1]  # (3, 1): the middle row of the first kernel
    y1d = numpy_impl.seed_conv1d(img[0], w_mid, b0)  # rows as the batch: (28, 26, 1)
    nums += [
        ("conv2d_shape", "Conv2D(32, (3, 3)) on the seed's (1, 28, 28, 1) input: output", shape_str(y2d)),
        ("seed_shape", "section 2.2 equation, K = 3, along each row of the same image: output", shape_str(y1d)),
        ("conv2d_params", "parameters: Conv2D(32, (3, 3)) on 1 channel", F.conv2d_param_count(3, 3, 1, 32)),
        ("seed_params", "parameters: the equation, K taps + 1 bias per channel (K = 3, 1 channel)", 3 * 1 + 1),
    ]
    # Same input, same taps: as a depthwise 1 x K Conv2D the equation is exact; a real Conv2D also sums over channels.
    B, L, C, K = 2, 12, 3, 3
    x = random_array((B, L, C), 913)
    w, b = random_array((K, C), 914), random_array((C,), 915)
    full = init_conv(1, K, C, C, seed=916).kernel
    depthwise = np.zeros((1, K, C, C))
    for c in range(C):
        depthwise[0, :, c, c] = w[:, c]
        full[0, :, c, c] = w[:, c]
    seed = numpy_impl.seed_conv1d(x, w, b)
    nums += [
        ("depthwise", f"max |equation - Conv2D with a diagonal (depthwise) 1x{K} kernel| on (B={B}, L={L}, C={C}), NumPy",
         maxabs(numpy_impl.conv2d(x[:, None], depthwise, b)[:, 0], seed)),
        ("full", "max |equation - Conv2D with the same diagonal plus cross-channel taps|, NumPy",
         maxabs(numpy_impl.conv2d(x[:, None], full, b)[:, 0], seed)),
    ]  # fmt: skip
    keras = impl_or_none("keras")
    nums.append(("keras_full", "max |equation - Keras Conv2D, cross-channel kernel|",
                 maxabs(keras.to_numpy(keras.conv2d(keras.asarray(x[:, None], "float64"), keras.asarray(full, "float64"),
                                                     keras.asarray(b, "float64")))[:, 0], seed) if keras else NOT_MEASURED))  # fmt: skip
    fails = nums[-2][2] > 1e-2 and nums[-3][2] < 1e-12 and y2d.shape[-1] != y1d.shape[-1]
    return Evidence(
        FAILS if fails else HOLDS,
        "The equation is a 1-D, per-channel filter: one spatial axis, no sum over input channels, as many "
        "outputs as inputs. The seed's Conv2D slides a 3x3 window over 2 axes and sums over all input channels "
        "into 32 outputs. The equation is exactly the depthwise 1xK special case; with cross-channel taps they differ.",
        tuple(nums),
    )


def check_cnn_pool_equation() -> Evidence:
    y = random_array((1, 26, 26, 32), 921)  # conv1's output shape in the seed CNN
    row = y[:, 0]  # (1, 26, 32): one row, as the 1-D equation sees it
    seed = numpy_impl.seed_pool1d(row)
    pool2d = numpy_impl.max_pool2d(y, 2)  # MaxPooling2D((2, 2)): strides default to the pool size
    special = numpy_impl.max_pool2d(row[:, None], (1, 2), 1)[:, 0]
    nums: list[tuple[str, str, Number]] = [
        ("seed_shape", "x_ij = max(y_ij, y_i,j+1) on a 26-long row of 32 channels: output", shape_str(seed)),
        ("pool2d_shape", "MaxPooling2D((2, 2)) on conv1's (1, 26, 26, 32): output", shape_str(pool2d)),
        ("seed_kept", "values kept: equation (window 2, stride 1, overlapping)", f"{seed.size / row.size:.4f}"),
        ("pool2d_kept", "values kept: MaxPooling2D (2x2 window, stride 2)", f"{pool2d.size / y.size:.4f}"),
        ("special", "max |equation - max_pool2d(pool (1, 2), stride 1)|, NumPy", maxabs(seed, special)),
        ("first_row", "max |equation's first 13 outputs, every other one - MaxPooling2D's first row|",
         maxabs(seed[:, ::2], pool2d[:, 0])),
    ]  # fmt: skip
    keras = impl_or_none("keras")
    nums.append(("keras_shape", "Keras MaxPooling2D((2, 2)) output",
                 shape_str(keras.to_numpy(keras.max_pool2d(keras.asarray(y, "float64"), 2))) if keras else NOT_MEASURED))  # fmt: skip
    fails = seed.shape != pool2d.shape[:1] + pool2d.shape[2:] and nums[4][2] == 0.0 and nums[5][2] > 1e-2
    return Evidence(
        FAILS if fails else HOLDS,
        "The equation is a 1-D max over 2 neighbours with stride 1 (overlapping: 25 of 26 values survive); "
        "MaxPooling2D((2, 2)) takes 2x2 windows with stride 2 (a quarter survive) and also maxes across rows, "
        "so even its sub-sampled outputs differ. The equation equals max_pool2d with a (1, 2) window and stride 1.",
        tuple(nums),
    )


def check_pooling_reduces_params() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    with_pools, without = F.seed_cnn_model_table(True), F.seed_cnn_model_table(False)
    for impl, label in (("keras", "Keras"), ("torch_nn", "torch")):
        mod = impl_or_none(impl)
        nums.append((f"{impl}_with", f"seed CNN parameters, with its pools ({label} model)",
                     mod.seed_cnn_model_param_count(pools=True) if mod else NOT_MEASURED))  # fmt: skip
        nums.append((f"{impl}_without", f"... without its two MaxPooling2D ({label} model)",
                     mod.seed_cnn_model_param_count(pools=False) if mod else NOT_MEASURED))  # fmt: skip
    rows = {r.name: r for r in with_pools}
    rows_np = {r.name: r for r in without}
    nums += [
        ("pool_params", "parameters in each MaxPooling2D", rows["pool1"].params + rows["pool2"].params),
        ("conv_params", "conv1 + conv2 parameters, with / without pools",
         f"{rows['conv1'].params + rows['conv2'].params:,} / {rows_np['conv1'].params + rows_np['conv2'].params:,}"),
        ("flatten", "Flatten size, with / without pools", f"{rows['flatten'].output_shape[0]:,} / {rows_np['flatten'].output_shape[0]:,}"),
        ("dense1", "Dense(128) parameters, with / without pools", f"{rows['dense1'].params:,} / {rows_np['dense1'].params:,}"),
        ("total_with", "total with pools (closed form)", F.seed_cnn_model_param_count(True)),
        ("total_without", "total without pools (closed form)", F.seed_cnn_model_param_count(False)),
        ("flops_with", "forward FLOPs per image, with pools", F.seed_cnn_model_flops(1, True)),
        ("flops_without", "forward FLOPs per image, without pools", F.seed_cnn_model_flops(1, False)),
    ]  # fmt: skip
    ok = (rows["pool1"].params == 0 and rows["conv2"].params == rows_np["conv2"].params
          and F.seed_cnn_model_param_count(True) < F.seed_cnn_model_param_count(False))  # fmt: skip
    flat = rows_np["flatten"].output_shape[0] / rows["flatten"].output_shape[0]
    total = F.seed_cnn_model_param_count(False) / F.seed_cnn_model_param_count(True)
    return Evidence(
        READING if ok else FAILS,
        "A pooling layer holds no parameters and leaves the convolutions' counts as they are; what it shrinks is "
        f"the feature map, so the Dense layer after Flatten gets {flat:.0f}x fewer inputs and the model {total:.0f}x "
        "fewer parameters. It also cuts the later layers' products.",
        tuple(nums),
        reading="pooling reduces the parameters of the fully connected layer that follows it (through a smaller "
        "Flatten), not its own (it has none) nor the convolutions'",
    )


# --------------------------------------------------------------------------- section 6: the parameter formulas


def check_seed_gru_formula() -> Evidence:
    keras = impl_or_none("keras")
    truth = keras.seed_gru_model_param_count() if keras else F.seed_gru_model_param_count("keras_reset_after")
    layers = F.seed_gru_model_param_count("keras_reset_after") - F.dense_param_count(SEED_GRU_UNITS[1], 10)
    readings = F.seed_gru_model_readings()
    own_eq = sum(F.gru_param_count(i, h, "seed_equations") for i, h in seed_layer_sizes())
    nums: list[tuple[str, str, Number]] = [
        ("truth", "true count, seed GRU model (Keras default GRU, reset_after=True)" + ("" if keras else ", closed form"), truth),
        ("truth_gru_layers", "of which the two GRU layers", layers),
        ("own_equations", "the two GRU layers counted from the seed's own section 2.1 equations (3 biases each)", own_eq),
    ]
    nums += [(f"reading_{k[0]}{k[1] if k[1].isdigit() else ''}", f"reading {k}", v) for k, v in readings.items()]
    best = readings["A: per layer, output layer = own units"]
    nums += [
        ("best_short", "reading A short of the GRU layers by (6H per layer: the biases)", layers - best),
        ("per_layer", "per layer, reading A minus Keras / torch: closed form", "-6H (Keras reset_after=False: -3H)"),
    ]
    fails = truth not in readings.values() and layers not in readings.values()
    return Evidence(
        FAILS if fails else HOLDS,
        "No reading of '(3 x inputs + 3 x outputs) x hidden' gives the model's 112,394 or its GRU layers' 111,744. "
        "The closest (output layer = the layer's own units) is 3H(I + H): the weight matrices without any bias, "
        "short by 6H per layer (3H against the seed's own equations).",
        tuple(nums),
    )


def check_seed_cnn_formula() -> Evidence:
    keras = impl_or_none("keras")
    truth = keras.seed_cnn_model_param_count() if keras else F.seed_cnn_model_param_count()
    table = {r.name: r for r in F.seed_cnn_model_table()}
    convs = table["conv1"].params + table["conv2"].params
    readings = F.seed_cnn_model_readings()
    nums: list[tuple[str, str, Number]] = [
        ("truth", "true count, seed CNN" + ("" if keras else " (closed form)"), truth),
        ("truth_convs", "of which the two Conv2D layers", convs),
    ]
    nums += [(f"reading_{k[0]}", f"reading {k} (both Conv2D layers)", v) for k, v in readings.items()]
    nums += [
        ("ratio_best", "smallest reading / true Conv2D count", f"{min(readings.values()) / convs:.1f}"),
        ("closed_form", "per layer, formula - true: closed form (h x w the map the reading uses)",
         "c_out (c_in k^2 (hw - 1) + c_out hw - 1): zero only for a 1x1 map with c_out = 1"),
        ("conv1_macs", "reading C minus multiply-adds, conv1 (= c_out^2 OH OW = 32^2 x 26^2)",
         F.seed_cnn_formula_layer(1, 32, 3, 26, 26) - F.conv2d_flops(1, 26, 26, 3, 3, 1, 32) // 2),
    ]  # fmt: skip
    fails = truth not in readings.values() and convs not in readings.values()
    return Evidence(
        FAILS if fails else HOLDS,
        "Every reading is off by orders of magnitude: the height x width factor makes it grow with the image, "
        "which a convolution's parameters never do, and '+ out_channels' stands where one bias per kernel "
        "belongs. Read on the output map it is the multiply-adds plus c_out^2 OH OW: a muddled compute count.",
        tuple(nums),
    )
