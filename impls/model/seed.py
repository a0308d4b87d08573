"""The seed article's two Keras models (section 4) as model descriptions: two instances of the general path.

    seed_gru():  GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax)                        on (B, 100, 64)
    seed_cnn():  Conv2D(32, 3x3, relu) -> MaxPool 2x2 -> Conv2D(64, 3x3, relu) -> MaxPool 2x2 -> Flatten
                 -> Dense(128, relu) -> Dense(10, softmax)                                           on (B, 28, 28, 1)

The weights are impls/contract/models.py's seeded ones (init_seed_gru / init_seed_cnn), so every figure measured
before the general path existed is measured on the same numbers now. Layer names are those of the seed's code.
"""

from __future__ import annotations

import dataclasses

from ..contract import models
from ..contract.models import SEED_GRU_VARIANT
from .description import Layer, Model
from .layers import spec_of

OPS = {"seed_gru_model": ("gru", "dense"), "seed_cnn_model": ("conv2d", "max_pool2d", "dense")}
"""The op-contract operations inside each seed model: a voice that refuses one (impls/contract/limits.py) refuses
the model, and verify's matrix and bench's rows leave those out."""


def _w(obj) -> dict:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


def seed_gru(seed: int = 0, dtype: str = "float64", variant: str = SEED_GRU_VARIANT, input_size: int = models.SEED_GRU_INPUT[1],
             units: tuple[int, int] = models.SEED_GRU_UNITS, classes: int = models.SEED_CLASSES,
             seq_len: int = models.SEED_GRU_INPUT[0]) -> Model:  # fmt: skip
    return from_gru_params(models.init_seed_gru(seed, dtype, input_size, units, classes), variant, seq_len)


def from_gru_params(p: models.SeedGRUParams, variant: str = SEED_GRU_VARIANT, seq_len: int = models.SEED_GRU_INPUT[0]) -> Model:
    """The seed GRU model holding the weights `p` (impls/contract/models.py's dataclass)."""
    units, classes = (int(p.gru1.U.shape[0]), int(p.gru2.U.shape[0])), int(p.dense.bias.shape[0])
    return Model(
        name="seed_gru",
        input_shape=(seq_len, int(p.gru1.W.shape[0])),
        layers=(
            Layer("gru", "gru1", {"units": units[0], "variant": variant, "return_sequences": True}, _w(p.gru1)),
            Layer("gru", "gru2", {"units": units[1], "variant": variant, "return_sequences": False}, _w(p.gru2)),
            Layer("dense", "dense", {"units": classes, "activation": "softmax"}, _w(p.dense)),
        ),
    )


def seed_cnn(seed: int = 0, dtype: str = "float64", image: tuple[int, int, int] = models.SEED_CNN_INPUT,
             filters: tuple[int, int] = models.SEED_CNN_FILTERS, dense_units: int = models.SEED_DENSE_UNITS,
             classes: int = models.SEED_CLASSES, pools: bool = True) -> Model:  # fmt: skip
    """pools=False: the same layers without the two MaxPool layers (Flatten then sees 24x24x64 at the seed's sizes;
    the first Dense gets fresh seeded weights of that size): the seed's parameter-count comparison."""
    m = from_cnn_params(models.init_seed_cnn(seed, dtype, image, filters, dense_units, classes), image)
    if pools:
        return m
    layers = [la for la in m.layers if la.kind != "max_pool2d"]
    flat = Model(m.name, m.input_shape, tuple(layers[:3])).shapes(1)[-1]  # conv, conv, flatten -> (1, features)
    dense = layers[3]
    opts = spec_of("dense").options(dense.options)
    layers[3] = dataclasses.replace(dense, weights=spec_of("dense").init(opts, flat, seed + 2, dtype))
    return dataclasses.replace(m, name="seed_cnn_without_pools", layers=tuple(layers))


def from_cnn_params(p: models.SeedCNNParams, image: tuple[int, int, int] = models.SEED_CNN_INPUT) -> Model:
    """The seed CNN holding the weights `p` on images of `image` (H, W, C)."""
    filters = (int(p.conv1.kernel.shape[3]), int(p.conv2.kernel.shape[3]))
    dense_units, classes = int(p.dense1.bias.shape[0]), int(p.dense2.bias.shape[0])
    k, pool = models.SEED_CNN_KERNEL, models.SEED_CNN_POOL
    return Model(
        name="seed_cnn",
        input_shape=image,
        layers=(
            Layer("conv2d", "conv1", {"filters": filters[0], "kernel_size": [k, k], "activation": "relu"}, _w(p.conv1)),
            Layer("max_pool2d", "pool1", {"pool_size": [pool, pool]}),
            Layer("conv2d", "conv2", {"filters": filters[1], "kernel_size": [k, k], "activation": "relu"}, _w(p.conv2)),
            Layer("max_pool2d", "pool2", {"pool_size": [pool, pool]}),
            Layer("flatten", "flatten"),
            Layer("dense", "dense1", {"units": dense_units, "activation": "relu"}, _w(p.dense1)),
            Layer("dense", "dense2", {"units": classes, "activation": "softmax"}, _w(p.dense2)),
        ),
    )


def reference_model(params: models.SeedGRUParams | models.SeedCNNParams, variant: str = SEED_GRU_VARIANT):
    """x -> the NumPy reference's output of the seed model holding `params`, sized from x (the general path:
    compose.reference_forward of the description)."""
    from .compose import reference_forward

    if isinstance(params, models.SeedGRUParams):
        return lambda x: reference_forward(from_gru_params(params, variant, int(x.shape[1])), x)
    return lambda x: reference_forward(from_cnn_params(params, tuple(int(d) for d in x.shape[1:])), x)


__all__ = ["from_cnn_params", "from_gru_params", "reference_model", "seed_cnn", "seed_gru"]
