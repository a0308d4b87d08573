"""The seed article's own formulas (section 6.1, the GRU; 6.2, the CNN) exactly as printed, and every reading of
their words evaluated on the seed's models (sections 4.1 and 4.2)."""

from __future__ import annotations

from .count_args import check_sizes
from .param_counts import seed_cnn_model_table


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
