"""The seed models' converters through the frameworks' own models, both ways, on weights and gradients.

A torch.nn model (impls.builtin.torch_models) and a keras.Sequential (impls.builtin.keras_builtin's builders) each start
from their framework's own initialisation (Keras' zero biases replaced by distinct values), are read back
to canonical, and must compute the same in NumPy and in the other framework; the gradients of the training
loss (Keras' clipped categorical cross-entropy of the probabilities), in each framework's own layout, read
back to numpy_train's hand-written ones, and those converted forward equal them. The CNN's feature map
entering Flatten is 2 x 1 x 4, not square, so the flatten-row permutation is exercised with h != w.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.models import cnn_feature_shape
from impls.contract.spec import random_array
from impls.model import seed as seed_models
from impls.train import numpy_train
from verify.conftest import load, load_framework
from verify.headroom import check

GRU = {"input_size": 5, "units": (4, 3), "classes": 6}
CNN = {"image": (14, 12, 2), "filters": (3, 4), "dense_units": 5, "classes": 6}
FEATURES = cnn_feature_shape(CNN["image"], CNN["filters"])
X = {"gru": random_array((3, 7, 5), 1, low=-2.0, high=2.0), "cnn": random_array((3, *CNN["image"]), 2, low=0.0, high=1.0)}
ONEHOT = np.eye(6)[[4, 0, 2]]
MODELS = ("gru", "cnn")


def same(got, want, impl: str, what: str) -> None:
    check(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64), "float64", impl, what=what)


def leaves(params) -> list[np.ndarray]:
    return [np.asarray(a) for a in numpy_train.leaves(params)]


def _torch_model(model: str):
    torch, tb = load_framework("torch"), load("torch_nn")
    torch.manual_seed(3)
    if model == "gru":
        return tb.SeedGRU(GRU["input_size"], GRU["units"], GRU["classes"], dtype=torch.float64)
    return tb.SeedCNN(CNN["image"][2], CNN["filters"], int(np.prod(FEATURES)), CNN["dense_units"], CNN["classes"],
                      dtype=torch.float64)  # fmt: skip


def _keras_model(model: str):
    kb = load("keras")
    net = kb.build_seed_gru(**GRU, dtype="float64", steps=None) if model == "gru" else kb.build_seed_cnn(**CNN, dtype="float64")
    g = np.random.default_rng(4)
    net.set_weights([w if w.ndim > 1 else g.uniform(-0.5, 0.5, w.shape) for w in net.get_weights()])  # distinct biases
    return net


def _from_torch(model: str, state: dict):
    return convert.seed_gru_from_torch(state) if model == "gru" else convert.seed_cnn_from_torch(state, FEATURES)


def _to_torch(model: str, params) -> dict:
    return convert.seed_gru_to_torch(params) if model == "gru" else convert.seed_cnn_to_torch(params, FEATURES)


def _from_keras(model: str, arrays: list):
    return convert.seed_gru_from_keras(arrays) if model == "gru" else convert.seed_cnn_from_keras(arrays)


def _to_keras(model: str, params) -> list:
    return convert.seed_gru_to_keras(params) if model == "gru" else convert.seed_cnn_to_keras(params)


def _numpy_forward(model: str, params):
    return seed_models.reference_model(params)(X[model])


def _numpy_grads(model: str, params):
    fn = numpy_train.seed_gru_loss_and_grads if model == "gru" else numpy_train.seed_cnn_loss_and_grads
    return fn(params, X[model], ONEHOT)


@pytest.mark.parametrize("model", MODELS)
def test_torch_model_read_back_computes_the_same_in_numpy_and_keras(model):
    torch = load_framework("torch")
    net = _torch_model(model)
    want = net(torch.from_numpy(X[model])).detach().numpy()
    p = _from_torch(model, {k: v.detach().numpy() for k, v in net.state_dict().items()})
    same(_numpy_forward(model, p), want, "torch_nn", f"torch seed {model} -> canonical -> NumPy")
    k = _keras_model(model)
    k.set_weights(_to_keras(model, p))
    same(k(X[model], training=False), want, "keras", f"torch seed {model} -> canonical -> keras.Sequential")


@pytest.mark.parametrize("model", MODELS)
def test_keras_model_read_back_computes_the_same_in_numpy_and_torch(model):
    torch, tb = load_framework("torch"), load("torch_nn")
    net = _keras_model(model)
    want = np.asarray(net(X[model], training=False))
    own = [np.asarray(w) for w in net.get_weights()]
    p = _from_keras(model, own)
    same(_numpy_forward(model, p), want, "keras", f"keras seed {model} -> canonical -> NumPy")
    cls = tb.SeedGRU if model == "gru" else tb.SeedCNN
    kw = {} if model == "gru" else {"image": CNN["image"][:2]}
    tnet = cls.from_params(p, "float64", "cpu", **kw)
    same(tnet(torch.from_numpy(X[model])).detach().numpy(), want, "torch_nn", f"keras seed {model} -> canonical -> torch")
    for a, b in zip(_to_keras(model, p), own):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("model", MODELS)
def test_torch_model_gradients_read_back_both_ways(model):
    torch, tm = load_framework("torch"), load("torch_nn")
    net = _torch_model(model)
    probs = net(torch.from_numpy(X[model]))
    torch.mean(tm.keras_categorical_crossentropy(torch.from_numpy(ONEHOT), probs)).backward()
    grads = {k: p.grad.numpy() for k, p in net.named_parameters()}
    p = _from_torch(model, {k: v.detach().numpy() for k, v in net.state_dict().items()})
    _, g = _numpy_grads(model, p)
    for i, (a, b) in enumerate(zip(leaves(_from_torch(model, grads)), leaves(g))):
        same(a, b, "torch_nn", f"torch seed {model} gradient -> canonical, array {i}")
    for name, a in _to_torch(model, g).items():
        same(a, grads[name], "torch_nn", f"reference gradient -> torch seed {model} {name}")


@pytest.mark.parametrize("model", MODELS)
def test_keras_model_gradients_read_back_both_ways(model):
    tf, keras = load_framework("tensorflow"), load_framework("keras")
    net = _keras_model(model)
    loss_fn = keras.losses.CategoricalCrossentropy(dtype="float64")  # its default computes in float32
    with tf.GradientTape() as tape:
        loss = loss_fn(ONEHOT, net(X[model], training=True))
    grads = [np.asarray(a) for a in tape.gradient(loss, net.trainable_variables)]
    p = _from_keras(model, [np.asarray(w) for w in net.get_weights()])
    numpy_loss, g = _numpy_grads(model, p)
    same(float(loss), float(numpy_loss), "keras", f"keras seed {model} loss")
    for i, (a, b) in enumerate(zip(leaves(_from_keras(model, grads)), leaves(g))):
        same(a, b, "keras", f"keras seed {model} gradient -> canonical, array {i}")
    for i, (a, b) in enumerate(zip(_to_keras(model, g), grads)):
        same(a, b, "keras", f"reference gradient -> keras seed {model}, array {i}")
