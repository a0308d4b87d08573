"""The torch importer on graphs and issue 18's kinds, and the issue's bar end to end.

- A torch residual block written to a file (Conv2d -> BatchNorm2d -> ReLU -> Conv2d -> BatchNorm2d, + the input,
  ReLU, AdaptiveAvgPool2d(1), Flatten, Linear), given as `file.py:model` to `nnparity certify --no-bench
  --input-shape 3,C,H,W`, exits 0; `nnparity port ... --to keras` and `--to onnx` write ports that agree with the
  torch module at the float32 bar, each loaded back by its own framework in a fresh `python -I`.
- A Conv1d time-series classifier (Conv1d -> BatchNorm1d -> ReLU x3 -> mean over time -> Linear) imports, matches
  the module (float32 bar; float64 within 1e-10 with .double()), ports to torch and imports back to the same
  description.
- torch.add / torch.cat(dim=1) graphs, layout-only permutes, and what is refused (named)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.importers import UnsupportedLayer
from impls.model.compose import reference_forward, reference_outputs
from impls.ports import torch_port
from nnparity import cli
from tests.alone import run_alone
from verify.conftest import load_framework

torch = load_framework("torch")
nn = torch.nn
from impls.importers import torch_import

C, H, W = 4, 6, 5

RESIDUAL = """
import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, channels=4, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y)) + x
        y = torch.relu(y)
        return self.fc(self.flatten(self.pool(y)))


torch.manual_seed(0)
model = ResidualBlock()
with torch.no_grad():  # trained-looking statistics and affine weights (a fresh BatchNorm's are 0, 1, 1, 0)
    for bn in (model.bn1, model.bn2):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
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

def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b))) if a.shape == b.shape else float("inf")

def onnx_run(x):
    import onnxruntime as ort
    s = ort.InferenceSession("resnet.onnx", providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]

out = {}
x = np.random.default_rng(7).uniform(-1, 1, (5, C, H, W)).astype("float32")
import torch
with torch.no_grad():
    want = module("resnet.py", "resnet").model.eval()(torch.from_numpy(x)).numpy()
for name, run in (("keras", lambda: __import__("keras").saving.load_model("resnet.keras")(x, training=False)),
                  ("onnx", lambda: onnx_run(x))):
    try:
        out[name] = rel(run(), want)
    except Exception as e:
        out[name] = f"{type(e).__name__}: {e}"[:500]

out["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(out))
""".replace("C, H, W", f"{C}, {H}, {W}")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("user")
    (d / "resnet.py").write_text(textwrap.dedent(RESIDUAL))
    return d


def test_certify_the_torch_residual_block_passes(folder, capsys):
    status = cli.main(["certify", f"{folder / 'resnet.py'}:model", "--no-bench", "--input-shape", f"3,{C},{H},{W}",
                       "-o", str(folder / "cert")])  # fmt: skip
    cert = json.loads((folder / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert cert["verdict"] == "pass" and cert["first_diverging_layer"] is None
    torch_row = cert["training"]["voices"]["torch_nn"]
    assert torch_row["pass"] and {"bn1/moving_mean", "bn2/moving_var"} <= {w["tensor"] for w in torch_row["weights"]}
    assert "PASS" in capsys.readouterr().out


@pytest.mark.parametrize("to", ["keras", "onnx"])
def test_the_residual_block_ports(folder, to, capsys):
    load_framework("keras" if to == "keras" else "onnxruntime")
    cwd = Path.cwd()
    try:
        os.chdir(folder)
        argv = ["port", "resnet.py:model", "--input-shape", f"3,{C},{H},{W}", "--to", to, "-o", f"resnet.{to}"]
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)


def test_the_ports_load_with_their_own_frameworks_and_agree_with_the_torch_module(folder):
    missing = [f for f in ("resnet.keras", "resnet.onnx") if not (folder / f).exists()]
    assert not missing, f"the port commands did not write {missing} (see test_the_residual_block_ports)"
    got = run_alone(LOADER, folder, timeout=300)
    bar = tolerance("float32")
    assert all(isinstance(err, float) and err <= bar for err in got.values()), got


# --------------------------------------------------------------------------- a Conv1d time-series classifier


class TimeSeries(nn.Module):
    """Conv1d -> BatchNorm1d -> ReLU three times, the mean over time, a Linear."""

    def __init__(self, features=3, classes=4):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv1d(features, 6, 5, padding="same"), nn.BatchNorm1d(6)
        self.conv2, self.bn2 = nn.Conv1d(6, 5, 3, padding=1, dilation=1), nn.BatchNorm1d(5, eps=1e-3, momentum=0.2)
        self.conv3, self.bn3 = nn.Conv1d(5, 4, 3, stride=2), nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, classes)

    def forward(self, x):  # x: (B, features, T)
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = torch.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean(dim=-1))


def trained_looking(net: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(-0.6, 0.6, generator=g)
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.3, 0.3, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
    return net.eval()


SHAPE = (3, 3, 11)  # (B, features, T), torch's layout


def test_the_conv1d_classifier_imports_and_matches_the_module():
    net = trained_looking(TimeSeries(), 1)
    imported = torch_import.from_module(net, SHAPE, "ts.py:model")
    m = imported.model
    assert [la.kind for la in m.layers] == ["conv1d", "batch_norm", "activation"] * 3 + ["global_avg_pool", "dense"]
    assert m.input_shape == (11, 3) and m.boundary == "channels_first"
    bn2 = m.layers[4].options
    assert bn2["momentum"] == 0.8 and bn2["epsilon"] == 1e-3 and bn2["variance_update"] == "unbiased"
    assert m.layers[0].options["padding"] == [2, 2] and m.layers[6].options["strides"] == 2
    x = np.random.default_rng(2).uniform(-1, 1, (3, 11, 3))  # canonical (B, T, features)
    with torch.no_grad():
        own = net(torch.from_numpy(x.transpose(0, 2, 1).astype("float32").copy())).numpy()
    ref = reference_forward(m.astype("float64"), x)
    assert_close(own, ref, "float32", what="the torch module vs the reference")
    assert_close(imported.forward(x.astype("float32")), ref, "float32", what="imported.forward")
    for i, (a, b) in enumerate(zip(imported.layer_outputs(x.astype("float32")), reference_outputs(m.astype("float64"), x),
                                   strict=True)):  # fmt: skip
        assert_close(a, b, "float32", what=f"layer {i} {m.layers[i].name}")
    double = torch_import.from_module(trained_looking(TimeSeries(), 1).double(), SHAPE, "ts.py:model")
    got = double.forward(x)
    assert got.dtype == np.float64 and error_stats(got, reference_forward(double.model, x)).rel <= 1e-10


def test_the_conv1d_classifier_ports_to_torch_and_back(tmp_path):
    net = trained_looking(TimeSeries(), 3)
    m = torch_import.from_module(net, SHAPE, "ts.py:model").model
    torch_port.write(m, tmp_path / "port")
    spec = __import__("importlib.util").util.spec_from_file_location("ts_port", tmp_path / "port" / "model.py")
    mod = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ported = mod.load()
    x = torch.from_numpy(np.random.default_rng(4).uniform(-1, 1, SHAPE).astype("float32"))
    with torch.no_grad():
        assert_close(ported(x).numpy(), net(x).numpy(), "float32", what="the port takes (B, C, T) as the source")
    back = torch_import.from_module(ported, SHAPE, "port").model
    assert [(la.kind, dict(la.options)) for la in back.layers] == [(la.kind, dict(la.options)) for la in m.layers]
    for a, b in zip(back.layers, m.layers, strict=True):
        assert set(a.weights) == set(b.weights)
        for k in a.weights:
            np.testing.assert_array_equal(a.weights[k], b.weights[k])


# --------------------------------------------------------------------------- graphs and layouts


class Branches(nn.Module):
    """torch.add of two paths, torch.cat on the channels, a LayerNorm over the channels by permutes, a flatten of an
    NCW map before a Linear."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 3, 3, padding=1)
        self.b = nn.Conv2d(2, 3, 1)
        self.ln = nn.LayerNorm(6)
        self.pool = nn.AdaptiveMaxPool2d((1, 1))
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        s = torch.add(self.a(x), self.b(x))
        y = torch.cat([s, torch.tanh(s)], dim=1)
        y = self.ln(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.fc(self.pool(y).view(y.size(0), -1))


class Sequence1d(nn.Module):
    """A (B, T, F) sequence permuted into a Conv1d's (B, F, T), flattened in torch's (c, l) order."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.conv = nn.Conv1d(4, 2, 2)
        self.fc = nn.Linear(2 * 4, 3)

    def forward(self, x):
        x = self.proj(x).transpose(1, 2)
        return self.fc(torch.flatten(torch.sigmoid(self.conv(x)), 1))


@pytest.mark.parametrize(("net", "shape", "kinds"), [
    (Branches(), (3, 2, 5, 4), ["conv2d", "conv2d", "add", "activation", "concatenate", "layer_norm", "global_max_pool",
                                "dense"]),
    (Sequence1d(), (3, 5, 3), ["dense", "conv1d", "activation", "flatten", "dense"]),
])  # fmt: skip
def test_graphs_and_layout_permutes_import_exactly(net, shape, kinds):
    net = trained_looking(net, 5)
    imported = torch_import.from_module(net, shape, "g.py:model")
    m = imported.model
    assert [la.kind for la in m.layers] == kinds
    x = np.random.default_rng(6).uniform(-1, 1, (3, *m.input_shape))
    ref = reference_forward(m.astype("float64"), x)
    assert_close(imported.forward(x.astype("float32")), ref, "float32")
    built = torch_port.build(m, "float32")
    assert_close(built.forward(x.astype("float32")), ref, "float32", what="the torch port of the import")
    if isinstance(net, Branches):
        assert m.layers[2].inputs == ("a", "b") and m.layers[4].options == {"axis": -1}
        assert m.layers[4].inputs == ("add", "tanh")


class _Body(nn.Module):
    def __init__(self, body, fn):
        super().__init__()
        self.body, self.fn = body, fn

    def forward(self, x):
        return self.body(x) if self.fn is None else self.fn(self, x)


@pytest.mark.parametrize(("body", "fn", "shape", "node", "words"), [
    (nn.Conv1d(3, 2, 2), lambda s, x: s.body(x).reshape(x.shape[0], 4, -1), (3, 3, 5), "reshape", ["NCW", "permute"]),
    (nn.Sequential(nn.Conv1d(3, 4, 2), nn.Linear(4, 4)), None, (3, 3, 5), "body_1", ["length", "NCW"]),
    (nn.Conv1d(3, 2, 2, padding_mode="circular", padding=1), lambda s, x: s.body(x), (3, 3, 5), "body", ["circular"]),
    (nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(4)), None, (3, 4, 3), "body_1", ["sequence", "permute"]),
    (nn.AdaptiveMaxPool2d(2), lambda s, x: s.body(x).flatten(1), (3, 2, 4, 4), "body", ["output_size=2"]),  # avg: issue 24
    (nn.AdaptiveMaxPool2d(1), lambda s, x: s.body(x) * 2.0, (3, 2, 4, 4), "body", ["not flattened"]),
    (nn.Conv2d(2, 2, 1), lambda s, x: s.body(x).mean(dim=(2, 3), keepdim=True), (3, 2, 4, 4), "mean", ["keepdim=True"]),
    (nn.Conv2d(2, 2, 1), lambda s, x: 1.0 / s.body(x), (3, 2, 4, 4), "truediv", ["constant"]),  # x + 1.0: issue 24's rescale
])  # fmt: skip
def test_what_the_description_lacks_is_refused_naming_the_node(body, fn, shape, node, words):
    with pytest.raises(UnsupportedLayer) as e:
        torch_import.from_module(_Body(body, fn), shape, "net.py:model")
    msg = str(e.value)
    assert msg.startswith("net.py:model: ") and f"node {node!r}" in msg, msg
    for w in words:
        assert w in msg, msg
