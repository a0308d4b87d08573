"""The torch port's per-channel rescale (ChannelRescale) keeps its constants as written: a float32 port (weights.pt
float32, as every zoo port is) run `.double()` computes x * scale + offset with the float64 constants, not their
float32 roundings (keras EfficientNetB0's Normalization, scale 1 / sqrt(variance), made the written torch port's
float64 run 3.2e-08 off the Keras source's, where the Flax port, whose constants are in its code, was 1.5e-15 off).
The float32 port still computes in float32, and the torch_nn voice builds in both dtypes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from impls import frameworks
from impls.model import voices
from impls.model.compose import reference_forward
from impls.model.description import Layer, Model
from impls.ports import torch_port

torch = frameworks.load("torch")

SCALE = [1 / 0.229, 1 / 0.7, 1 / 3.0]  # none a float32 number
OFFSET = [-0.485 / 0.229, 0.1, -1 / 7]


def _model() -> Model:
    g = np.random.default_rng(3)
    conv = Layer("conv2d", "conv", {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid"},
                 {"kernel": g.standard_normal((3, 3, 3, 4)).astype(np.float32),
                  "bias": g.uniform(-0.5, 0.5, 4).astype(np.float32)})  # fmt: skip
    return Model("stem", (6, 5, 3), (Layer("rescale", "norm", {"scale": SCALE, "offset": OFFSET}), conv),
                 source="keras")  # fmt: skip


def _x() -> np.ndarray:
    return np.random.default_rng(4).uniform(-1, 1, (3, 6, 5, 3)).astype(np.float32)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _written(tmp_path):
    model = _model()
    model.check(3)
    torch_port.write(model, tmp_path)
    spec = importlib.util.spec_from_file_location("written_rescale_port", tmp_path / "model.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return model, m.load()


def test_a_float32_port_run_in_float64_computes_the_constants_as_written(tmp_path):
    model, net = _written(tmp_path)
    x = _x()
    want64 = reference_forward(model.astype("float64"), x.astype(np.float64))
    with torch.no_grad():
        y32 = net(torch.from_numpy(x)).numpy()
        y64 = net.double()(torch.from_numpy(x).double()).numpy()
    assert y32.dtype == np.float32 and y64.dtype == np.float64
    assert _rel(y32, want64) < 1e-6  # float32 computes in float32
    assert _rel(y64, want64) < 1e-14, _rel(y64, want64)  # old code: the constants' float32 rounding, ~3e-8


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_torch_nn_voice_agrees_in_each_dtype(dtype):
    model = _model().astype(dtype)
    x = _x().astype(dtype)
    got = voices.build("torch_nn", model, dtype).forward(x)
    assert got.dtype == np.dtype(dtype)
    assert _rel(got, reference_forward(_model().astype("float64"), x.astype(np.float64))) < (
        1e-6 if dtype == "float32" else 1e-14)  # fmt: skip
