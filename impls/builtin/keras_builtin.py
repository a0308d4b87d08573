"""The built-in Keras voice (Keras 3 on the TensorFlow backend): keras.layers fed through impls/convert.py.

Each op is the framework's own layer: GRU(reset_after=True/False), Conv2D / DepthwiseConv2D, MaxPooling2D,
AveragePooling2D (those in impls/builtin/keras_conv.py, with the layer cache), Dense, ReLU, Softmax, DepthwiseConv1D
(the seed's per-channel 1-D equation), MaxPooling1D(2, stride 1). Layers are
built once per (shape, dtype) and cached; every call assigns the weights it is given, so nothing
carries over from one call to the next. Seed models are keras.Sequential built like the seed's
section 4, a fresh one per seed_*_model call. Gradients are tf.GradientTape over the layers, mapped
back to canonical names by the converters. Parameter counts come from built layers (count_params()).
Tensors cross the boundary through tf_impl.asarray / to_numpy (boundary only, never its math).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import convert, frameworks
from ..contract import models, spec
from ..contract.formulas import check_sizes
from ..contract.models import SEED_GRU_VARIANT, SeedCNNParams, SeedGRUParams
from ..contract.spec import GRUWeights
from ..model import seed as seed_models
from ..primitives import tf_impl
from ..train import numpy_train
from .keras_conv import assign as _assign
from .keras_conv import avg_pool2d, avg_pool2d_vjp, conv2d, conv2d_vjp, max_pool2d, max_pool2d_vjp  # noqa: F401 (the voice's)
from .keras_conv import dt as _dt
from .keras_conv import layer as _layer
from .keras_conv import layer_vjp as _layer_vjp
from .keras_conv import native as _native
from .keras_conv import pull as _pull
from .keras_gru import KERAS_GRU, REC_INIT

keras = frameworks.load("keras")
tf = frameworks.load("tensorflow")

NAME = "keras"
FRAMEWORK = "keras"
MODE = "eager"
MODES = tf_impl.MODES
asarray, to_numpy, synchronize, compile = tf_impl.asarray, tf_impl.to_numpy, tf_impl.synchronize, tf_impl.compile  # fmt: skip

def reset_after_flag(variant: str) -> bool:
    """The keras.layers.GRU reset_after flag computing `variant`; ValueError naming the supported ones."""
    if variant not in KERAS_GRU:
        raise ValueError(
            f"keras.layers.GRU cannot compute GRU variant {variant!r}; supported: "
            + ", ".join(f"{v} (reset_after={f})" for v, f in KERAS_GRU.items())
        )
    return KERAS_GRU[variant]


# --------------------------------------------------------------------------- forward ops


def _gru_layer(I: int, H: int, variant: str, dtype: str):
    ra = reset_after_flag(variant)

    def make():
        return keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=ra,
                                recurrent_initializer=REC_INIT, dtype=dtype)  # fmt: skip

    layer = _layer(("gru", I, H, ra, dtype), make, (None, None, I))
    return layer, ra


def _gru_set(layer, weights: GRUWeights, ra: bool) -> list:
    cell = layer.cell
    variables = [cell.kernel, cell.recurrent_kernel, cell.bias]
    _assign(variables, convert.gru_to_keras(weights, reset_after=ra))
    return variables


def gru(x, weights: GRUWeights, variant: str, h0=None):
    """keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=...) -> (y, h_T)."""
    spec.check_variant(variant)
    _, _, I, H = spec.check_gru(x.shape, weights, None if h0 is None else h0.shape)
    layer, ra = _gru_layer(I, H, variant, _dt(x))
    _gru_set(layer, weights, ra)
    y, h_T = layer(x, initial_state=None if h0 is None else _native(h0, x))
    return y, h_T


def _dense_layer(x, kernel, bias):
    spec.check_dense(x.shape, kernel.shape, bias.shape)
    n_in, n_out = int(kernel.shape[0]), int(kernel.shape[1])
    make = lambda: keras.layers.Dense(n_out, dtype=_dt(x))
    layer = _layer(("dense", n_in, n_out, _dt(x)), make, (None, n_in))
    _assign([layer.kernel, layer.bias], [kernel, bias])
    return layer


def dense(x, kernel, bias):
    """keras.layers.Dense(out) on the last axis of x (..., in)."""
    return _dense_layer(x, kernel, bias)(x)


def relu(x):
    return _layer(("relu", _dt(x)), lambda: keras.layers.ReLU(dtype=_dt(x)), tuple(x.shape))(x)


def softmax(x):
    return _layer(("softmax", _dt(x)), lambda: keras.layers.Softmax(axis=-1, dtype=_dt(x)), tuple(x.shape))(x)


def seed_conv1d(x, w, b):
    """The seed's y_ij = sum_k w_ik x_i,j+k-1 + b_i as DepthwiseConv1D(K, depth_multiplier=1, 'valid').
    Its kernel is (K, C, depth_multiplier): the seed's w (K, C) with a trailing axis of 1."""
    _, _, C, K = spec.check_seed_conv1d(x.shape, w.shape, b.shape)
    make = lambda: keras.layers.DepthwiseConv1D(K, depth_multiplier=1, padding="valid", dtype=_dt(x))
    layer = _layer(("seed_conv1d", K, C, _dt(x)), make, (None, None, C))
    _assign([layer.kernel, layer.bias], [tf.expand_dims(tf.convert_to_tensor(w), -1), b])
    return layer(x)


def seed_pool1d(y):
    """The seed's x_ij = max(y_ij, y_i,j+1) as MaxPooling1D(pool_size=2, strides=1)."""
    _, _, C = spec.check_seed_pool1d(y.shape)
    make = lambda: keras.layers.MaxPooling1D(pool_size=2, strides=1, dtype=_dt(y))
    return _layer(("seed_pool1d", _dt(y)), make, (None, None, C))(y)


# --------------------------------------------------------------------------- the seed's own Keras code (section 4)


def build_seed_gru(
    input_size: int = models.SEED_GRU_INPUT[1],
    units: tuple[int, int] = models.SEED_GRU_UNITS,
    classes: int = models.SEED_CLASSES,
    reset_after: bool = True,
    dtype: str = "float32",
    steps: int | None = models.SEED_GRU_INPUT[0],
):
    """The seed's GRU model as its section 4 writes it: GRU(128, return_sequences=True) -> GRU(64) -> Dense(10,
    softmax), with Keras' own initialisation. A source model (the audit counts it; tests import it): canonical
    weights reach Keras through the Keras port (impls/ports/keras_port/), never through this."""
    return keras.Sequential([
        keras.Input(shape=(steps, input_size), dtype=dtype),
        keras.layers.GRU(units[0], return_sequences=True, reset_after=reset_after, recurrent_initializer=REC_INIT,
                         dtype=dtype),
        keras.layers.GRU(units[1], reset_after=reset_after, recurrent_initializer=REC_INIT, dtype=dtype),
        keras.layers.Dense(classes, activation="softmax", dtype=dtype),
    ])  # fmt: skip


def build_seed_cnn(
    image: tuple[int, int, int] = models.SEED_CNN_INPUT,
    filters: tuple[int, int] = models.SEED_CNN_FILTERS,
    dense_units: int = models.SEED_DENSE_UNITS,
    classes: int = models.SEED_CLASSES,
    dtype: str = "float32",
    pools: bool = True,
):
    """The seed's CNN: Conv2D(32, 3x3, relu) -> MaxPooling2D 2x2 -> Conv2D(64, 3x3, relu) -> MaxPooling2D
    -> Flatten -> Dense(128, relu) -> Dense(10, softmax). pools=False drops the two MaxPooling2D layers."""
    k, p = (models.SEED_CNN_KERNEL, models.SEED_CNN_KERNEL), (models.SEED_CNN_POOL, models.SEED_CNN_POOL)

    def pool():  # a fresh layer at each place (a Keras layer lives at one place in a model)
        return [keras.layers.MaxPooling2D(p, dtype=dtype)] if pools else []

    return keras.Sequential([
        keras.Input(shape=tuple(image), dtype=dtype),
        keras.layers.Conv2D(filters[0], k, activation="relu", dtype=dtype), *pool(),
        keras.layers.Conv2D(filters[1], k, activation="relu", dtype=dtype), *pool(),
        keras.layers.Flatten(dtype=dtype),
        keras.layers.Dense(dense_units, activation="relu", dtype=dtype),
        keras.layers.Dense(classes, activation="softmax", dtype=dtype),
    ])  # fmt: skip


# --------------------------------------------------------------------------- gradients (GradientTape over the layers)


def gru_vjp(x, weights: GRUWeights, variant: str, dy, h0=None, dh_T=None) -> dict:
    """{"x", "h0", "W", "U", "b_x", "b_h"}. reset_before is GRU(reset_after=False), whose one bias is
    b_x + b_h: its gradient is the gradient of b_x and of b_h alike, and both keys carry it."""
    spec.check_variant(variant)
    B, T, I, H = spec.check_gru_vjp(x, weights, h0, dy, dh_T)
    dy = tf.zeros((B, T, H), dtype=x.dtype) if dy is None else _native(dy, x)  # None: only h_T is used
    layer, ra = _gru_layer(I, H, variant, _dt(x))
    variables = _gru_set(layer, weights, ra)
    h0 = tf.zeros((B, H), dtype=x.dtype) if h0 is None else _native(h0, x)
    dh = tf.zeros((B, H), dtype=x.dtype) if dh_T is None else _native(dh_T, x)
    with tf.GradientTape() as tape:
        tape.watch([x, h0])
        y, h_T = layer(x, initial_state=h0)
    gx, gh0, *gw = _pull(tape, [y, h_T], [x, h0, *variables], [dy, dh])
    return {"x": gx, "h0": gh0, **_gru_grads_to_canonical(gw, ra)}


def _gru_grads_to_canonical(grads: list, ra: bool) -> dict:
    """convert.gru_grads_from_keras applied to gradient tensors as one gather, so that it also runs inside
    tf.function: the converter maps arrays of flat element indices, which say where each canonical
    element comes from (without reset_after, b_x and b_h both take the one bias's gradient)."""
    sizes = [int(np.prod(g.shape)) for g in grads]
    starts = np.cumsum([0, *sizes])
    idx = [np.arange(a, a + n).reshape(tuple(g.shape)) for a, n, g in zip(starts, sizes, grads)]
    where = convert.gru_grads_from_keras(idx, reset_after=ra)
    flat = tf.concat([tf.reshape(g, [-1]) for g in grads], axis=0)
    return {k: tf.gather(flat, getattr(where, k)) for k in ("W", "U", "b_x", "b_h")}


def dense_vjp(x, kernel, bias, dy) -> dict:
    layer = _dense_layer(x, kernel, bias)
    out = (*x.shape[:-1], kernel.shape[1])
    return _layer_vjp(layer, x, [layer.kernel, layer.bias], ["kernel", "bias"], dy, out, "dense_vjp")


def relu_vjp(x, dy) -> dict:
    return _layer_vjp(relu, x, [], [], dy, x.shape, "relu_vjp")


def _cross_entropy(logits, onehot):
    ls, os_ = tuple(int(d) for d in logits.shape), tuple(int(d) for d in onehot.shape)
    if ls != os_ or len(ls) < 1:
        raise spec.ShapeError(f"softmax_cross_entropy: logits.shape={ls} and onehot.shape={os_} must match")
    loss = keras.losses.CategoricalCrossentropy(from_logits=True, dtype=_dt(logits))  # mean over the batch
    return loss(_native(onehot, logits), logits)


def softmax_cross_entropy(logits, onehot):
    """keras.losses.CategoricalCrossentropy(from_logits=True): the mean loss (a scalar)."""
    return _cross_entropy(logits, onehot)


def softmax_cross_entropy_vjp(logits, onehot) -> dict:
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = _cross_entropy(logits, onehot)
    return {"logits": tape.gradient(loss, logits)}


# --------------------------------------------------------------------------- counts (issue 4): built layers


def _count(layer, input_shape: tuple) -> int:
    layer.build(input_shape)
    return int(layer.count_params())


def gru_param_count(I: int, H: int, variant: str) -> int:
    """keras.layers.GRU(H, reset_after=...) on I features: 3(IH + H^2 + 2H) or 3(IH + H^2 + H)."""
    check_sizes(I=I, H=H)
    return _count(keras.layers.GRU(H, reset_after=reset_after_flag(variant)), (None, None, I))


def lstm_param_count(I: int, H: int) -> int:
    check_sizes(I=I, H=H)
    return _count(keras.layers.LSTM(H), (None, None, I))


def conv2d_param_count(kh: int, kw: int, c_in: int, c_out: int, groups: int = 1, bias: bool = True) -> int:
    check_sizes(kh=kh, kw=kw, c_in=c_in, c_out=c_out, groups=groups)
    if groups < 1 or c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must be >= 1 and divide c_in={c_in} and c_out={c_out}")
    return _count(
        keras.layers.Conv2D(c_out, (kh, kw), groups=groups, use_bias=bias), (None, None, None, c_in)
    )


def dense_param_count(n_in: int, n_out: int, bias: bool = True) -> int:
    check_sizes(n_in=n_in, n_out=n_out)
    return _count(keras.layers.Dense(n_out, use_bias=bias), (None, n_in))


def seed_gru_model_param_count() -> int:
    """The seed's GRU model as Keras builds it (reset_after=True, its default)."""
    return int(build_seed_gru().count_params())


def seed_cnn_model_param_count(pools: bool = True) -> int:
    """The seed's CNN as Keras builds it; pools=False: the same layers without the two MaxPooling2D."""
    return int(build_seed_cnn(pools=pools).count_params())


# --------------------------------------------------------------------------- training (issue 3)


def train_seed_model(
    model: str,
    params,
    batches: Sequence[tuple[np.ndarray, np.ndarray]],
    lr: float = 1e-3,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    eps: float | None = None,
    dtype: str = "float64",
) -> tuple[list[float], SeedGRUParams | SeedCNNParams]:
    """Train the seed's keras.Sequential with keras.optimizers.Adam and categorical cross-entropy (the
    seed's compile()), one update per batch in a tf.function step. losses[i] is batch i's mean loss
    before update i. Returns (losses, final canonical NumPy params). The GRU model is reset_after=True."""
    if model not in ("gru", "cnn"):
        raise ValueError(f"unknown seed model {model!r}; valid: gru, cnn")
    if not batches:
        raise ValueError("train_seed_model needs at least one (x, onehot) batch")
    from ..ports import keras_port

    dt = tf_impl.tf_dtype(dtype).name
    x0 = batches[0][0]
    description = (seed_models.from_gru_params(params, SEED_GRU_VARIANT, int(x0.shape[1])) if model == "gru"
                   else seed_models.from_cnn_params(params, tuple(int(d) for d in x0.shape[1:])))  # fmt: skip
    net, mains = keras_port.assemble(description, dt, False)  # the Keras port nnparity writes
    # Keras keeps a float learning rate in a floatx (float32) variable and turns the Python floats beta_1,
    # beta_2 into float32 before casting them (ops.cast(0.999, "float64") rounds through float32): in
    # float64 its bias corrections would be off by ~7e-6 relative. Handing it the hyper-parameters as
    # tensors of `dtype` runs Keras' own Adam update in `dtype` throughout.
    lr_t, b1_t, b2_t = (tf.constant(v, dtype=dt) for v in (lr, beta_1, beta_2))
    opt = keras.optimizers.Adam(learning_rate=lambda: lr_t, beta_1=b1_t, beta_2=b2_t,
                                epsilon=1e-7 if eps is None else eps)  # fmt: skip
    opt.build(net.trainable_variables)
    loss_fn = keras.losses.CategoricalCrossentropy(dtype=dt)  # loss="categorical_crossentropy"

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        return loss

    losses = [float(step(asarray(x, dt), asarray(y, dt))) for x, y in batches]
    final = keras_port.canonical_weights(mains)
    return losses, numpy_train.rebuild(params, [final[k] for k in description.parameters()])
