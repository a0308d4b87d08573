"""ConvNeXt's normalization constructs (issue 24): torchvision's LayerNorm2d (permute to NHWC, F.layer_norm over the
channels, permute back) and CNBlock (a 7x7 depthwise Conv2d, Permute([0, 2, 3, 1]), nn.LayerNorm(C), nn.Linear on the
last axis of the channels-last map, GELU, nn.Linear, Permute([0, 3, 1, 2]), the layer scale, StochasticDepth).

- Each imports from torch and agrees with torch's own module, layer by layer: the permutes are no layers, the norms
  layer_norm over the channels, the Linears dense on a rank-4 map.
- A small ConvNeXt (stem, LayerNorm2d, two CNBlocks, the downsampling LayerNorm2d + strided Conv2d, pool, head) ported
  to torch, Keras, ONNX and Flax, each loaded by its own framework alone, agreeing with torch.
- Planted: the torch port's LayerNorm over the last axis of the NCHW map (its width, not its channels) is caught.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.model.compose import reference_forward, reference_outputs
from tests.alone import run_alone
from verify.conftest import load_framework

B = 3
BAR = tolerance("float32")

NET = """
import torch
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 2, stride=2), LayerNorm2d(8, eps=1e-6))
        self.blocks = nn.Sequential(CNBlock(8, 0.5, 0.1), CNBlock(8, 0.25, 0.2))
        self.down = nn.Sequential(LayerNorm2d(8, eps=1e-6), nn.Conv2d(8, 12, 2, stride=2))
        self.block = CNBlock(12, 1e-6, 0.0)
        self.head = nn.Linear(12, 4)

    def forward(self, x):
        x = self.block(self.down(self.blocks(self.stem(x))))
        return self.head(x.mean((2, 3)))


torch.manual_seed(0)
model = Net().eval()
with torch.no_grad():  # trained-looking affine weights and layer scales: not the fresh ones and zeros
    for name, p in model.named_parameters():
        if "layer_scale" in name or name.endswith(("1.weight", "1.bias", "norm.weight", "norm.bias")) or p.dim() == 1:
            p.copy_(torch.empty_like(p).uniform_(0.5, 1.5) if "weight" in name or "scale" in name
                    else torch.empty_like(p).uniform_(-0.5, 0.5))
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


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    load_framework("torchvision")
    import runpy

    d = tmp_path_factory.mktemp("convnext")
    (d / "net.py").write_text(textwrap.dedent(NET))
    return d, runpy.run_path(str(d / "net.py"))["model"]


def _nhwc(x):
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def test_layer_norm_2d_and_cnblock_import_and_agree_layer_by_layer(net):
    torch = load_framework("torch")
    from impls.importers import torch_import

    _, model = net
    x = np.random.default_rng(2).uniform(-1, 1, (B, 3, 16, 12))
    model = model.double()
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    imported = torch_import.from_module(model, (B, 3, 16, 12), "net.py:model")
    m = imported.model
    kinds = [la.kind for la in m.layers]
    assert "permute" not in kinds  # the permutes are the same tensor held channels-last: no layer
    assert kinds.count("layer_norm") == 2 + 3  # two LayerNorm2d (F.layer_norm), three CNBlocks' nn.LayerNorm
    shapes = m.input_shapes(B)
    dense4 = [i for i, la in enumerate(m.layers) if la.kind == "dense" and len(shapes[i]) == 4]
    assert len(dense4) == 6  # each CNBlock's two Linears on its channels-last map
    ln = [la for la in m.layers if la.kind == "layer_norm"]
    assert all(la.options["center"] and la.options["scale"] for la in ln) and ln[0].options["epsilon"] == 1e-6
    xc = _nhwc(x)
    assert error_stats(reference_forward(m, xc), want).rel <= tolerance("float64") * 10
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(got, r).rel <= tolerance("float64") * 10, m.layers[i].label(i)
    model.float()


def test_f_layer_norm_over_an_nchw_maps_width_is_refused_with_the_permute():
    torch = load_framework("torch")
    from impls.importers import UnsupportedLayer, torch_import

    class Wrong(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(5))

        def forward(self, x):
            return torch.nn.functional.layer_norm(x, (5,), self.w)

    with pytest.raises(UnsupportedLayer, match=r"permute\(0, 2, 3, 1\)"):
        torch_import.from_module(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), Wrong()), (B, 3, 4, 5), "net.py:net")


def test_a_small_convnext_ports_everywhere_and_loads_alone(net, capsys):
    torch = load_framework("torch")
    load_framework("keras"), load_framework("onnxruntime"), load_framework("flax")
    from nnparity import cli

    d, model = net
    x = np.random.default_rng(3).uniform(-1, 1, (B, 3, 16, 12)).astype(np.float32)
    with torch.no_grad():
        want = model.float()(torch.from_numpy(x)).numpy()
    np.save(d / "x.npy", x)
    np.save(d / "want.npy", want)
    cwd = Path.cwd()
    try:
        os.chdir(d)
        for target, path in (("torch", "p_torch"), ("keras", "p.keras"), ("onnx", "p.onnx"), ("flax", "p_flax")):
            argv = ["port", f"{d / 'net.py'}:model", "--to", target, "-o", path, "--input-shape", f"{B},3,16,12"]
            assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, d)
    assert set(got) == {"torch", "keras", "onnx", "flax"} and all(err <= BAR for err in got.values()), got


def test_a_planted_layer_norm_over_the_maps_width_is_caught(monkeypatch):
    """The torch port's nn.LayerNorm applied to the NCHW map as it is normalises its width (here W = C, so it runs)."""
    from impls.model import seeded, voices
    from impls.ports.torch_port.code import EMITTERS
    from impls.registry import Entry

    m = seeded.chain("ln", (5, 4, 4), [("conv2d", "c", {"filters": 4, "kernel_size": [1, 1]}),
                                       ("layer_norm", "ln", {"epsilon": 1e-5})],
                     seed=3, batch=B, boundary="channels_first")  # fmt: skip
    x = np.random.default_rng(6).uniform(-1, 1, (B, 5, 4, 4))
    ref = reference_forward(m, x)
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), ref).rel <= tolerance("float64")
    right = EMITTERS.get("layer_norm")

    def planted(layer, opts, shape, layout):
        piece = right.fn(layer, opts, shape, layout)
        piece.lines = ["x = self.{a}(x)  # planted: over the last axis as torch holds it"]
        return piece

    monkeypatch.setitem(EMITTERS._entries, "layer_norm", Entry("layer_norm", planted, right.kinds, right.meta))
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), ref).rel > BAR


@pytest.mark.parametrize("voice", ["torch_nn", "keras", "onnxruntime", "flax"])
def test_dense_on_a_map_held_channels_first_in_every_port(voice):
    """A dense reading an NCHW map straight from the input (what the certificate builds for one layer in isolation):
    each port brings the channels last first."""
    from impls import unavailable_reason
    from impls.model import seeded, voices

    why = unavailable_reason(voice)
    if why:
        pytest.skip(why)
    m = seeded.chain("d4", (5, 4, 6), [("dense", "pw", {"units": 3, "activation": "tanh"})], seed=4, batch=B,
                     boundary="channels_first")  # fmt: skip
    x = np.random.default_rng(8).uniform(-1, 1, (B, 5, 4, 6)).astype(np.float32)
    got = voices.build(voice, m, "float32").forward(x)
    assert error_stats(got, reference_forward(m, x.astype(np.float64))).rel <= BAR
