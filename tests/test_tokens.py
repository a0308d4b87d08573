"""Issue 25's Vision Transformer tokens (class_token, position_embedding) and one position x[:, 0] (take_step), from
torch to each target, as a user runs them.

- torch: `torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)` -> class_token, `x + self.pos_embedding` ->
  position_embedding (each named by its parameter, its weight the parameter's values), `x[:, 0]` -> take_step(0); the
  description's reference agrees with torch's own output, layer by layer. The model ports to torch, Keras, ONNX and
  Flax, each loaded by its own framework alone in a fresh interpreter, agreeing within 2e-5 (the Keras port's own
  tests: tests/test_tokens_keras.py).
- Planted bugs, each caught: the class token put after the sequence (in the reference's op, and in the torch port's
  module), the position embedding not added (the ONNX port) or added twice (the Flax port).
- Refused, naming the node: a token concatenated after the sequence, a non-trainable token, x[:, i] of a map.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.alone import run_alone
from verify.conftest import load_framework

from .test_attention import LOADER

BAR = tolerance("float32")
AGREE = 2e-5
PORTS = (("torch", "port_torch"), ("keras", "port.keras"), ("onnx", "port.onnx"), ("flax", "port_flax"))

TORCH_NET = """
import torch
from torch import nn

torch.manual_seed(0)


class TinyViT(nn.Module):
    # torchvision's VisionTransformer's steps on a (B, T, F) sequence of patch features
    def __init__(self, steps=5, features=4, width=8, classes=3):
        super().__init__()
        self.proj = nn.Linear(features, width)
        self.class_token = nn.Parameter(torch.randn(1, 1, width))
        self.pos_embedding = nn.Parameter(torch.empty(1, steps + 1, width).normal_(std=0.5))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.attn = nn.MultiheadAttention(width, 2, batch_first=True)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.proj(x)
        n = x.shape[0]
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        x = x + self.pos_embedding
        y = self.norm(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return self.head(x[:, 0])


model = TinyViT().eval()
"""


@pytest.fixture(scope="module")
def torch_file(tmp_path_factory):
    load_framework("torch")
    d = tmp_path_factory.mktemp("tokens")
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    return d


def _x() -> np.ndarray:
    return np.random.default_rng(4).uniform(-1, 1, (3, 5, 4)).astype(np.float32)


def _net(torch_file):
    import runpy

    return runpy.run_path(str(torch_file / "torch_net.py"))["model"]


def _imported(torch_file):
    from impls.importers import torch_import

    return torch_import.from_module(_net(torch_file), (3, 5, 4), "tiny_vit")


def test_the_torch_vit_steps_import_and_agree_layer_by_layer(torch_file):
    torch = load_framework("torch")
    net, imported = _net(torch_file), _imported(torch_file)
    m = imported.model
    assert [la.kind for la in m.layers] == ["dense", "class_token", "position_embedding", "layer_norm",
                                            "multi_head_attention", "add", "take_step", "dense"]  # fmt: skip
    cls, pos = m.layers[1], m.layers[2]
    assert (cls.name, pos.name) == ("class_token", "pos_embedding")
    np.testing.assert_array_equal(cls.weights["token"], net.class_token.detach().numpy())
    np.testing.assert_array_equal(pos.weights["embedding"], net.pos_embedding.detach().numpy())
    assert m.layers[6].options == {"index": 0}
    x = _x()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    xr = x.astype(np.float64)
    assert error_stats(reference_forward(m.astype("float64"), xr), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xr), reference_outputs(m.astype("float64"), xr), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)


def test_the_vit_steps_port_and_load_alone(torch_file, tmp_path, capsys):
    torch = load_framework("torch")
    x = _x()
    with torch.no_grad():
        want = _net(torch_file)(torch.from_numpy(x)).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want)
    src = f"{torch_file / 'torch_net.py'}:model"
    ports = []
    for target, path in PORTS:
        argv = ["port", src, "--to", target, "-o", str(tmp_path / path), "--input-shape", "3,5,4"]
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
        ports.append((target, path))
    assert "ClassToken(8)" in (tmp_path / "port_torch" / "model.py").read_text()
    (tmp_path / "ports.json").write_text(json.dumps(ports))
    got = run_alone(LOADER, tmp_path)
    assert len(got) == len(ports) and all(err <= AGREE for err in got.values()), got


# --------------------------------------------------------------------------- planted bugs


def _model():
    from impls.model import seeded

    return seeded.chain("tokens", (5, 4), [
        ("dense", "embed", {"units": 6}),
        ("class_token", "cls", {}),
        ("position_embedding", "pos", {}),
        ("dense", "d", {"units": 3, "activation": "tanh"}),
        ("flatten", "f", {}),
    ], seed=5)  # fmt: skip


def _data():
    return np.random.default_rng(6).uniform(-1, 1, (3, 5, 4))


def test_a_planted_token_after_the_sequence_in_the_reference_is_caught(monkeypatch):
    from impls.model import voices
    from impls.primitives import numpy_impl

    m, x = _model(), _data()
    torch_voice = voices.build("torch_nn", m, "float64").forward(x)
    assert error_stats(torch_voice, reference_forward(m, x)).rel <= 1e-12
    monkeypatch.setattr(numpy_impl, "prepend_token",
                        lambda x, t: np.concatenate([x, np.broadcast_to(t, (x.shape[0], 1, x.shape[2]))], axis=1))
    assert error_stats(torch_voice, reference_forward(m, x)).rel > 1e-3


def _planted(monkeypatch, registry, kind, fn):
    import dataclasses

    entry = registry.get(kind)
    monkeypatch.setattr(registry, "_entries", {**registry._entries, kind: dataclasses.replace(entry, fn=fn(entry.fn))})


def test_a_planted_token_after_the_sequence_in_the_torch_port_is_caught(monkeypatch):
    from impls.model import voices
    from impls.ports.torch_port.source import HELPERS

    m, x = _model(), _data()
    want = reference_forward(m, x)
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), want).rel <= 1e-12
    monkeypatch.setitem(HELPERS, "ClassToken", HELPERS["ClassToken"].replace(
        "torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)", "torch.cat([x, self.token.expand(x.shape[0], -1, -1)], dim=1)"))
    assert "torch.cat([x, self.token" in HELPERS["ClassToken"]
    assert error_stats(voices.build("torch_nn", m, "float64").forward(x), want).rel > 1e-3


def test_a_planted_missing_position_embedding_in_the_onnx_port_is_caught(monkeypatch):
    from impls.model import voices
    from impls.ports.onnx_port import EMITTERS

    m, x = _model(), _data()
    want = reference_forward(m, x)
    assert error_stats(voices.build("onnxruntime", m, "float64").forward(x), want).rel <= 1e-12

    def skipped(real):
        def emit(g, i, layer, opts, shape):
            g.apply("Identity")
        return emit

    _planted(monkeypatch, EMITTERS, "position_embedding", skipped)
    assert error_stats(voices.build("onnxruntime", m, "float64").forward(x), want).rel > 1e-3


def test_a_planted_position_embedding_added_twice_in_the_flax_port_is_caught(monkeypatch):
    from impls.model import voices
    from impls.ports.flax_port import EMITTERS

    m, x = _model(), _data()
    want = reference_forward(m, x)
    assert error_stats(voices.build("flax", m, "float64").forward(x), want).rel <= 1e-12

    def twice(real):
        def emit(name, opts, in_shape):
            (line,) = real(name, opts, in_shape)
            return [line.replace(f'x = PositionEmbedding(name="{name}")(x)', f'pe = PositionEmbedding(name="{name}")'),
                    "x = pe(pe(x))  # planted: the embedding added twice"]
        return emit

    _planted(monkeypatch, EMITTERS, "position_embedding", twice)
    assert error_stats(voices.build("flax", m, "float64").forward(x), want).rel > 1e-3


# --------------------------------------------------------------------------- refused, naming the node


def _refused(forward_src: str, token_grad: bool = True):
    torch = load_framework("torch")
    nn = torch.nn
    from impls.importers import torch_import

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 8)
            self.class_token = nn.Parameter(torch.randn(1, 1, 8), requires_grad=token_grad)

        def forward(self, x):
            x = self.proj(x)
            return eval(forward_src, {"torch": torch, "self": self, "x": x})

    return lambda: torch_import.from_module(M(), (3, 5, 4), "m")


@pytest.mark.parametrize("src, why", [
    ("torch.cat([x, self.class_token.expand(x.shape[0], -1, -1)], dim=1)", "only first of two, before the sequence"),
    ("torch.cat([self.class_token.expand(x.shape[0], 5, -1), x], dim=2)", "on dim 2"),
])  # fmt: skip
def test_a_token_elsewhere_is_refused_naming_the_node(src, why):
    with pytest.raises(UnsupportedLayer, match=why):
        _refused(src)()


def test_a_frozen_token_is_refused():
    with pytest.raises(UnsupportedLayer, match="not a trainable"):
        _refused("torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)", token_grad=False)()


# --------------------------------------------------------------------------- torchvision's VisionTransformer

VIT_NET = """
import torch
from impls import frameworks

tv = frameworks.load("torchvision")
torch.manual_seed(0)
model = tv.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64, mlp_dim=128,
                                    num_classes=10).eval()
with torch.no_grad():  # torchvision starts the class token and the head at zeros: make every weight say something
    for p in model.parameters():
        if not p.any():
            p.normal_(std=0.2)
"""


@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    load_framework("torch")
    d = tmp_path_factory.mktemp("vit")
    (d / "vit_net.py").write_text(textwrap.dedent(VIT_NET))
    return d / "vit_net.py"


def _image() -> np.ndarray:
    return np.random.default_rng(8).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)


def test_torchvision_vit_imports_and_agrees_layer_by_layer(vit_file):
    """conv_proj (conv2d), the (B, C, H * W) reshape held channels-first and its permute (no layer), the class token,
    the position embedding, torchvision's own EncoderBlocks (LayerNorm, MultiheadAttention read at [0] beside an
    unused [1], dropout, add, MLPBlock), the final LayerNorm, x[:, 0] (take_step 0) and the head."""
    import runpy

    from impls.importers import load

    torch = load_framework("torch")
    net = runpy.run_path(str(vit_file))["model"]
    imported = load(f"{vit_file}:model", (3, 3, 32, 32))
    m = imported.model
    kinds = [la.kind for la in m.layers]
    assert kinds[:4] == ["conv2d", "reshape", "class_token", "position_embedding"]
    assert kinds[-3:] == ["layer_norm", "take_step", "dense"] and m.layers[-2].options == {"index": 0}
    assert kinds.count("multi_head_attention") == 2 and m.layers[1].options == {"target_shape": [16, 64]}
    x = _image()
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    xr = x.transpose(0, 2, 3, 1).astype(np.float64)  # the description's channels-last input
    assert error_stats(reference_forward(m.astype("float64"), xr), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xr), reference_outputs(m.astype("float64"), xr), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)


def test_torchvision_vit_ports_load_alone_and_certifies(vit_file, tmp_path, capsys):
    import runpy

    torch = load_framework("torch")
    x = _image()
    with torch.no_grad():
        want = runpy.run_path(str(vit_file))["model"](torch.from_numpy(x)).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", want)
    ports = []
    for target, path in PORTS:
        argv = ["port", f"{vit_file}:model", "--to", target, "-o", str(tmp_path / path), "--input-shape", "3,3,32,32"]
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
        ports.append((target, path))
    (tmp_path / "ports.json").write_text(json.dumps(ports))
    got = run_alone(LOADER, tmp_path)
    assert len(got) == len(ports) and all(err <= AGREE for err in got.values()), got
    print("torchvision ViT ports, relative max error loaded alone:", got)
    _keras_port_trains_what_torch_trains(runpy.run_path(str(vit_file))["model"], tmp_path / "port.keras")
    _keras_port_imports_back(tmp_path / "port.keras", x, want)
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{vit_file}:model", "--input-shape", "3,3,32,32", "--no-bench", "-o", str(out)])
    assert rc == 0, (out / "certificate.md").read_text()[:3000]
    cert = json.loads((out / "certificate.json").read_text())
    k = cert["voices"]["keras"]  # the Keras port is certified now: float32 every layer, its gradients, its step
    assert "float32" not in k.get("refused", {}) and k["forward"]["float32"]["pass"], k.get("refused")
    tokens = [r for r in k["layers"]["float32"] if r["kind"] in ("class_token", "position_embedding")]
    assert len(tokens) == 2 and all(r[c]["pass"] for r in tokens for c in ("isolated", "accumulated"))
    grads = k["gradients"].get("tensors", [])
    assert {"class_token/token", "encoder.pos_embedding/embedding"} <= {g["tensor"] for g in grads}, grads[:3]
    assert all(g["pass"] for g in grads)
    step = cert["training"]["voices"]["keras"]  # a float64 step: refused for the attention, not for the tokens
    assert step.get("pass") or "(multi_head_attention): in float64" in step.get("refused", ""), step
    print("keras in the certificate: forward float32", k["forward"]["float32"]["error"], "tokens",
          [(r["name"], r["isolated"]["error"], r["accumulated"]["error"]) for r in tokens],
          "gradients", k["gradients"]["dtype"], max(g["error"] for g in grads), "training step",
          {key: v for key, v in step.items() if key != "weights"})


def _keras_port_trains_what_torch_trains(net, path):
    """The Keras port's trainable variables are torch's parameters, scalar for scalar (both hold a key bias: torch in
    in_proj_bias, Keras in its key projection, where the port writes zeros: softmax ignores it): the class token and
    the position embedding are one EinsumDense kernel each, torch's values, nothing trainable beside them."""
    keras = load_framework("keras")
    port = keras.saving.load_model(path)
    held = {p: v.detach().numpy() for p, v in net.named_parameters()}
    mha = [la for la in port.layers if isinstance(la, keras.layers.MultiHeadAttention)]
    size = sum(int(np.prod(v.shape)) for v in port.trainable_weights)
    assert len(mha) == 2 and size == sum(a.size for a in held.values()) == 81226
    tokens = [la for la in port.layers
              if isinstance(la, keras.layers.EinsumDense) and la.equation in ("abc,c->abc", "abc,bc->abc")]
    assert [[tuple(v.shape) for v in la.trainable_weights] for la in tokens] == [[(64,)], [(17, 64)]]
    np.testing.assert_array_equal(np.asarray(tokens[0].kernel), held["class_token"][0, 0])
    np.testing.assert_array_equal(np.asarray(tokens[1].kernel), held["encoder.pos_embedding"][0])


def _keras_port_imports_back(path, x, want):
    """The Keras importer reads the port's token patterns back as class_token and position_embedding (no ones_like
    refused), and the description it makes computes torch's output."""
    from impls.importers import keras_import

    back = keras_import.load_file(path, x.shape)
    kinds = [la.kind for la in back.model.layers]
    assert kinds[:5] == ["permute", "conv2d", "reshape", "class_token", "position_embedding"], kinds
    assert error_stats(reference_forward(back.model.astype("float64"), x.astype(np.float64)), want).rel <= BAR
