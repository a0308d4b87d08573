"""The issue's bar for BatchNorm: a model with BatchNorm takes one training step (Adam, the certificate's loss:
categorical cross-entropy on a softmax) in its SOURCE framework, built there directly (a keras.Model with
BatchNormalization(momentum=0.99, epsilon=1e-3); a torch module with BatchNorm1d's defaults eps=1e-5, momentum=0.1),
is imported, ported to the other framework with the conventions translated (momentum m <-> 1 - m, epsilon carried,
the variance convention stated), and steps there. The moving statistics after the step:
- the description's reference step (training.reference_step) reproduces the source's own, mean AND variance, at the
  float32 bar: the import carried momentum, epsilon and the variance convention;
- the port's moving_mean agrees with the source's at the float32 bar;
- the port's moving_var differs from the source's by exactly the variance convention's term: neither framework's
  built-in BatchNorm can update with the other's variance (Keras moves moving_variance by the biased batch variance
  s2, torch running_var by the unbiased n / (n - 1) s2), so the port is forward-exact and its step's moving_var is
  (1 - m) s2 / (n - 1) off (larger than the bar, asserted); with that term put back it agrees at the float32 bar.
  The Keras port says so in its notes (keras_port.batch_norm_notes), trainref compares it in the framework's own.
And the untranslated defaults differ by what the formulas say: torch's momentum=0.1 read as Keras' momentum moves
the mean by 0.8 (batch mean - moving mean) more; epsilon 1e-5 read as 1e-3 changes the inference output by
gamma (x - mean) (1/sqrt(var + 1e-5) - 1/sqrt(var + 1e-3)); the variance conventions' ratio is n / (n - 1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import assert_close, tolerance
from impls.model import training
from impls.model.compose import reference_forward, reference_train

keras_import = pytest.importorskip("impls.importers.keras_import")
keras_port = pytest.importorskip("impls.ports.keras_port")
torch_import = pytest.importorskip("impls.importers.torch_import")
torch_port = pytest.importorskip("impls.ports.torch_port")
keras = frameworks.load("keras")
torch = frameworks.load("torch")
tf = frameworks.load("tensorflow")
L = keras.layers
B, T, C, F = 4, 7, 3, 5  # conv1d kernel 3, valid: L' = 5, n = B * L' = 20 per channel
N = B * (T - 2)


def _x(seed=1):
    return np.random.default_rng(seed).uniform(-1.0, 1.5, (B, T, C))


def _targets(seed=2):
    t = np.zeros((B, 3))
    t[np.arange(B), np.random.default_rng(seed).integers(0, 3, B)] = 1.0
    return t


# --------------------------------------------------------------------------- the sources and their own steps


def keras_source():
    x = keras.Input((T, C))
    y = L.Conv1D(F, 3, name="conv")(x)
    y = L.BatchNormalization(momentum=0.99, epsilon=1e-3, name="bn")(y)
    y = L.GlobalAveragePooling1D(name="gap")(y)
    net = keras.Model(x, L.Dense(3, activation="softmax", name="probs")(y))
    g = np.random.default_rng(3)
    for la in net.layers:
        la.set_weights([g.uniform(0.5, 2.0 if "variance" in v.path else 1.5, v.shape) if v.path.split("/")[-1] in
                        ("gamma", "moving_variance") else g.uniform(-0.5, 0.5, v.shape) for v in la.weights])  # fmt: skip
    return net


def keras_own_step(net, x, t):
    """Keras' own step, written here with Keras alone: training=True, CategoricalCrossentropy, Adam(1e-3)."""
    opt = keras.optimizers.Adam(learning_rate=training.LR)
    with tf.GradientTape() as tape:
        loss = keras.losses.CategoricalCrossentropy()(t, net(x, training=True))
    opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
    bn = net.get_layer("bn")
    return np.asarray(bn.moving_mean), np.asarray(bn.moving_variance)


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(C, F, 3)
        self.bn = torch.nn.BatchNorm1d(F)  # eps=1e-5, momentum=0.1: the defaults
        self.pool = torch.nn.AdaptiveAvgPool1d(1)
        self.flat = torch.nn.Flatten()
        self.fc = torch.nn.Linear(F, 3)
        self.sm = torch.nn.Softmax(dim=-1)

    def forward(self, x):
        return self.sm(self.fc(self.flat(self.pool(self.bn(self.conv(x))))))


def torch_source():
    torch.manual_seed(0)
    net = TorchNet().double()
    g = np.random.default_rng(4)
    with torch.no_grad():
        net.bn.weight.copy_(torch.tensor(g.uniform(0.5, 1.5, F)))
        net.bn.bias.copy_(torch.tensor(g.uniform(-0.5, 0.5, F)))
        net.bn.running_mean.copy_(torch.tensor(g.uniform(-0.5, 0.5, F)))
        net.bn.running_var.copy_(torch.tensor(g.uniform(0.5, 2.0, F)))
    return net


def torch_own_step(net, x_ncw, t):
    """torch's own step: train mode, -sum(t log y) / B (the certificate's cross-entropy), torch.optim.Adam(1e-3)."""
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=training.LR)
    y = net(torch.tensor(x_ncw))
    loss = -(torch.tensor(t) * torch.log(y)).sum() / y.shape[0]
    opt.zero_grad()
    loss.backward()
    opt.step()
    return net.bn.running_mean.detach().numpy().copy(), net.bn.running_var.detach().numpy().copy()


def _batch_variance(model, x):
    """s2: the biased variance of the batch BatchNorm normalises by (the reference's training-mode input to it)."""
    outs, _ = reference_train(model, np.asarray(x, "float64"))
    i = model.layer_index("bn")
    a = outs[i - 1] if i else np.asarray(x)
    return a.reshape(-1, a.shape[-1]).var(axis=0), a.reshape(-1, a.shape[-1]).mean(axis=0)


# --------------------------------------------------------------------------- the bar


def test_keras_source_to_torch_port_keeps_the_moving_statistics():
    x, t = _x(), _targets()
    net = keras_source()
    model = keras_import.from_model(net, None, "keras_bn").model
    bn = model.layers[model.layer_index("bn")]
    assert (bn.options["momentum"], bn.options["epsilon"], bn.options["variance_update"]) == (0.99, 1e-3, "biased")
    mm0, mv0 = (np.asarray(bn.weights[k], "float64") for k in ("moving_mean", "moving_var"))
    own_mean, own_var = keras_own_step(net, x.astype("float32"), t.astype("float32"))
    # the description reproduces Keras' own step, variance included
    _, ref = training.reference_step(model, x, t, "keras")
    assert_close(ref[("bn", "moving_mean")], own_mean, "float32", what="reference moving_mean vs Keras' own")
    assert_close(ref[("bn", "moving_var")], own_var, "float32", what="reference moving_var vs Keras' own")
    # ported to torch: momentum 1 - 0.99 = 0.01, eps 1e-3 carried
    port, _ = torch_port.load_port(model, "float64")
    tbn = next(m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert tbn.momentum == pytest.approx(0.01) and tbn.eps == pytest.approx(1e-3)
    _, after = torch_port.train_step(model, x, t, "float64")
    assert_close(after[("bn", "moving_mean")], own_mean, "float32", what="torch port moving_mean vs Keras' own")
    s2, _ = _batch_variance(model, x)
    term = 0.01 * s2 / (N - 1)  # torch's running_var takes n / (n - 1) s2 where Keras takes s2
    gap = after[("bn", "moving_var")] - own_var
    assert np.max(np.abs(gap)) > 10 * tolerance("float32")  # the convention shows: the port states it
    # the gap, a difference of values ~1, is measured against their scale (the float32 bar on moving_var itself)
    assert np.max(np.abs(gap - term)) <= tolerance("float32") * np.max(np.abs(own_var))
    assert_close(after[("bn", "moving_var")] - term, own_var, "float32", what="torch moving_var, term put back")
    assert not np.allclose(own_var, mv0) and not np.allclose(own_mean, mm0)  # the step moved them


def test_torch_source_to_keras_port_keeps_the_moving_statistics():
    x, t = _x(5), _targets(6)
    net = torch_source()
    x_ncw = np.ascontiguousarray(np.swapaxes(x, 1, 2))
    model = torch_import.from_module(net, (B, C, T), "torch_bn").model
    bn = model.layers[model.layer_index("bn")]
    assert bn.options["momentum"] == pytest.approx(0.9) and bn.options["epsilon"] == pytest.approx(1e-5)
    assert bn.options["variance_update"] == "unbiased" and model.boundary == "channels_first"
    own_mean, own_var = torch_own_step(net, x_ncw, t)
    _, ref = training.reference_step(model, x, t, "torch")
    assert_close(ref[("bn", "moving_mean")], own_mean, "float32", what="reference moving_mean vs torch's own")
    assert_close(ref[("bn", "moving_var")], own_var, "float32", what="reference moving_var vs torch's own")
    # ported to Keras: momentum 1 - 0.1 = 0.9, eps 1e-5 carried; the variance convention stated in the notes
    kbn = keras_port.keras_model(model, "float64").get_layer("bn")
    assert kbn.momentum == pytest.approx(0.9) and kbn.epsilon == pytest.approx(1e-5)
    assert any("variance_update 'unbiased'" in n for n in keras_port.build(model, "float64").notes)
    _, after = keras_port.train_step(model, x, t, "float64")
    assert_close(after[("bn", "moving_mean")], own_mean, "float32", what="Keras port moving_mean vs torch's own")
    s2, _ = _batch_variance(model, x)
    term = 0.1 * s2 / (N - 1)
    gap = own_var - after[("bn", "moving_var")]
    assert np.max(np.abs(gap)) > 10 * tolerance("float32")
    assert np.max(np.abs(gap - term)) <= tolerance("float32") * np.max(np.abs(own_var))
    assert_close(after[("bn", "moving_var")] + term, own_var, "float32", what="Keras moving_var, term put back")


# --------------------------------------------------------------------------- untranslated, the numbers


def test_torch_momentum_read_as_keras_momentum_moves_the_mean_by_what_the_formula_says():
    """torch's momentum=0.1 is the new value's share; read as Keras' (the old value's) the moving mean after one step
    is 0.1 mm + 0.9 mu instead of 0.9 mm + 0.1 mu: off by 0.8 (mu - mm)."""
    x, t = _x(5), _targets(6)
    net = torch_source()
    model = torch_import.from_module(net, (B, C, T), "torch_bn").model
    i = model.layer_index("bn")
    mm0 = np.asarray(model.layers[i].weights["moving_mean"], "float64")
    own_mean, _ = torch_own_step(net, np.ascontiguousarray(np.swapaxes(x, 1, 2)), t)
    wrong = model.replace_layer(i, dataclasses.replace(model.layers[i], options={**model.layers[i].options, "momentum": 0.1}))
    _, after = keras_port.train_step(wrong, x, t, "float64")
    _, mu = _batch_variance(model, x)
    x_diff = after[("bn", "moving_mean")] - own_mean
    assert_close(x_diff, 0.8 * (mu - mm0), "float32", what="untranslated momentum: the moving mean's difference")
    assert np.max(np.abs(x_diff)) > 0.05  # here: about 0.8 |mu - mm|, nowhere near the bar


def test_epsilon_untranslated_changes_the_inference_output_by_the_formula():
    net = torch_source().eval()
    model = torch_import.from_module(net, (B, C, T), "torch_bn").model
    bn = model.sub(model.layer_index("bn"))  # the BatchNorm alone, fed (B, L, C) canonical maps
    w = {k: np.asarray(v, "float64") for k, v in bn.layers[0].weights.items()}
    x = np.random.default_rng(7).uniform(-1.0, 1.5, (B, T - 2, F))
    right = reference_forward(bn, x)
    wrong_model = bn.replace_layer(0, dataclasses.replace(bn.layers[0], options={**bn.layers[0].options, "epsilon": 1e-3}))
    wrong = keras_port.build(wrong_model, "float64").forward(x)
    formula = w["gamma"] * (x - w["moving_mean"]) * (1 / np.sqrt(w["moving_var"] + 1e-3) - 1 / np.sqrt(w["moving_var"] + 1e-5))
    assert_close(wrong - right, formula, "float64", what="eps 1e-3 for 1e-5")
    assert np.max(np.abs(formula)) > 1e-4


def test_the_variance_conventions_differ_by_n_over_n_minus_one():
    """torch's running_var update's share of the batch variance over Keras' is n / (n - 1) = 20 / 19 here."""
    x, t = _x(5), _targets(6)
    net = torch_source()
    model = torch_import.from_module(net, (B, C, T), "torch_bn").model
    rv0 = np.asarray(model.layers[model.layer_index("bn")].weights["moving_var"], "float64")
    _, own_var = torch_own_step(net, np.ascontiguousarray(np.swapaxes(x, 1, 2)), t)
    _, after = keras_port.train_step(model, x, t, "float64")
    torch_share = (own_var - 0.9 * rv0) / 0.1
    keras_share = (after[("bn", "moving_var")] - 0.9 * rv0) / 0.1
    ratio = torch_share / keras_share
    assert_close(ratio, np.full(F, N / (N - 1)), "float32", what="unbiased / biased batch variance")
    assert N / (N - 1) == pytest.approx(1.0526315789)
