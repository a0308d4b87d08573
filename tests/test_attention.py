"""Issue 25's attention from each source to each target, as a user runs them.

- torch: nn.MultiheadAttention (self-attention, bias on and off), nn.TransformerEncoderLayer in both norm placements
  and nn.TransformerEncoder, imported as the graph they are (MHA, add, LayerNorm, Linear + act, Linear, add,
  LayerNorm); each description's reference agrees with torch's own output (torch's eval fast path included), layer
  by layer. The issue's classifier (Embedding -> TransformerEncoder(2 x TransformerEncoderLayer(32, 4, 64,
  batch_first=True)) -> mean -> Linear) ports to the other frameworks, each loaded by its own framework alone in a
  fresh interpreter, agreeing within 2e-5; `nnparity certify` exits 0.
- Planted convention bugs, each caught: q and k swapped in torch's packed in_proj_weight; the key padding mask's
  polarity inverted in the torch port (torch's True = ignore written as the description's True = valid).
- batch_first=False modules on x.transpose(0, 1) import (the transposes are no layer); one given a batch-first
  tensor is refused, as are a mask argument and cross attention, naming the node.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls import convert
from impls.contract.tolerance import error_stats, tolerance
from impls.importers import UnsupportedLayer, load
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.alone import run_alone
from verify.conftest import load_framework

BAR = tolerance("float32")
AGREE = 2e-5  # the bar for a port against its source

TORCH_NET = """
import torch
from torch import nn

torch.manual_seed(0)


class Classifier(nn.Module):
    def __init__(self, vocab=50, width=32, classes=4, norm_first=False):
        super().__init__()
        self.embedding = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 4, 64, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.fc = nn.Linear(width, classes)

    def forward(self, ids):
        return self.fc(self.encoder(self.embedding(ids)).mean(dim=1))


class Block(nn.Module):
    def __init__(self, norm_first, bias=True):
        super().__init__()
        self.proj = nn.Linear(5, 12)
        self.block = nn.TransformerEncoderLayer(12, 3, 20, batch_first=True, norm_first=norm_first, bias=bias,
                                                layer_norm_eps=1e-6)
        self.attn = nn.MultiheadAttention(12, 2, batch_first=True, bias=bias)
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        x = self.block(self.proj(x))
        x = self.attn(x, x, x, need_weights=True)[0]
        return self.out(x.mean(dim=1))


class TimeMajor(nn.Module):
    # batch_first=False modules on x.transpose(0, 1), a GELU (erf) feed-forward

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 12)
        self.block = nn.TransformerEncoderLayer(12, 3, 20, activation="gelu", norm_first=True)
        self.attn = nn.MultiheadAttention(12, 2)
        self.out = nn.Linear(12, 3)

        self.tanh_block = nn.TransformerEncoderLayer(12, 2, 16, activation=nn.GELU(approximate="tanh"))

    def forward(self, x):
        t = self.tanh_block(self.block(self.proj(x).transpose(0, 1)))
        t = self.attn(t, t, t)[0]
        return self.out(t.transpose(0, 1).mean(dim=1))


class Causal(nn.Module):
    # a decoder-style stack: the causal masks the module holds (float -inf for the encoder, bool for the attention)
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(5, 12)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(12, 3, 20, batch_first=True), 2,
                                         enable_nested_tensor=False)
        self.attn = nn.MultiheadAttention(12, 4, batch_first=True)
        self.register_buffer("future", nn.Transformer.generate_square_subsequent_mask(6))
        self.register_buffer("ahead", torch.ones(6, 6, dtype=torch.bool).triu(1))
        self.out = nn.Linear(12, 3)

    def forward(self, x):
        x = self.enc(self.proj(x), mask=self.future, is_causal=True)
        x = self.attn(x, x, x, attn_mask=self.ahead)[0]
        return self.out(x.mean(dim=1))


model = Classifier().eval()
time_major = TimeMajor().eval()
causal = Causal().eval()
post_norm = Block(False).eval()
pre_norm = Block(True).eval()
no_bias = Block(False, bias=False).eval()
"""

KERAS_NET = """
import keras
from keras import layers as L

keras.utils.set_random_seed(0)
vocab, maxlen, width, heads, ff = 50, 7, 32, 2, 32

# keras.io's "Text classification with Transformer" block, as a functional graph (its raw `x + a` residuals)
ids = keras.Input((maxlen,), dtype="int32")
x = L.Embedding(vocab, width, name="embedding")(ids)
a = L.MultiHeadAttention(num_heads=heads, key_dim=width, name="attention")(x, x)  # key_dim * heads != width
a = L.Dropout(0.1)(a)
out1 = L.LayerNormalization(epsilon=1e-6, name="norm1")(x + a)
ffn = keras.Sequential([L.Dense(ff, activation="relu"), L.Dense(width)], name="ffn")(out1)
ffn = L.Dropout(0.1)(ffn)
y = L.LayerNormalization(epsilon=1e-6, name="norm2")(out1 + ffn)
y = L.GlobalAveragePooling1D()(y)
y = L.Dropout(0.1)(y)
y = L.Dense(20, activation="relu")(y)
y = L.Dropout(0.1)(y)
model = keras.Model(ids, L.Dense(2, activation="softmax", name="out")(y))

# cross attention with a causal mask, no biases, per-head sizes of its own and an output width of its own
seq = keras.Input((5, 6))
mem = L.Dense(4, activation="tanh", name="memory")(seq)
c = L.MultiHeadAttention(3, 2, value_dim=5, use_bias=False, output_shape=7, name="cross")(seq, mem, mem,
                                                                                        use_causal_mask=True)
cross = keras.Model(seq, L.Dense(3, name="head")(L.Flatten()(c)))
"""

LOADER = """
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

out = {}
x, want = np.load("x.npy"), np.load("want.npy")
for target, path in json.load(open("ports.json")):
    if target == "torch":
        import torch
        with torch.no_grad():
            y = module(f"{path}/model.py", "port_torch").load()(torch.from_numpy(x)).numpy()
    elif target == "keras":
        import keras
        y = keras.saving.load_model(path, safe_mode=True)(x, training=False)
    elif target == "onnx":
        import onnxruntime as ort
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = s.run(None, {s.get_inputs()[0].name: x})[0]
    else:
        flax_module, variables = module(f"{path}/model.py", "port_flax").load()
        y = flax_module.apply(variables, x)
    out[target] = rel(y, want)
out["nnparity loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity"))
print(json.dumps(out))
"""

TARGETS = (("torch", "port_torch"), ("keras", "port.keras"), ("onnx", "port.onnx"), ("flax", "port_flax"))


def ports_alone(d: Path, spec: str, x: np.ndarray, want: np.ndarray, capsys, shape: str | None = None,
                targets: tuple = TARGETS) -> dict:  # fmt: skip
    """`nnparity port` of `spec` to each target in `d`, then every port loaded by its own framework in `python -I`
    without nnparity (LOADER), run on x: {target: its relative error against want}."""
    np.save(d / "x.npy", x)
    np.save(d / "want.npy", want.astype(np.float32))
    for target, path in targets:
        argv = ["port", spec, "--to", target, "-o", str(d / path)] + (["--input-shape", shape] if shape else [])
        assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
    (d / "ports.json").write_text(json.dumps([list(t) for t in targets]))
    got = run_alone(LOADER, d)
    assert len(got) == len(targets), got
    return got



@pytest.fixture(scope="module")
def torch_file(tmp_path_factory):
    load_framework("torch")
    d = tmp_path_factory.mktemp("attention")
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    return d


def _torch_want(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    import runpy

    torch = load_framework("torch")
    net = runpy.run_path(str(path))[name]
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def _ids(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, (3, 7))


@pytest.mark.parametrize("name", ["post_norm", "pre_norm", "no_bias", "model", "time_major", "causal"])
def test_torch_encoders_import_as_their_graph_and_agree_layer_by_layer(torch_file, name):
    path = torch_file / "torch_net.py"
    if name == "model":
        x = _ids()
        imported = load(f"{path}:{name}", x.shape)
    else:
        x = np.random.default_rng(2).uniform(-1, 1, (3, 6, 5)).astype(np.float32)
        imported = load(f"{path}:{name}", x.shape)
    m = imported.model
    kinds = [la.kind for la in m.layers]
    assert kinds.count("multi_head_attention") == (3 if name in ("causal", "time_major") else 2)
    assert {"add", "layer_norm", "dense"} <= set(kinds)
    want = _torch_want(path, name, x)
    xr = x if name == "model" else x.astype(np.float64)
    assert error_stats(reference_forward(m.astype("float64"), xr), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xr), reference_outputs(m.astype("float64"), xr), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)
    if name == "pre_norm":  # norm_first: the LayerNorm reads the block's input, the residual adds to the input
        first = [la for la in m.layers if la.name.startswith("block.")]
        assert [la.kind for la in first[:3]] == ["layer_norm", "multi_head_attention", "add"]
        assert first[0].options["epsilon"] == 1e-6
    if name == "time_major":  # batch_first=False on x.transpose(0, 1): no layer for the transposes; each GELU its own
        acts = {la.name: la.options["activation"] for la in m.layers if la.kind == "activation"}
        assert "permute" not in kinds and acts == {"block.activation": "gelu", "tanh_block.activation": "gelu_tanh"}
    if name == "causal":  # the masks the module holds are the description's causal option, every attention's
        assert all(la.options["causal"] for la in m.layers if la.kind == "multi_head_attention")
    if name == "no_bias":
        attn = next(la for la in m.layers if la.kind == "multi_head_attention")
        assert attn.options["use_bias"] is False and "query_bias" not in attn.weights


def test_a_planted_q_k_swap_in_the_packed_weight_is_caught(torch_file, monkeypatch):
    path = torch_file / "torch_net.py"
    x = np.random.default_rng(2).uniform(-1, 1, (3, 6, 5))
    real = convert.mha_from_torch

    def swapped(state, heads):
        w = state["in_proj_weight"]
        e = w.shape[0] // 3
        return real({**state, "in_proj_weight": np.concatenate([w[e:2 * e], w[:e], w[2 * e:]])}, heads)

    good = load(f"{path}:post_norm", x.shape)
    assert error_stats(reference_forward(good.model, x), good.forward(x)).rel <= BAR
    monkeypatch.setattr(convert, "mha_from_torch", swapped)
    bad = load(f"{path}:post_norm", x.shape)
    assert error_stats(reference_forward(bad.model, x), bad.forward(x)).rel > 1e-3


def test_a_planted_mask_polarity_in_the_torch_port_is_caught(monkeypatch):
    from impls.model import seeded, voices
    from impls.ports.torch_port import EMITTERS

    m = seeded.chain("padded", (6,), [
        ("embedding", "emb", {"input_dim": 9, "output_dim": 8, "mask_zero": True}),
        ("multi_head_attention", "attn", {"num_heads": 2, "key_dim": 4}, ("emb", "emb")),
        ("lstm", "lstm", {"units": 3}),
    ], seed=3)  # fmt: skip
    ids = np.array([[1, 2, 3, 4, 5, 6], [3, 1, 4, 0, 0, 0], [7, 0, 0, 0, 0, 0]])
    want = reference_forward(m, ids)
    assert error_stats(voices.build("torch_nn", m, "float64").forward(ids), want).rel <= 1e-10
    entry = EMITTERS.get("multi_head_attention")
    real = entry.fn

    def inverted(*a, **k):
        p = real(*a, **k)
        p.lines[:] = [ln.replace(">= lengths", "< lengths") for ln in p.lines]
        return p

    import dataclasses

    monkeypatch.setattr(EMITTERS, "_entries", {**EMITTERS._entries,
                                               "multi_head_attention": dataclasses.replace(entry, fn=inverted)})
    got = voices.build("torch_nn", m, "float64").forward(ids)
    assert not np.all(np.isfinite(got)) or error_stats(got, want).rel > 1e-3


@pytest.mark.parametrize("net, why", [
    ("nn.MultiheadAttention(8, 2)", "batch_first=False but it is given a sequence held batch first"),
    ("nn.TransformerEncoderLayer(8, 2, 16)", "batch_first=False but it is given a sequence held batch first"),
])  # fmt: skip
def test_time_major_attention_is_refused_naming_the_node(tmp_path, net, why):
    torch = load_framework("torch")
    nn = torch.nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = eval(net, {"nn": nn})

        def forward(self, x):
            return self.a(x, x, x)[0] if isinstance(self.a, nn.MultiheadAttention) else self.a(x)

    with pytest.raises(UnsupportedLayer, match=why):
        from impls.importers import torch_import

        torch_import.from_module(M(), (3, 4, 8), "m")


def test_masks_and_cross_attention_given_to_torch_are_refused_naming_the_node():
    torch = load_framework("torch")
    nn = torch.nn
    from impls.importers import torch_import

    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.MultiheadAttention(8, 2, batch_first=True)
            self.register_buffer("mask", torch.zeros(3, 4, dtype=torch.bool))

        def forward(self, x):
            return self.a(x, x, x, key_padding_mask=self.mask)[0]

    class Cross(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Linear(8, 8)
            self.a = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            m = self.p(x)
            return self.a(x, m, m)[0]

    with pytest.raises(UnsupportedLayer, match="key_padding_mask"):
        torch_import.from_module(Masked(), (3, 4, 8), "m")
    with pytest.raises(UnsupportedLayer, match="node 'a'"):
        torch_import.from_module(Cross(), (3, 4, 8), "m")


# --------------------------------------------------------------------------- the torch classifier


def test_the_torch_classifier_ports_loads_alone_and_agrees(torch_file, capsys):
    d = torch_file
    x = _ids(5)
    got = ports_alone(d, f"{d / 'torch_net.py'}:model", x, _torch_want(d / "torch_net.py", "model", x), capsys, "3,7")
    assert "nn.MultiheadAttention(32, 4" in (d / "port_torch" / "model.py").read_text()
    assert all(err <= AGREE for err in got.values()), got


def test_the_torch_classifier_certifies(torch_file, tmp_path):
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{torch_file / 'torch_net.py'}:model", "--input-shape", "3,7", "--no-bench", "-o", str(out)])
    assert rc == 0, (out / "certificate.md").read_text()[:3000]


# --------------------------------------------------------------------------- Keras: keras.io's text classifier


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    load_framework("keras")
    d = tmp_path_factory.mktemp("attention_keras")
    (d / "keras_net.py").write_text(textwrap.dedent(KERAS_NET))
    return d


def _keras_want(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    import runpy

    net = runpy.run_path(str(path))[name]
    return np.asarray(net(x, training=False))


@pytest.mark.parametrize("name", ["model", "cross"])
def test_keras_attention_imports_and_agrees_layer_by_layer(keras_file, name):
    path = keras_file / "keras_net.py"
    x = _ids(7)[:, :7] if name == "model" else np.random.default_rng(8).uniform(-1, 1, (3, 5, 6)).astype(np.float32)
    imported = load(f"{path}:{name}", x.shape)
    m = imported.model
    attn = next(la for la in m.layers if la.kind == "multi_head_attention")
    want = _keras_want(path, name, x)
    xr = x if name == "model" else x.astype(np.float64)
    assert error_stats(reference_forward(m.astype("float64"), xr), want).rel <= BAR
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xr), reference_outputs(m.astype("float64"), xr), strict=True)):
        assert error_stats(got, r).rel <= BAR, m.layers[i].label(i)
    if name == "model":
        assert attn.options == {"num_heads": 2, "key_dim": 32, "value_dim": 32, "use_bias": True, "causal": False}
        assert [la.options["epsilon"] for la in m.layers if la.kind == "layer_norm"] == [1e-6, 1e-6]
        assert attn.inputs == ("embedding", "embedding")
    else:
        assert attn.options["causal"] is True and attn.options["output_dim"] == 7 and attn.options["value_dim"] == 5
        assert attn.inputs == ("input", "memory", "memory")


def test_a_planted_torch_layer_norm_epsilon_for_keras_is_caught(keras_file, monkeypatch):
    """Keras' LayerNormalization(epsilon=1e-6) read as torch's default 1e-5: the description leaves Keras' output."""
    import dataclasses

    from impls.importers.keras_import import REGISTRY

    path = keras_file / "keras_net.py"
    x = _ids(7)
    want = _keras_want(path, "model", x)
    keras = load_framework("keras")
    entry = REGISTRY.get(keras.layers.LayerNormalization)

    def torch_eps(c):
        kind, opts, w = entry.fn(c)
        return kind, {**opts, "epsilon": 1e-5}, w

    monkeypatch.setattr(REGISTRY, "_entries", {**REGISTRY._entries,
                                               keras.layers.LayerNormalization: dataclasses.replace(entry, fn=torch_eps)})
    bad = load(f"{path}:model", x.shape)
    m = bad.model.astype("float64")
    errs = {la.name: error_stats(got, r).rel
            for la, got, r in zip(m.layers, bad.layer_outputs(x), reference_outputs(m, x), strict=True)}
    first = next(name for name, e in errs.items() if e > BAR)
    assert first == "norm1", errs  # the first diverging layer, as the certificate names it
    assert error_stats(reference_forward(m, x), want).rel > 1e-7  # and the output moves (the softmax damps it)


def test_a_planted_double_scale_in_the_torch_port_is_caught(keras_file, monkeypatch):
    """The readable Attention module written with its 1/sqrt(key_dim) applied twice (on q and on the scores)."""
    from impls.model import voices
    from impls.ports.torch_port.source import HELPERS

    imported = load(f"{keras_file / 'keras_net.py'}:cross", (3, 5, 6))
    x = np.random.default_rng(9).uniform(-2, 2, (3, 5, 6))
    want = reference_forward(imported.model.astype("float64"), x)
    assert error_stats(voices.build("torch_nn", imported.model, "float64").forward(x), want).rel <= 1e-10
    line = "scores = (q * self.key_dim ** -0.5) @ k.transpose(-2, -1)"
    assert line in HELPERS["Attention"]
    monkeypatch.setitem(HELPERS, "Attention", HELPERS["Attention"].replace(
        line, "scores = (q * self.key_dim ** -0.5) @ k.transpose(-2, -1) * self.key_dim ** -0.5"))
    got = voices.build("torch_nn", imported.model, "float64").forward(x)
    assert error_stats(got, want).rel > 1e-3


def test_keras_float64_attention_scales_in_float32_as_the_port_declares(keras_file):
    """Why the Keras port refuses attention in float64: Keras' own layer, in float64, is ~1e-9 off the float64
    reference (its 1 / sqrt(key_dim) goes through float32), over the 1e-10 bar."""
    from impls.model import voices

    imported = load(f"{keras_file / 'keras_net.py'}:cross", (3, 5, 6))
    m = imported.model.astype("float64")
    assert "float32" in voices.refusal("keras", m, "float64")
    keras = load_framework("keras")
    mha = keras.layers.MultiHeadAttention(2, 3, dtype="float64")
    g = np.random.default_rng(0)
    q = g.uniform(-1, 1, (2, 4, 6))
    y = np.asarray(mha(q, q))
    mha2 = keras.layers.MultiHeadAttention(2, 3, dtype="float64")
    mha2(q, q)
    mha2.set_weights(mha.get_weights())
    mha2._inverse_sqrt_key_dim = np.float64(1.0 / np.sqrt(3.0))  # a float64 scale: what the description computes
    exact = np.asarray(mha2(q, q))
    assert 1e-12 < error_stats(y, exact).rel < 1e-7


def test_the_keras_classifier_ports_loads_alone_and_agrees(keras_file, capsys):
    d = keras_file
    x = _ids(5).astype(np.int32)  # the source's Input dtype
    got = ports_alone(d, f"{d / 'keras_net.py'}:model", x, _keras_want(d / "keras_net.py", "model", x), capsys, "3,7")
    assert "Attention(32, 32, 32, heads=2, key_dim=32" in (d / "port_torch" / "model.py").read_text()
    assert all(err <= AGREE for err in got.values()), got


def test_the_keras_classifier_certifies(keras_file, tmp_path):
    out = tmp_path / "cert"
    rc = cli.main(["certify", f"{keras_file / 'keras_net.py'}:model", "--input-shape", "3,7", "--no-bench", "-o", str(out)])
    assert rc == 0, (out / "certificate.md").read_text()[:3000]


@pytest.mark.parametrize("name", ["time_major", "causal"])
@pytest.mark.parametrize("voice", ["torch_nn", "keras", "flax", "onnxruntime"])
def test_the_time_major_gelu_and_causal_models_port_to_every_target(torch_file, voice, name):
    """batch_first=False attention, a pre-norm encoder layer with an erf GELU: each port's build agrees with torch."""
    from impls import unavailable_reason
    from impls.model import voices

    if unavailable_reason(voice):
        pytest.skip(unavailable_reason(voice))
    x = np.random.default_rng(2).uniform(-1, 1, (3, 6, 5)).astype(np.float32)
    imported = load(f"{torch_file / 'torch_net.py'}:{name}", x.shape)
    want = _torch_want(torch_file / "torch_net.py", name, x)
    assert voices.refusal(voice, imported.model, "float32") is None
    got = voices.build(voice, imported.model, "float32").forward(x)
    assert error_stats(got, want).rel <= AGREE


def test_keras_attention_read_at_its_padded_steps_is_refused_naming_the_layer():
    """Under a padding mask Keras' attention weighs every key alike at a padded query row; a Flatten after it reads
    those steps (tests/test_attention_padding.py: a GlobalAveragePooling1D the mask reaches imports)."""
    keras = load_framework("keras")
    from impls.importers import keras_import

    ids = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(9, 8, mask_zero=True)(ids)
    y = keras.layers.MultiHeadAttention(2, 4, name="attn")(x, x)
    net = keras.Model(ids, keras.layers.Flatten(name="flat")(y))
    with pytest.raises(UnsupportedLayer, match="'flat'.*reads every step of a padded sequence"):
        keras_import.from_model(net, (3, 6), "m")


# --------------------------------------------------------------------------- bad descriptions


@pytest.mark.parametrize("opts, inputs, shape, why", [
    ({"num_heads": 0, "key_dim": 2}, ("input", "input"), (4, 6), "num_heads must be an int >= 1, got 0"),
    ({"num_heads": 2}, ("input", "input"), (4, 6), r"missing options \['key_dim'\]"),
    ({"num_heads": 2, "key_dim": 2, "causal": "yes"}, ("input", "input"), (4, 6), "causal must be true or false"),
    ({"num_heads": 2, "key_dim": 2, "dropout": 0.1}, ("input", "input"), (4, 6), r"unknown options \['dropout'\]"),
    ({"num_heads": 2, "key_dim": 2}, ("input",), (4, 6), "a merge reads at least two tensors"),
    ({"num_heads": 2, "key_dim": 2}, ("input", "input"), (6,), r"the query must be \(B, T, E\)"),
    ({"num_heads": 2, "key_dim": 2}, ("input", "input", "input", "input"), (4, 6), "reads \\(query, value\\) or"),
])  # fmt: skip
def test_a_bad_attention_layer_is_one_error_naming_the_layer_and_option(opts, inputs, shape, why):
    from impls.model.description import Layer, Model, ModelError, ShapeError

    m = Model("bad", shape, (Layer("multi_head_attention", "attn", opts, {}, inputs),))
    with pytest.raises((ModelError, ShapeError), match=why) as e:
        m.check(3)
    assert "attn" in str(e.value) or "multi_head_attention" in str(e.value)


def test_key_and_value_of_different_lengths_are_refused():
    from impls.model import seeded
    from impls.model.description import ShapeError

    with pytest.raises(ShapeError, match="key and value need one length"):
        seeded.chain("bad", (4, 6), [("dense", "d", {"units": 6}), ("reshape", "r", {"target_shape": [2, 12]}, ("d",)),
                                     ("multi_head_attention", "a", {"num_heads": 2, "key_dim": 2}, ("input", "d", "r"))])
