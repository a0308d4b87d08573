"""TensorFlow and Keras pieces of the benchmark harness: the TF32 switch, and prepared callables for rows
that the contract's functions would time with setup inside (see bench/native_torch.py for why).

keras_builtin's ops assign the weights into a cached layer on every call, and model gradients and
optimiser steps have no contract function; here layers, models and optimisers are built once from
canonical weights through impls/convert.py, and the callable does only the framework's work. Each
callable is given to the implementation's compile(fn, mode), so it runs eagerly or under tf.function.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from impls import convert, frameworks
from impls.model.compose import compose
from impls.train import numpy_train

from . import works

tf = frameworks.load("tensorflow")
keras = frameworks.load("keras")

KERAS_ADAM_EPS = 1e-7  # keras.optimizers.Adam's default
_DEVICES = {"cpu": "/CPU:0", "cuda": "/GPU:0"}


def gpu_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def needs_sync(device: str) -> bool:
    """False on the CPU in TensorFlow's default synchronous execution: an eager op or a tf.function call
    returns after its kernels ran, and tf.test.experimental.sync_devices would add ~50 us to every call."""
    return device != "cpu" or not tf.config.experimental.get_synchronous_execution()


def on_device(fn: Callable, device: str) -> Callable:
    """fn run with `device` as TensorFlow's default device. Without a GPU every op is on the CPU already,
    and fn is returned as it is (no wrapper cost in the timed call)."""
    if not gpu_available():
        return fn
    name = _DEVICES[device]

    def call():
        with tf.device(name):
            return fn()

    return call


@contextmanager
def precision(p: str, device: str) -> Iterator[None]:
    """TensorFlow runs float32 matmuls and convolutions as TF32 on Ampere and later unless told not to:
    on for "tf32" rows, off for every other row on cuda. No-op on the CPU."""
    if device != "cuda":
        yield
        return
    old = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(p == "tf32")
    try:
        yield
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(old)


def tensor(a: np.ndarray, dtype: str, device: str) -> Any:
    with tf.device(_DEVICES[device]):
        return tf.identity(tf.cast(tf.convert_to_tensor(np.asarray(a)), dtype))


def to_np(t: Any) -> np.ndarray:
    return np.asarray(tf.cast(t, tf.float64).numpy() if t.dtype == tf.bfloat16 else t.numpy(), dtype=np.float64)


def _build(layer: Any, input_shape: tuple, device: str) -> Any:
    with tf.device(_DEVICES[device]):
        layer.build(input_shape)
    return layer


def _assign(variables: list, arrays: list) -> None:
    for v, arr in zip(variables, arrays, strict=True):
        v.assign(tf.cast(tf.convert_to_tensor(np.asarray(arr)), v.dtype))


def _pull(tape: Any, outputs: list, sources: list, dys: list) -> list:
    return tape.gradient(outputs, sources, output_gradients=dys, unconnected_gradients=tf.UnconnectedGradients.ZERO)


# --------------------------------------------------------------------------- built-in layers, prepared


def builtin_op(work: str, pass_: str, a: dict[str, Any], variant: str | None, dtype: str, device: str
               ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """keras.layers layer for `work`, built and given its weights outside the timed call (NHWC, Keras'
    own layout). Returns (fn, post, what is timed); post gives canonical NumPy outputs."""
    bwd = pass_ != "fwd"
    t = lambda arr: tensor(arr, dtype, device)
    x = t(a["x"])
    if work == "gru":
        if variant not in ("reset_after", "reset_before"):
            raise ValueError(f"keras.layers.GRU computes reset_after and reset_before, not {variant!r}")
        ra = variant == "reset_after"
        w = a["weights"]
        B, H = a["x"].shape[0], w.U.shape[0]
        layer = keras.layers.GRU(H, return_sequences=True, return_state=True, reset_after=ra, dtype=dtype)
        _build(layer, (None, None, w.W.shape[0]), device)
        variables = [layer.cell.kernel, layer.cell.recurrent_kernel, layer.cell.bias]
        _assign(variables, convert.gru_to_keras(w, reset_after=ra))
        what = f"keras.layers.GRU(reset_after={ra}) layer call"
        if not bwd:
            return (lambda: layer(x)), (lambda out: [to_np(out[0]), to_np(out[1])]), what
        h0, dy = t(np.zeros((B, H))), t(a["dy"])

        def fn():
            with tf.GradientTape() as tape:
                tape.watch([x, h0])
                y, _ = layer(x, initial_state=h0)
            return _pull(tape, [y], [x, h0, *variables], [dy])

        def post(g):
            cw = convert.gru_from_keras([to_np(v) for v in g[2:]], reset_after=ra)
            # reset_before has one bias b_x + b_h: its gradient is the gradient of b_x and of b_h alike
            d = {"x": to_np(g[0]), "h0": to_np(g[1]), "W": cw.W, "U": cw.U, "b_x": cw.b_x,
                 "b_h": cw.b_h if ra else cw.b_x}  # fmt: skip
            return [d[k] for k in sorted(d)]

        return fn, post, what + " + GradientTape.gradient(x, h0, weights)"
    if work == "conv2d":
        k = a["kernel"]
        layer = _build(keras.layers.Conv2D(k.shape[3], k.shape[:2], dtype=dtype), (None, None, None, k.shape[2]), device)
        variables = [layer.kernel, layer.bias]
        _assign(variables, [k, a["bias"]])
        names, what = ["kernel", "bias"], "keras.layers.Conv2D(x NHWC)"
    elif work == "max_pool2d":
        layer = _build(keras.layers.MaxPooling2D((2, 2), dtype=dtype), (None, None, None, a["x"].shape[3]), device)
        variables, names, what = [], [], "keras.layers.MaxPooling2D(2)(x NHWC)"
    elif work == "dense":
        k = a["kernel"]
        layer = _build(keras.layers.Dense(k.shape[1], dtype=dtype), (None, k.shape[0]), device)
        variables = [layer.kernel, layer.bias]
        _assign(variables, [k, a["bias"]])
        names, what = ["kernel", "bias"], "keras.layers.Dense(x)"
    else:
        raise ValueError(f"no Keras layer for work {work!r}")
    if not bwd:
        return (lambda: layer(x)), (lambda out: [to_np(out)]), what
    dy = t(a["dy"])

    def fn():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return _pull(tape, [y], [x, *variables], [dy])

    def post(g):
        d = dict(zip(["x", *names], (to_np(v) for v in g)))
        return [d[k] for k in sorted(d)]

    return fn, post, what + " + GradientTape.gradient"


# --------------------------------------------------------------------------- seed models: gradients and steps


def xent(probs: Any, onehot: Any) -> Any:
    """Mean categorical cross-entropy of probabilities as numpy_train computes it (Keras' from_logits=False
    formula): renormalise, clip to [eps, 1 - eps], -sum(t log p)."""
    eps = numpy_train.KERAS_EPSILON
    p = probs / tf.reduce_sum(probs, axis=-1, keepdims=True)
    p = tf.clip_by_value(p, tf.cast(eps, p.dtype), tf.cast(1.0 - eps, p.dtype))
    return tf.reduce_mean(-tf.reduce_sum(onehot * tf.math.log(p), axis=-1))


def _keras_model(work: str, a: dict[str, Any], variant: str, dtype: str, device: str) -> tuple[Any, list, Callable]:
    """The Keras port of the row's seed model (the keras.Sequential nnparity writes) on `device`, the variables that
    hold its weights, and the map of arrays (weights or their gradients, in those variables' order) back to the
    canonical leaves (impls/ports/keras_port.py owns Keras' single GRU bias for reset_before)."""
    from impls.ports import keras_port

    description = works.description(work, a, variant)
    with tf.device(_DEVICES[device]):
        net, mains = keras_port.assemble(description, dtype, False)
    variables = keras_port.variables(mains)

    def back(arrays: list[np.ndarray], grads: bool) -> Any:
        canonical = keras_port.canonical_weights(mains, arrays if grads else None)
        return numpy_train.rebuild(a["params"], [canonical[k] for k in description.parameters()])

    return net, variables, back


def model_grads(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
                ) -> tuple[Callable, Callable, str]:  # fmt: skip
    """Loss and gradients of every parameter of a seed model: (fn, post -> [loss, *canonical grads], what)."""
    x, onehot = tensor(a["x"], dtype, device), tensor(a["onehot"], dtype, device)
    if impl == "keras":
        net, variables, back = _keras_model(work, a, variant, dtype, device)

        def fn():
            with tf.GradientTape() as tape:
                loss = xent(net(x, training=True), onehot)
            return loss, tape.gradient(loss, variables)

        def post(out):
            return [to_np(out[0]), *numpy_train.leaves(back([to_np(v) for v in out[1]], grads=True))]

        return fn, post, "keras.Sequential(x, training=True) + loss + GradientTape.gradient"
    if impl == "tensorflow":
        from impls.primitives import tf_impl

        composed = compose(tf_impl, works.description(work, a, variant), dtype, device)
        flat = [v for w in composed.weights for v in w.values()]  # the description's parameters() order
        forward = lambda x: composed(x)

        def fn():
            with tf.GradientTape() as tape:
                tape.watch(flat)
                loss = xent(forward(x), onehot)
            return loss, tape.gradient(loss, flat)

        return fn, (lambda out: [to_np(out[0]), *(to_np(g) for g in out[1])]), "forward + loss + GradientTape.gradient"
    raise ValueError(f"no TensorFlow gradient adapter for implementation {impl!r}")


def train_step(impl: str, work: str, a: dict[str, Any], variant: str, dtype: str, device: str
               ) -> tuple[Callable, Callable, str, dict[str, Any]]:  # fmt: skip
    """One keras.optimizers.Adam step of the seed keras.Sequential. Returns (fn, observe, what, adam
    settings); observe() after a step gives {"loss", "grads", "params"} of that step (canonical NumPy)."""
    if impl != "keras":
        raise ValueError(f"no TensorFlow training adapter for implementation {impl!r}")
    x, onehot = tensor(a["x"], dtype, device), tensor(a["onehot"], dtype, device)
    net, variables, back = _keras_model(work, a, variant, dtype, device)
    lr = tf.constant(1e-3, dtype=dtype)  # a callable keeps the learning rate in the model's dtype
    with tf.device(_DEVICES[device]):
        opt = keras.optimizers.Adam(learning_rate=lambda: lr, epsilon=KERAS_ADAM_EPS)
        opt.build(variables)
    loss_fn = keras.losses.CategoricalCrossentropy(dtype=dtype)  # the seed's loss="categorical_crossentropy"

    def fn():
        with tf.GradientTape() as tape:
            loss = loss_fn(onehot, net(x, training=True))
        grads = tape.gradient(loss, variables)
        opt.apply_gradients(zip(grads, variables))
        return loss, grads

    def observe(out):
        return {
            "loss": to_np(out[0]),
            "grads": back([to_np(g) for g in out[1]], grads=True),
            "params": back([to_np(v) for v in variables], grads=False),
        }

    return fn, observe, "GradientTape(forward + loss) + keras.optimizers.Adam.apply_gradients", {
        "flavour": "keras", "eps": KERAS_ADAM_EPS, "lr": 1e-3}  # fmt: skip
