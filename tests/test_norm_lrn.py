"""Local response normalization (issue 24: AlexNet, GoogLeNet, ONNX's light_bvlc_alexnet / light_inception_v1) from
each source that has it to every target.

- torch's nn.LocalResponseNorm (odd and even sizes, NCHW and (B, C, L)) and ONNX's LRN (odd sizes run by ONNX
  Runtime; an even size, which ONNX Runtime 1.31 refuses, against ONNX's formula as its spec writes it) import and agree
  with the framework's own layer.
- A torch AlexNet-like net ported to torch, Keras, ONNX and Flax, each loaded by its own framework alone
  (`python -I`, nnparity not importable), agreeing with torch.
- Planted convention bugs, each caught: alpha not divided by size (TensorFlow's convention), an even window's extra
  channel on the wrong side (ONNX's for torch's and back).
- Keras has no LRN layer: the kind is declared absent in its importer.
"""

from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.model.compose import reference_forward
from tests.alone import run_alone
from verify.conftest import load_framework

B = 3
BAR = tolerance("float32")

TORCH_NET = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.lrn5 = nn.LocalResponseNorm(5, alpha=0.9, beta=0.6, k=1.5)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 7, 1)
        self.lrn4 = nn.LocalResponseNorm(4, alpha=1.1, beta=0.75, k=2.0)
        self.fc = nn.Linear(7, 3)

    def forward(self, x):
        x = self.pool(self.lrn5(torch.relu(self.conv1(x))))
        x = self.lrn4(self.conv2(x))
        return self.fc(x.mean((2, 3)))


torch.manual_seed(0)
model = Net().eval()
"""

LOADER = r"""
import importlib.util, json, sys
import numpy as np

def module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
    return m

x, want = np.load("x.npy"), np.load("want.npy")
import keras, onnxruntime as ort, torch
out = {}
with torch.no_grad():
    out["torch"] = module("p_torch/model.py", "p_torch").load()(torch.from_numpy(x)).numpy()
out["keras"] = np.asarray(keras.saving.load_model("p.keras", safe_mode=True)(x, training=False))
s = ort.InferenceSession("p.onnx", providers=["CPUExecutionProvider"])
out["onnx"] = s.run(None, {s.get_inputs()[0].name: x})[0]
fm, variables = module("p_flax/model.py", "p_flax").load()
out["flax"] = np.asarray(fm.apply(variables, x))
rel = {k: float(np.max(np.abs(v - want)) / np.max(np.abs(want))) for k, v in out.items()}
rel["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(rel))
"""


def _torch_lrn(size: int, rank: int, seed: int = 0):
    """(the imported description, x in torch's layout, torch's own output) of Conv -> LocalResponseNorm(size)."""
    torch = load_framework("torch")
    from impls.importers import torch_import

    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(3, 6, 2) if rank == 4 else torch.nn.Conv1d(3, 6, 2)
    net = torch.nn.Sequential(conv, torch.nn.LocalResponseNorm(size, alpha=0.9, beta=0.6, k=1.5)).eval().double()
    shape = (B, 3, 5, 4) if rank == 4 else (B, 3, 7)
    x = np.random.default_rng(seed).uniform(-1, 1, shape)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    return torch_import.from_module(net, shape, "net.py:net").model, x, want


def _rel(model, x_torch: np.ndarray, want: np.ndarray) -> float:
    """The description's reference against the source's output, both in torch's channels-first layout."""
    perm = (0, 2, 3, 1) if x_torch.ndim == 4 else (0, 2, 1)
    back = (0, 3, 1, 2) if x_torch.ndim == 4 else (0, 2, 1)
    return error_stats(np.transpose(reference_forward(model, np.transpose(x_torch, perm)), back), want).rel


@pytest.mark.parametrize("size", [2, 3, 4, 5])
@pytest.mark.parametrize("rank", [3, 4])
def test_torch_local_response_norm_imports_exactly(size, rank):
    model, x, want = _torch_lrn(size, rank)
    la = model.layers[-1]
    assert la.kind == "lrn" and la.options == {"size": size, "alpha": 0.9, "beta": 0.6, "bias": 1.5,
                                               "extra": "before" if size % 2 == 0 else "after"}  # fmt: skip
    assert _rel(model, x, want) <= tolerance("float64")


def _onnx_lrn(path: Path, size: int, rank: int = 4) -> Path:
    onnx = load_framework("onnx")
    helper, T = onnx.helper, onnx.TensorProto
    dims = ["N", 6, 4, 5][:rank]
    node = helper.make_node("LRN", ["x"], ["y"], name="/lrn/LRN", size=size, alpha=0.9, beta=0.6, bias=1.5)
    graph = helper.make_graph([node], "lrn", [helper.make_tensor_value_info("x", T.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", T.FLOAT, dims)])  # fmt: skip
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def _onnx_formula(x: np.ndarray, size: int, alpha=0.9, beta=0.6, bias=1.5) -> np.ndarray:
    """ONNX's LRN as its operator spec writes it: the channels max(0, c - floor((size - 1) / 2)) to
    min(C - 1, c + ceil((size - 1) / 2))."""
    x = x.astype(np.float64)
    C, out = x.shape[1], np.empty_like(x.astype(np.float64))
    for c in range(C):
        lo, hi = max(0, c - math.floor((size - 1) / 2)), min(C - 1, c + math.ceil((size - 1) / 2))
        out[:, c] = x[:, c] / (bias + alpha / size * np.sum(x[:, lo:hi + 1] ** 2, axis=1)) ** beta
    return out


@pytest.mark.parametrize("size", [3, 4, 5])
def test_onnx_lrn_imports_exactly(size, tmp_path):
    """Odd sizes against ONNX Runtime's own LRN; an even size (which ONNX Runtime's kernel refuses) against the spec's
    formula."""
    ort = load_framework("onnxruntime")
    from impls.importers import onnx_import

    path = _onnx_lrn(tmp_path / "lrn.onnx", size)
    model = onnx_import.load_file(path, None).model
    assert model.layers[0].kind == "lrn" and model.layers[0].options["extra"] == "after"
    x = np.random.default_rng(size).uniform(-1, 1, (B, 6, 4, 5)).astype(np.float32)
    want = _onnx_formula(x, size)
    if size % 2:
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        assert error_stats(got, want).rel <= BAR  # the formula is ONNX Runtime's
    assert _rel(model, x.astype(np.float64), want) <= tolerance("float64")


def test_keras_declares_lrn_absent():
    from impls.importers.keras_import import REGISTRY

    state, why = REGISTRY.coverage("lrn")
    assert state == "absent" and "no local response normalization layer" in why


# --------------------------------------------------------------------------- planted convention bugs


def test_a_planted_alpha_not_divided_by_size_is_caught(monkeypatch):
    """TensorFlow's tf.nn.local_response_normalization does not divide alpha by the size: the reference written so
    disagrees with torch's own layer."""
    import impls.primitives.numpy_impl as ref

    model, x, want = _torch_lrn(5, 4)
    assert _rel(model, x, want) <= tolerance("float64")
    right = ref.lrn
    monkeypatch.setattr(ref, "lrn", lambda x, size, alpha, beta, bias, before: right(x, size, alpha * size, beta, bias, before))
    assert _rel(model, x, want) > BAR


@pytest.mark.parametrize("source", ["torch", "onnx"])
def test_a_planted_even_window_on_the_wrong_side_is_caught(monkeypatch, source, tmp_path):
    """torch pads an even window's extra channel before c, ONNX after it: each swapped for the other is caught."""
    from impls.importers import onnx_import
    from impls.model.layers import lrn

    if source == "torch":
        model, x, want = _torch_lrn(4, 4)
    else:
        model = onnx_import.load_file(_onnx_lrn(tmp_path / "lrn.onnx", 4), None).model
        x = np.random.default_rng(4).uniform(-1, 1, (B, 6, 4, 5))
        want = _onnx_formula(x, 4)
    assert _rel(model, x, want) <= tolerance("float64")
    right = lrn.window
    monkeypatch.setattr(lrn, "window", lambda size, extra: right(size, "after" if extra == "before" else "before"))
    assert _rel(model, x, want) > BAR


# --------------------------------------------------------------------------- the ports, loaded alone


def test_torch_alexnet_lrn_ports_everywhere_and_loads_alone(tmp_path, capsys):
    torch = load_framework("torch")
    load_framework("keras"), load_framework("onnxruntime"), load_framework("flax")
    import runpy

    from nnparity import cli

    (tmp_path / "net.py").write_text(textwrap.dedent(TORCH_NET))
    spec = f"{tmp_path / 'net.py'}:model"
    net = runpy.run_path(str(tmp_path / "net.py"))["model"]
    x = np.random.default_rng(3).uniform(-1, 1, (B, 3, 8, 6)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want)
    cwd = Path.cwd()
    try:
        os.chdir(tmp_path)
        for target, path in (("torch", "p_torch"), ("keras", "p.keras"), ("onnx", "p.onnx"), ("flax", "p_flax")):
            argv = ["port", spec, "--to", target, "-o", path, "--input-shape", f"{B},3,8,6"]
            assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)
    src = (tmp_path / "p_torch" / "model.py").read_text()
    assert "nn.LocalResponseNorm(5, alpha=0.9, beta=0.6, k=1.5)" in src and ".flip(1)" not in src  # torch's own window
    got = run_alone(LOADER, tmp_path)
    assert set(got) == {"torch", "keras", "onnx", "flax"} and all(err <= BAR for err in got.values()), got


def test_onnx_window_into_torch_is_flipped_and_exact():
    """The description's ONNX window of an even size, written for torch: LocalResponseNorm on the reversed channels."""
    from impls.model import seeded, voices

    m = seeded.chain("w", (4, 5, 6), [("layer_scale", "ls", {}),
                                      ("lrn", "n", {"size": 4, "alpha": 0.9, "beta": 0.6, "bias": 1.5})],
                     seed=2, batch=B, boundary="channels_first")  # fmt: skip
    from impls.ports.torch_port import code as torch_code

    assert "self.n(x.flip(1)).flip(1)" in torch_code.generate(m).source
    x = np.random.default_rng(5).uniform(-1, 1, (B, 4, 5, 6))
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), reference_forward(m, x)).rel <= tolerance("float64")
