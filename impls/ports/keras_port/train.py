"""The Keras port's training step: one keras.optimizers.Adam step of the port in Keras' own NHWC layout (train_step),
and what it cannot do as the canonical step does (train_notes). A model with state runs it in training mode
(BatchNormalization on the batch) on a copy whose Dropout layers have rate 0."""

from __future__ import annotations

import numpy as np

from ...model import training
from ...model.description import Model
from .assembly import assemble, integer
from .emitters import keras, tf
from .normalization import batch_norm_notes
from .weights import canonical_weights, dense_grads, variables


def _adam(dtype: str):
    """keras.optimizers.Adam with its own defaults and lr = training.LR, its hyper-parameters handed over as
    tensors of `dtype`: Keras turns Python floats into float32 before casting them (ops.cast(0.999, "float64")
    rounds through float32), which would put its float64 step ~7e-6 (relative) off its own formula."""
    d = keras.optimizers.Adam()
    lr, b1, b2 = (tf.constant(float(v), dtype=dtype) for v in (training.LR, d.beta_1, d.beta_2))
    return keras.optimizers.Adam(learning_rate=lambda: lr, beta_1=b1, beta_2=b2, epsilon=d.epsilon)


def train_notes(model: Model) -> list[str]:
    """What Keras' step cannot do as the canonical one does: a GRU(reset_after=False) or an LSTM has one bias c = b_x + b_h,
    stepped once by Adam, where the canonical model steps b_x and b_h apart; its b_h reads back as 0 and its b_x
    as c (compare with reference_step on convert.keras_single_bias's projection, b_h left out). A BatchNorm whose
    variance_update is "unbiased" moves moving_var by Keras' biased batch variance (batch_norm_notes)."""
    return [*(f"{la.label(i)}: Keras' single GRU bias b_x + b_h is one Adam parameter; b_h reads back 0"
              for i, la in enumerate(model.layers) if la.kind == "gru" and la.options.get("variant") == "reset_before"),
            *(f"{la.label(i)}: Keras' single LSTM bias b_x + b_h is one Adam parameter; b_h reads back 0"
              for i, la in enumerate(model.layers) if la.kind == "lstm"),
            *batch_norm_notes(model)]  # fmt: skip


def train_step(model: Model, x: np.ndarray, t: np.ndarray, dtype: str = "float64") -> tuple[float, dict[tuple[str, str], np.ndarray]]:
    """One keras.optimizers.Adam step (eps 1e-7, lr training.LR) on training.loss_kind's loss computed by
    keras.losses (CategoricalCrossentropy on the softmax output / MeanSquaredError, the mean over the batch),
    Dropout off, in Keras' own NHWC layout. A model with BatchNormalization runs it in training mode (the batch's
    statistics; every Dropout of the step's copy has rate 0, so dropout stays off) and the layer moves its moving
    statistics itself. Returns (loss before the step, canonical weights after it, and (layer, "moving_mean" /
    "moving_var") after the step where the model has state)."""
    net, mains = assemble(model, dtype, native_layout=True, dropout=False)
    kind = training.loss_kind(model)
    loss_fn = (keras.losses.CategoricalCrossentropy(dtype=dtype) if kind == "categorical_crossentropy"
               else keras.losses.MeanSquaredError(dtype=dtype))  # fmt: skip
    held = variables(mains)
    opt = _adam(dtype)
    opt.build(held)
    xt = tf.convert_to_tensor(np.asarray(x, dtype=model.input_dtype if integer(model.input_dtype) else dtype))
    tt = tf.convert_to_tensor(np.asarray(t, dtype=dtype))
    train_mode = bool(model.state())  # BatchNormalization on the batch; without state, inference mode as always
    with tf.GradientTape() as tape:
        loss = loss_fn(tt, net(xt, training=train_mode))
    opt.apply_gradients(zip(dense_grads(tape.gradient(loss, held)), held))
    return float(loss), canonical_weights(mains)


__all__ = ["train_notes", "train_step"]
