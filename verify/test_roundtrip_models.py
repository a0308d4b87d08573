"""Models built in each framework from its own initialisation, read through the importers and written through the
ports, both ways, on weights and gradients: the general path that replaced the seed models' own converters.

A torch.nn model (the seed models as a user writes them in torch: images NCHW) and a keras.Sequential (the seed's own
section-4 code, impls.builtin.keras_builtin.build_seed_*, Keras' zero biases replaced by distinct values) are imported (impls/importers/), and the description
must compute what the source computes in NumPy and in the other framework's port; the gradients of the training loss
(Keras' clipped categorical cross-entropy of the probabilities), in each framework's own layout, read back to the
reference's, and the reference's written forward into that layout equal them. The CNN's feature map entering Flatten
is 2 x 1 x 4, not square, so the flatten-row permutation is exercised with h != w.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from impls import convert
from impls.contract.models import cnn_feature_shape
from impls.contract.spec import random_array
from impls.model.compose import reference_forward, reference_vjp
from impls.train import numpy_train
from verify.conftest import load, load_framework
from verify.headroom import check

GRU = {"input_size": 5, "units": (4, 3), "classes": 6}
CNN = {"image": (14, 12, 2), "filters": (3, 4), "dense_units": 5, "classes": 6}
FEATURES = cnn_feature_shape(CNN["image"], CNN["filters"])
X = {"gru": random_array((3, 7, 5), 1, low=-2.0, high=2.0), "cnn": random_array((3, *CNN["image"]), 2, low=0.0, high=1.0)}
X_TORCH = {"gru": X["gru"], "cnn": convert.nhwc_to_nchw(X["cnn"])}  # torch's own layout of the same inputs
ONEHOT = np.eye(6)[[4, 0, 2]]
MODELS = ("gru", "cnn")


def same(got, want, impl: str, what: str) -> None:
    check(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), "float64", impl, what=what)


def _torch_model(model: str):
    torch, tb = load_framework("torch"), load("torch_nn")
    nn = torch.nn
    torch.manual_seed(3)
    if model == "gru":
        return tb.SeedGRU(GRU["input_size"], GRU["units"], GRU["classes"], dtype=torch.float64)
    f, k = CNN["filters"], 3
    return nn.Sequential(
        nn.Conv2d(CNN["image"][2], f[0], k), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(f[0], f[1], k), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(int(np.prod(FEATURES)), CNN["dense_units"]), nn.ReLU(),
        nn.Linear(CNN["dense_units"], CNN["classes"]), nn.Softmax(dim=-1),
    ).to(torch.float64)  # fmt: skip


def _keras_model(model: str):
    kb = load("keras")
    net = kb.build_seed_gru(**GRU, dtype="float64", steps=None) if model == "gru" else kb.build_seed_cnn(**CNN, dtype="float64")
    g = np.random.default_rng(4)
    net.set_weights([w if w.ndim > 1 else g.uniform(-0.5, 0.5, w.shape) for w in net.get_weights()])  # distinct biases
    return net


def _import_torch(model: str, net):
    from impls.importers import torch_import

    return torch_import.from_module(net, X_TORCH[model].shape, f"torch seed {model}").model


def _import_keras(model: str, net):
    from impls.importers import keras_import

    return keras_import.from_model(net, (3, *X[model].shape[1:]), f"keras seed {model}").model


def _reference_grads(description, x: np.ndarray) -> tuple[float, dict]:
    """The training loss (Keras' clipped cross-entropy of the probabilities) and its gradients, by the reference."""
    loss, dp = numpy_train.keras_categorical_crossentropy(reference_forward(description, x), ONEHOT)
    return float(loss), reference_vjp(description, x, dp)[1]


@pytest.mark.parametrize("model", MODELS)
def test_torch_model_read_back_computes_the_same_in_numpy_and_keras(model):
    torch = load_framework("torch")
    from impls.ports import keras_port

    net = _torch_model(model)
    want = net(torch.from_numpy(X_TORCH[model])).detach().numpy()
    description = _import_torch(model, net)
    same(reference_forward(description, X[model]), want, "torch_nn", f"torch seed {model} -> description -> NumPy")
    k = keras_port.keras_model(description, "float64")  # takes torch's layout: the port keeps the source's boundary
    same(k(X_TORCH[model], training=False), want, "keras", f"torch seed {model} -> description -> Keras port")


@pytest.mark.parametrize("model", MODELS)
def test_keras_model_read_back_computes_the_same_in_numpy_and_torch(model):
    torch = load_framework("torch")
    from impls.ports import keras_port, torch_port

    net = _keras_model(model)
    want = np.asarray(net(X[model], training=False))
    description = _import_keras(model, net)
    same(reference_forward(description, X[model]), want, "keras", f"keras seed {model} -> description -> NumPy")
    tnet, _ = torch_port.load_port(description, "float64")
    same(tnet(torch.from_numpy(X[model])).detach().numpy(), want, "torch_nn", f"keras seed {model} -> description -> torch port")
    for a, b in zip(keras_port.keras_model(description, "float64").get_weights(), net.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # Keras -> canonical -> Keras is exact


@pytest.mark.parametrize("model", MODELS)
def test_torch_model_gradients_read_back_both_ways(model):
    torch, tm = load_framework("torch"), load("torch_nn")
    from impls.ports.torch_port import code as torch_code

    net = _torch_model(model)
    probs = net(torch.from_numpy(X_TORCH[model]))
    torch.mean(tm.keras_categorical_crossentropy(torch.from_numpy(ONEHOT), probs)).backward()
    grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    description = _import_torch(model, net)
    _, want = _reference_grads(description, X[model])
    holder = copy.deepcopy(net)  # the same module holding its gradients: the importer's converters read them back
    holder.load_state_dict({k: torch.from_numpy(g) for k, g in grads.items()})
    for key, g in _import_torch(model, holder).parameters().items():
        same(g, want[key], "torch_nn", f"torch seed {model} gradient -> canonical {key}")
    written = torch_code.generate(description.with_parameters(want)).state  # the reference's, in the port's layout
    ported = torch_code.generate(description).state
    assert len(ported) == len(grads)
    for (name, a), (_, w) in zip(sorted(written.items()), sorted(ported.items()), strict=True):
        original = next(k for k, v in net.state_dict().items() if np.array_equal(v.numpy(), w))
        same(a, grads[original], "torch_nn", f"reference gradient -> torch seed {model} {original}")


@pytest.mark.parametrize("model", MODELS)
def test_keras_model_gradients_read_back_both_ways(model):
    tf, keras = load_framework("tensorflow"), load_framework("keras")
    from impls.ports import keras_port

    net = _keras_model(model)
    loss_fn = keras.losses.CategoricalCrossentropy(dtype="float64")  # its default computes in float32
    with tf.GradientTape() as tape:
        loss = loss_fn(ONEHOT, net(X[model], training=True))
    grads = [np.asarray(a) for a in tape.gradient(loss, net.trainable_variables)]
    description = _import_keras(model, net)
    numpy_loss, want = _reference_grads(description, X[model])
    same(float(loss), numpy_loss, "keras", f"keras seed {model} loss")
    holder = keras.models.clone_model(net)
    holder.set_weights(grads)
    for key, g in _import_keras(model, holder).parameters().items():
        same(g, want[key], "keras", f"keras seed {model} gradient -> canonical {key}")
    written = keras_port.keras_model(description.with_parameters(want), "float64").get_weights()
    for i, (a, b) in enumerate(zip(written, grads, strict=True)):
        same(a, b, "keras", f"reference gradient -> keras seed {model}, array {i}")
