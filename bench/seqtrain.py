"""Preparing a sequence-task row (bench/seqtask.py): the forward of each voice's build, and one Adam step of the whole
model in numpy (numpy_train's Adam, Keras' flavour, on the hand-written backward), torch.nn (torch.optim.Adam on the
torch port), Keras (keras.optimizers.Adam on the Keras port) and Flax (optax.adam on the Flax port), each built once
outside the timed call, as bench/native_*.py build the seed models' steps.

The check of a step is the seed models' (bench/prepare.py): after the first call, the loss and every parameter's
gradient that step took (read back as canonical ones) against the NumPy float64 reference's (training.loss_and_dy's
cross-entropy, the hand-written backward), and `update_err`: the parameters after the step against numpy_train's Adam in
float64, in the voice's flavour, applied to the step's own gradients, on the model as the voice holds it
(nnparity/trainref.project: keras.layers.LSTM holds one bias b_x + b_h, Flax's cells fold the gate biases; the folded
b_h entries are held where the projection puts them).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from impls import frameworks
from impls.contract.inputs import round_to
from impls.contract.limits import Refused
from impls.contract.tolerance import CALIBRATED_FACTOR, calibrated_tolerance, tolerance
from impls.model import compose, training
from impls.model import voices as model_voices
from impls.model.description import Model
from impls.train import numpy_train
from nnparity import trainref

from . import seqtask
from .cases import Row
from .prepare import Prepared, compile_for, inputs, max_error, reference

ADAM = {"numpy": ("keras", 1e-7), "torch_nn": ("torch", 1e-8), "keras": ("keras", 1e-7), "flax": ("torch", 1e-8)}
"""Each voice's Adam: (numpy_train flavour, eps), its framework's defaults; lr training.LR."""


def _xent_np(y: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    return training.loss_and_dy("categorical_crossentropy", y, t)


def _numpy(model: Model, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[Callable, Callable]:
    typed = model.astype(dtype)
    keys = list(typed.parameters())
    state = {"p": [typed.parameters()[k] for k in keys]}
    state["adam"] = numpy_train.adam_init(state["p"])
    flavour, eps = ADAM["numpy"]

    def fn():
        m = typed.with_parameters(dict(zip(keys, state["p"], strict=True)))
        loss, dy = _xent_np(compose.reference_forward(m, x), t)
        _, g = compose.reference_vjp(m, x, dy)
        state["p"], state["adam"] = numpy_train.adam_update(state["p"], [g[k] for k in keys], state["adam"],
                                                            lr=training.LR, eps=eps, flavour=flavour)  # fmt: skip
        return loss, g

    def observe(out):
        return out[0], out[1], dict(zip(keys, state["p"], strict=True))

    return fn, observe


def _torch_nn(model: Model, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[Callable, Callable]:
    torch = frameworks.load("torch")
    from impls.ports.torch_port.build import in_memory
    from impls.ports.torch_port.files import grad_map
    from impls.primitives.torch_impl import asarray, to_numpy

    net, code, _ = in_memory(model, dtype)  # eval mode: dropout off, as every voice's step
    params = {k: p for k, p in net.named_parameters() if p.requires_grad}
    opt = torch.optim.Adam(params.values(), lr=training.LR, eps=ADAM["torch_nn"][1])
    xn, tn = asarray(code.inputs.to_torch(x), dtype), asarray(t, dtype)

    def fn():
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            loss = torch.mean(-torch.sum(tn * torch.log(net(xn)), dim=-1))
            loss.backward()
        opt.step()
        return loss

    def observe(loss):
        grads = grad_map(code, model, {k: to_numpy(p.grad) for k, p in params.items()})
        return to_numpy(loss.detach()), grads, grad_map(code, model, {k: to_numpy(p.detach()) for k, p in params.items()})

    return fn, observe


def _keras(model: Model, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[Callable, Callable]:
    keras, tf = frameworks.load("keras"), frameworks.load("tensorflow")
    from impls.ports.keras_port.assembly import assemble
    from impls.ports.keras_port.weights import canonical_weights, dense_grads, variables

    net, mains = assemble(model, dtype, native_layout=True, dropout=False)
    held = variables(mains)
    lr = tf.constant(training.LR, dtype=dtype)  # a callable keeps the learning rate in the model's dtype
    opt = keras.optimizers.Adam(learning_rate=lambda: lr, epsilon=ADAM["keras"][1])
    opt.build(held)
    loss_fn = keras.losses.CategoricalCrossentropy(dtype=dtype)
    xt, tt = tf.constant(np.asarray(x, dtype)), tf.constant(np.asarray(t, dtype))

    def fn():
        with tf.GradientTape() as tape:
            loss = loss_fn(tt, net(xt, training=False))
        grads = dense_grads(tape.gradient(loss, held))
        opt.apply_gradients(zip(grads, held))
        return loss, grads

    def observe(out):
        grads = canonical_weights(mains, [np.asarray(g) for g in out[1]])
        return np.asarray(out[0]), grads, canonical_weights(mains)

    return fn, observe


def _flax(model: Model, x: np.ndarray, t: np.ndarray, dtype: str) -> tuple[Callable, Callable]:
    jax, optax = frameworks.load("jax"), frameworks.load("optax")
    from impls.ports.flax_port.program import Program
    from impls.ports.flax_port.weights import canonical

    jnp = jax.numpy
    program = Program(model, dtype)  # the code the Flax port writes, exec'd in memory
    module = program.module
    opt = optax.adam(training.LR)  # eps 1e-8 after the bias-corrected sqrt(v): torch's convention

    def loss_fn(p, x, t):
        return jnp.mean(optax.softmax_cross_entropy(jnp.log(module.apply({"params": p}, x)), t))

    @jax.jit
    def step(p, s, x, t):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, t)
        updates, s = opt.update(grads, s, p)
        return loss, optax.apply_updates(p, updates), s, grads

    p = program.variables(model)["params"]
    state = {"p": p, "s": opt.init(p)}
    xn = jnp.asarray(program.layout.x(np.asarray(x)), dtype=dtype)
    tn = jnp.asarray(program.layout.y(np.asarray(t)), dtype=dtype)

    def fn():
        loss, state["p"], state["s"], grads = step(state["p"], state["s"], xn, tn)
        return loss, grads, state["p"]

    def observe(out):
        tree = lambda v: jax.tree_util.tree_map(np.asarray, v)
        grads, after = canonical(model, tree(out[1]), gradients=True), canonical(model, tree(out[2]), gradients=False)
        return np.asarray(out[0]), grads, after

    return fn, observe


STEPS = {"numpy": _numpy, "torch_nn": _torch_nn, "keras": _keras, "flax": _flax}
WHAT = {
    "numpy": "numpy: reference forward + cross-entropy + hand-written backward + numpy_train Adam (keras flavour)",
    "torch_nn": "torch port: zero_grad + forward + cross-entropy + backward + torch.optim.Adam.step",
    "keras": "Keras port: GradientTape(forward + CategoricalCrossentropy) + keras.optimizers.Adam.apply_gradients",
    "flax": "Flax port: jax.jit(value_and_grad(apply + optax.softmax_cross_entropy) + optax.adam update)",
}


def _flat(arrays) -> list[np.ndarray]:
    return [np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in arrays])]


def update_check(voice: str, model64: Model, grads: dict, after: dict, precision: str) -> tuple[float, dict[str, Any]]:
    """(relative error of the parameters after the step, extra fields): numpy_train's Adam in float64, in the voice's
    flavour, applied to the step's own gradients on the model as the voice holds it (trainref.project)."""
    flavour, eps = ADAM[voice]
    projected, frozen, notes = trainref.project(voice, model64)
    before = projected.parameters()
    keys = list(before)
    g = {k: np.asarray(grads[k], np.float64).copy() for k in keys}
    for k, held in frozen.items():
        g[k][held] = 0.0  # a folded entry the voice does not hold: Adam leaves it where the projection put it
    p1, _ = numpy_train.adam_update([before[k] for k in keys], [g[k] for k in keys],
                                    numpy_train.adam_init([before[k] for k in keys]), lr=training.LR, eps=eps,
                                    flavour=flavour)  # fmt: skip
    err = float(max_error(_flat([after[k] for k in keys]), _flat(p1))[0])
    extra = {"update_err": err, "update_tolerance": tolerance(precision, "adam_step"),
             "adam": {"flavour": flavour, "eps": eps, "lr": training.LR}}  # fmt: skip
    if notes:
        extra["parametrization"] = notes
    return err, extra


def prepare_seq(row: Row, mod: ModuleType) -> Prepared:
    """A seq_task row, prepared as bench/prepare.py prepares the others: (the compiled call, its check, what it times)."""
    model = seqtask.model(row.variant, row.size.sizes).astype(row.dtype).astype("float64")  # the weights the voice holds
    r = round_to({k: v for k, v in inputs(row).items() if k in ("x", "onehot")}, row.dtype)
    if row.pass_ == "fwd":
        try:
            built = model_voices.build(row.impl, model.astype(row.dtype), row.dtype, row.device)
        except Refused as e:
            pytest.skip(str(e))
        x = built.to_native(r["x"])
        forward = built.eager or built.call
        key = (row.work, row.size.label, row.variant, "fwd", row.dtype)

        def check(out):
            expected = reference(key, lambda: [compose.reference_forward(model, r["x"])])
            return max_error([built.to_numpy(out)], expected)[0], None

        what = f"voices.build({row.impl!r}, the {row.variant} sequence-task description).call(x)"
        return Prepared(compile_for(mod, lambda: forward(x), row.mode, row.device, row.framework), check, what)
    if row.pass_ != "train_step" or row.impl not in STEPS:
        raise ValueError(f"{row.id}: the sequence task has fwd rows in every voice and train_step in {tuple(STEPS)}")
    if row.device != "cpu":
        pytest.skip(f"{row.impl}: the ports' training steps are built on the CPU only")
    why = model_voices.refusal(row.impl, model, row.dtype)
    if why is not None:
        pytest.skip(f"{row.impl}: {why}")
    x, t = np.asarray(r["x"], row.dtype), np.asarray(r["onehot"], row.dtype)
    fn, observe = STEPS[row.impl](model.astype(row.dtype), x, t, row.dtype)
    gkey = (row.work, row.size.label, row.variant, "grads", row.dtype)

    def ref_grads():
        loss, grads, _ = training.reference_gradients(model, r["x"], r["onehot"])
        return [np.asarray(loss), *(grads[k] for k in model.parameters())]

    def step_error(loss, grads) -> tuple[float, str]:
        names = ["loss", *("/".join(k) for k in model.parameters())]
        got = [np.asarray(loss), *(grads[k] for k in model.parameters())]
        return max_error(got, reference(gkey, ref_grads), names)

    def numpy_float32_error() -> float:
        """NumPy's own float32 step on the same inputs (untimed): how far float32 itself is from float64 here."""
        own_fn, own_observe = _numpy(model.astype("float32"), x.astype("float32"), t.astype("float32"), "float32")
        loss, grads, _ = own_observe(own_fn())
        return step_error(loss, grads)[0]

    def check(out):
        loss, grads, after = observe(out)
        g_err, where = step_error(loss, grads)
        u_err, extra = update_check(row.impl, model, grads, after, row.precision)
        note = (f"max_rel_err: loss and every parameter's gradient of the step vs NumPy float64 (worst {where}); "
                f"update_err: the parameters after the step vs numpy_train's {extra['adam']['flavour']} Adam in float64 "
                f"applied to this step's own gradients")  # fmt: skip
        bar = tolerance(row.precision, row.work)
        if g_err > bar and row.precision == "float32":  # is float32 itself this far off here? (impls/contract/tolerance.py)
            own = float(reference((*gkey, "numpy float32"), lambda: [np.asarray(numpy_float32_error())])[0])
            bar = calibrated_tolerance(row.precision, row.work, own)
            note += (f"; over the table's {tolerance(row.precision, row.work):.0e}: NumPy's own float32 step on these "
                     f"inputs is {own:.2e} from float64, so the bar is {CALIBRATED_FACTOR:g}x that")  # fmt: skip
            extra.update(numpy_float32_err=own, calibrated_tolerance=bar)
        return g_err, note, bool(g_err <= bar and u_err <= extra["update_tolerance"]), extra

    return Prepared(compile_for(mod, fn, row.mode, row.device, row.framework), check, WHAT[row.impl])


__all__ = ["ADAM", "STEPS", "prepare_seq", "update_check"]
