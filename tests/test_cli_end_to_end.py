"""Issue 16's bars, end to end, as a user runs them: models built outside nnparity's own code, through the
`nnparity` command exactly as it is specified, and every port loaded back by its own framework's loader in a fresh
interpreter that never imports nnparity.

- keras.io's "simple MNIST convnet" (Conv2D 32 -> MaxPool -> Conv2D 64 -> MaxPool -> Flatten -> Dropout -> Dense
  softmax), randomly initialised and saved as .keras: `nnparity certify` exits 0, and `nnparity port --to torch`,
  `--to onnx` and `--to flax` each agree with the Keras model at the float32 bar on the same input;
- the seed GRU model as a torch module in file.py:NAME (the `out[:, -1]` pattern) ports to Keras and ONNX the same way;
- issue 18's time-series classifier as a torch module (Conv1d -> BatchNorm1d -> ReLU twice, a mean over time, Linear)
  certifies given its own NCW --input-shape, and its Keras and ONNX ports take that NCW input and agree.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from impls.contract.tolerance import tolerance
from nnparity import cli
from tests.alone import run_alone
from verify.conftest import load_framework


def mnist_convnet():
    """keras.io's "Simple MNIST convnet", as that page writes it (Keras' own random initialisation)."""
    keras = load_framework("keras")
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        keras.layers.MaxPooling2D(pool_size=(2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip


SEED_GRU = """
import torch
from torch import nn


class SeedGRU(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru1 = nn.GRU(64, 128, batch_first=True)
        self.gru2 = nn.GRU(128, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        out, _ = self.gru1(x)
        out, h = self.gru2(out)
        return torch.softmax(self.fc(out[:, -1]), dim=-1)


torch.manual_seed(0)
model = SeedGRU()
"""

TS_NET = """
import torch
from torch import nn


class TimeSeries(nn.Module):  # issue 18's time-series classifier: NCW input, C=4 channels, L=12 steps
    def __init__(self):
        super().__init__()
        self.c1, self.b1 = nn.Conv1d(4, 6, 3, padding=1), nn.BatchNorm1d(6)
        self.c2, self.b2 = nn.Conv1d(6, 5, 3, padding=1), nn.BatchNorm1d(5)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = torch.relu(self.b2(self.c2(x)))
        return self.fc(x.mean(dim=2))


torch.manual_seed(0)
model = TimeSeries()
for b in (model.b1, model.b2):  # trained-looking statistics, not the initial zeros and ones
    b.running_mean.uniform_(-0.3, 0.3)
    b.running_var.uniform_(0.5, 2.0)
"""

# Runs in a fresh interpreter (-I: no PYTHONPATH, no user site) from a folder of its own: each port through its own
# framework's loader only; the sources through theirs; prints the relative errors and what nnparity left loaded.
LOADER = r"""
import importlib.util, json, os, sys
import numpy as np

def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m

def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b))) if a.shape == b.shape else float("inf")

out = {}
x = np.random.default_rng(7).uniform(0, 1, (5, 28, 28, 1)).astype("float32")
import keras, onnxruntime as ort, torch
want = np.asarray(keras.saving.load_model("mnist.keras")(x, training=False))
out["mnist torch"] = rel(module("mnist_torch/model.py", "mnist_torch").load()(torch.from_numpy(x)).detach().numpy(), want)
s = ort.InferenceSession("mnist.onnx", providers=["CPUExecutionProvider"])
out["mnist onnx"] = rel(s.run(None, {s.get_inputs()[0].name: x})[0], want)
flax_module, variables = module("mnist_flax/model.py", "mnist_flax").load()
out["mnist flax"] = rel(flax_module.apply(variables, x), want)
xs = np.random.default_rng(8).uniform(-1, 1, (4, 100, 64)).astype("float32")
with torch.no_grad():
    want = module("gru_net.py", "gru_net").model(torch.from_numpy(xs)).numpy()
out["gru keras"] = rel(keras.saving.load_model("gru.keras")(xs, training=False), want)
s = ort.InferenceSession("gru.onnx", providers=["CPUExecutionProvider"])
out["gru onnx"] = rel(s.run(None, {s.get_inputs()[0].name: xs})[0], want)
xt = np.random.default_rng(9).uniform(-1, 1, (4, 4, 12)).astype("float32")  # (B, C, L), as the torch module takes it
with torch.no_grad():
    want = module("ts_net.py", "ts_net").model.eval()(torch.from_numpy(xt)).numpy()
out["ts keras"] = rel(keras.saving.load_model("ts.keras")(xt, training=False), want)
s = ort.InferenceSession("ts.onnx", providers=["CPUExecutionProvider"])
out["ts onnx"] = rel(s.run(None, {s.get_inputs()[0].name: xt})[0], want)
out["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    load_framework("keras"), load_framework("torch"), load_framework("flax"), load_framework("onnxruntime")
    d = tmp_path_factory.mktemp("user")
    mnist_convnet().save(d / "mnist.keras")
    (d / "gru_net.py").write_text(textwrap.dedent(SEED_GRU))
    (d / "ts_net.py").write_text(textwrap.dedent(TS_NET))
    return d


def test_certify_the_mnist_convnet_passes(folder, capsys):
    status = cli.main(["certify", str(folder / "mnist.keras"), "--no-bench", "-o", str(folder / "cert")])
    cert = json.loads((folder / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert cert["verdict"] == "pass" and cert["first_diverging_layer"] is None
    assert "PASS" in capsys.readouterr().out


def test_certify_a_torch_conv1d_model_given_its_own_ncw_input_shape(folder, capsys):
    """--input-shape is in the source's layout: (B, C, L) for a torch Conv1d model, C != L."""
    status = cli.main(["certify", f"{folder / 'ts_net.py'}:model", "--input-shape", "3,4,12", "--no-bench",
                       "-o", str(folder / "ts_cert")])  # fmt: skip
    cert = json.loads((folder / "ts_cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert [la["kind"] for la in cert["model"]["layers"]][:2] == ["conv1d", "batch_norm"]
    assert cert["inputs"]["shape"] == [3, 12, 4]  # canonical (B, L, C)


def test_ports_load_with_their_own_frameworks_and_agree_with_the_sources(folder, capsys):
    commands = [["port", "mnist.keras", "--to", "torch", "-o", "mnist_torch"],
                ["port", "mnist.keras", "--to", "onnx", "-o", "mnist.onnx"],
                ["port", "mnist.keras", "--to", "flax", "-o", "mnist_flax"],
                ["port", "gru_net.py:model", "--input-shape", "3,100,64", "--to", "keras", "-o", "gru.keras"],
                ["port", "gru_net.py:model", "--input-shape", "3,100,64", "--to", "onnx", "-o", "gru.onnx"],
                ["port", "ts_net.py:model", "--input-shape", "3,4,12", "--to", "keras", "-o", "ts.keras"],
                ["port", "ts_net.py:model", "--input-shape", "3,4,12", "--to", "onnx", "-o", "ts.onnx"]]  # fmt: skip
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        for argv in commands:
            assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, folder, timeout=300)
    bar = tolerance("float32")
    assert all(err <= bar for err in got.values()), got
