"""The seed article's two Keras models (section 4), defined once as data, with seeded canonical weights.

    GRU model:  GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax)            on (B, 100, 64)
    CNN model:  Conv2D(32, 3x3, relu) -> MaxPool 2x2 -> Conv2D(64, 3x3, relu) -> MaxPool 2x2
                -> Flatten (NHWC order, as Keras) -> Dense(128, relu) -> Dense(10, softmax)  on (B, 28, 28, 1)

These are the seeded weights; the models themselves are model descriptions (impls/model/seed.py), which every
voice builds through the general path (impls/model/voices.py). Smaller sizes are allowed so that tests stay fast,
the defaults are the seed's.
"""

from __future__ import annotations

from dataclasses import dataclass

from .spec import (
    ConvWeights,
    DenseWeights,
    GRUWeights,
    init_conv,
    init_dense,
    init_gru,
    out_size,
)

SEED_GRU_INPUT = (100, 64)  # (T, I) of model.add(GRU(128, input_shape=(100, 64), ...))
SEED_GRU_UNITS = (128, 64)
SEED_CNN_INPUT = (28, 28, 1)
SEED_CNN_FILTERS = (32, 64)
SEED_CNN_KERNEL = 3
SEED_CNN_POOL = 2
SEED_DENSE_UNITS = 128
SEED_CLASSES = 10
SEED_GRU_VARIANT = "reset_after"  # what the seed's Keras code computes: keras.layers.GRU's default


@dataclass(frozen=True)
class SeedGRUParams:
    gru1: GRUWeights  # (I, 3*128) ...
    gru2: GRUWeights  # (128, 3*64) ...
    dense: DenseWeights  # (64, 10)

    def map(self, fn) -> SeedGRUParams:
        return SeedGRUParams(self.gru1.map(fn), self.gru2.map(fn), self.dense.map(fn))


@dataclass(frozen=True)
class SeedCNNParams:
    conv1: ConvWeights  # (3, 3, 1, 32)
    conv2: ConvWeights  # (3, 3, 32, 64)
    dense1: DenseWeights  # (5*5*64, 128), rows in NHWC flatten order (h, w, c)
    dense2: DenseWeights  # (128, 10)

    def map(self, fn) -> SeedCNNParams:
        return SeedCNNParams(*(getattr(self, n).map(fn) for n in ("conv1", "conv2", "dense1", "dense2")))


def init_seed_gru(
    seed: int = 0,
    dtype="float64",
    input_size: int = SEED_GRU_INPUT[1],
    units: tuple[int, int] = SEED_GRU_UNITS,
    classes: int = SEED_CLASSES,
) -> SeedGRUParams:
    return SeedGRUParams(
        gru1=init_gru(input_size, units[0], seed=seed, dtype=dtype),
        gru2=init_gru(units[0], units[1], seed=seed + 1, dtype=dtype),
        dense=init_dense(units[1], classes, seed=seed + 2, dtype=dtype),
    )


def cnn_feature_shape(image=SEED_CNN_INPUT, filters=SEED_CNN_FILTERS) -> tuple[int, int, int]:
    """(H, W, C) entering Flatten: two (valid 3x3 conv, 2x2 pool) stages. 28 -> 26 -> 13 -> 11 -> 5."""
    h, w = image[0], image[1]
    for _ in filters:
        h, w = out_size(h, SEED_CNN_KERNEL, 1, "valid"), out_size(w, SEED_CNN_KERNEL, 1, "valid")
        h, w = out_size(h, SEED_CNN_POOL, SEED_CNN_POOL, "valid"), out_size(w, SEED_CNN_POOL, SEED_CNN_POOL, "valid")
    return h, w, filters[-1]


def init_seed_cnn(
    seed: int = 0,
    dtype="float64",
    image: tuple[int, int, int] = SEED_CNN_INPUT,
    filters: tuple[int, int] = SEED_CNN_FILTERS,
    dense_units: int = SEED_DENSE_UNITS,
    classes: int = SEED_CLASSES,
) -> SeedCNNParams:
    fh, fw, fc = cnn_feature_shape(image, filters)
    k = SEED_CNN_KERNEL
    return SeedCNNParams(
        conv1=init_conv(k, k, image[2], filters[0], seed=seed, dtype=dtype),
        conv2=init_conv(k, k, filters[0], filters[1], seed=seed + 1, dtype=dtype),
        dense1=init_dense(fh * fw * fc, dense_units, seed=seed + 2, dtype=dtype),
        dense2=init_dense(dense_units, classes, seed=seed + 3, dtype=dtype),
    )
