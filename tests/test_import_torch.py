"""The torch importer (impls/importers/torch_import.py): modules defined here -> model descriptions whose NumPy
reference forward is the module's own at the float32 bar (whole, per layer accumulated and isolated); every
unsupported node refused with its name; a round trip torch -> description -> torch port -> a clean process."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn, F = torch.nn, torch.nn.functional

from impls.contract.spec import ShapeError
from impls.contract.tolerance import assert_close, error_stats
from impls.importers import BadInput, UnsupportedLayer, torch_import
from impls.model.compose import reference_forward, reference_outputs
from impls.ports import torch_port
from impls.ports.torch_port import code as torch_code
from tests.test_port_torch import run_port


def seeded(module: nn.Module, seed: int) -> nn.Module:
    """Every parameter uniform and non-zero-mean (biases included), so a swapped gate or row shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 0.8 - 0.3)
    return module.eval()


class SmallCNN(nn.Module):
    """Sequential features (stride 2 with dilation, depthwise, zero pad, both pools), nn.Flatten, Dropout, Linear."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 6, 3, stride=2, padding=1), nn.ReLU(inplace=True),  # must not overwrite the conv's output
            nn.Conv2d(6, 6, 3, dilation=2, padding=2, groups=6), nn.Tanh(),  # depthwise
            nn.ZeroPad2d((1, 0, 2, 1)),
            nn.MaxPool2d(2, stride=1, padding=1),
            nn.AvgPool2d(3, stride=2, padding=1),  # count_include_pad=True, torch's default
            nn.Conv2d(6, 4, (2, 3), bias=False), nn.Sigmoid(),
        )  # fmt: skip
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 5 * 2, 5)
        self.head = nn.Softmax(dim=-1)

    def forward(self, x):
        return self.head(self.fc(self.drop(self.flatten(self.features(x)))))


class FunctionalCNN(nn.Module):
    """Functional calls: F.relu, x.reshape(x.shape[0], -1), F.dropout(training=self.training), torch.tanh,
    x.view(b, -1) with b read at the top, torch.softmax; a Linear on a (c, h, w)-flattened map."""

    def __init__(self, flatten: str):
        super().__init__()
        self.flatten = flatten
        self.conv = nn.Conv2d(3, 4, 3, padding="same")
        self.pool = nn.AvgPool2d(2, count_include_pad=False)
        self.fc1 = nn.Linear(4 * 3 * 2, 6)
        self.fc2 = nn.Linear(6, 4)

    def forward(self, x):
        b = x.size(0)
        x = self.pool(F.relu(self.conv(x)))
        if self.flatten == "reshape":
            x = x.reshape(x.shape[0], -1)
        elif self.flatten == "view":
            x = x.view(b, -1)
        else:
            x = torch.flatten(x, 1)
        x = F.dropout(x, p=0.1, training=self.training)
        x = torch.tanh(self.fc1(x))
        return torch.softmax(torch.sigmoid(self.fc2(x)), dim=1)


class GRUClassifier(nn.Module):
    """The everyday pattern, with its variants: out[:, -1], h[-1], h[0], h.squeeze(0); or two GRUs where the first
    returns the sequence and a Linear acts on its last axis."""

    def __init__(self, pick: str, stacked: bool = False):
        super().__init__()
        self.pick, self.stacked = pick, stacked
        self.gru = nn.GRU(4, 5, batch_first=True)
        self.per_step = nn.Linear(5, 6)
        self.gru2 = nn.GRU(6, 3, batch_first=True)
        self.fc = nn.Linear(3 if stacked else 5, 4)

    def forward(self, x):
        out, h = self.gru(x)
        if self.stacked:
            out, h = self.gru2(torch.relu(self.per_step(out)))
        if self.pick == "out[:, -1]":
            last = out[:, -1]
        elif self.pick == "h[-1]":
            last = h[-1]
        elif self.pick == "h[0]":
            last = h[0]
        else:
            last = h.squeeze(0)
        return F.softmax(self.fc(last), dim=-1)


def check_import(net: nn.Module, shape: tuple, dtype: str = "float32"):
    """Import net and compare the description's reference forward with the module itself (fed the same input)."""
    imported = torch_import.from_module(net, shape, "tests:net")
    model = imported.model
    assert model.source == "torch" and model.boundary == "channels_first" and imported.dtype == dtype
    x_torch = np.random.default_rng(7).uniform(-1.0, 1.0, shape).astype(dtype)
    with torch.no_grad():
        own = net(torch.from_numpy(x_torch)).numpy()
    x = np.transpose(x_torch, (0, 2, 3, 1)) if len(shape) == 4 else x_torch  # the description's NHWC
    ref = reference_forward(model, x.astype("float64"))
    assert_close(own, ref, "float32", what=f"{type(net).__name__}: the module vs its description's reference")
    assert_close(imported.forward(x), ref, "float32", what="Imported.forward")
    return imported, x, ref


def test_small_cnn_imports_and_matches():
    imported, x, _ = check_import(seeded(SmallCNN(), 1), (3, 2, 13, 11))
    kinds = [la.kind for la in imported.model.layers]
    assert kinds == ["conv2d", "activation", "conv2d", "activation", "zero_pad2d", "max_pool2d", "avg_pool2d",
                     "conv2d", "activation", "flatten", "dropout", "dense", "activation"]  # fmt: skip
    layers = {la.name: la for la in imported.model.layers}
    assert layers["features.2"].options["groups"] == 6 and layers["features.2"].options["dilation"] == [2, 2]
    assert layers["features.4"].options["padding"] == [[2, 1], [1, 0]]  # ZeroPad2d's (left, right, top, bottom)
    assert layers["features.6"].options["count_include_pad"] is True
    assert imported.model.input_shape == (13, 11, 2)
    # every layer's output, accumulated (the module's own chain) and isolated (fed the reference's input)
    refs = reference_outputs(imported.model, x.astype("float64"))
    for i, (got, want) in enumerate(zip(imported.layer_outputs(x), refs, strict=True)):
        assert_close(got, want, "float32", what=f"layer {i} accumulated")
    for i, (xi, want) in enumerate(zip([x, *refs[:-1]], refs, strict=True)):
        assert_close(imported.layer_call(i, xi.astype("float32")), want, "float32", what=f"layer {i} isolated")


@pytest.mark.parametrize("flatten", ["torch.flatten", "reshape", "view"])
def test_functional_calls_import_like_their_layers(flatten):
    imported, x, _ = check_import(seeded(FunctionalCNN(flatten), 2), (3, 3, 6, 5))
    model = imported.model
    assert [la.kind for la in model.layers] == ["conv2d", "activation", "avg_pool2d", "flatten", "dropout", "dense",
                                                "activation", "dense", "activation", "activation"]  # fmt: skip
    assert model.layers[0].options["padding"] == [[1, 1], [1, 1]]  # torch's 'same' at stride 1
    assert model.layers[4].options["rate"] == 0.1
    refs = reference_outputs(model, x.astype("float64"))
    for i, (xi, want) in enumerate(zip([x, *refs[:-1]], refs, strict=True)):
        assert_close(imported.layer_call(i, xi.astype("float32")), want, "float32", what=f"layer {i} isolated")


class FunctionalPools(nn.Module):
    """F.max_pool2d and F.avg_pool2d, positional and keyword, as the everyday LeNet-style forward writes them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 4 * 1, 4)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = F.avg_pool2d(x, 3, stride=1, padding=1)  # count_include_pad=True, torch's default
        x = F.max_pool2d(x, kernel_size=(2, 1), stride=(1, 2), padding=(1, 0))
        x = F.avg_pool2d(x, 2, 1, 0, False, False)
        return self.fc(torch.flatten(x, 1))


def test_functional_pools_import_like_their_modules():
    imported, x, _ = check_import(seeded(FunctionalPools(), 4), (3, 2, 8, 7))
    layers = imported.model.layers
    assert [la.kind for la in layers] == ["conv2d", "activation", "max_pool2d", "avg_pool2d", "max_pool2d",
                                          "avg_pool2d", "flatten", "dense"]  # fmt: skip
    assert layers[2].options == {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}
    assert layers[3].options["count_include_pad"] is True and layers[3].options["strides"] == [1, 1]
    assert layers[4].options == {"pool_size": [2, 1], "strides": [1, 2], "padding": [[1, 1], [0, 0]]}
    assert layers[5].options["count_include_pad"] is False
    refs = reference_outputs(imported.model, x.astype("float64"))
    for i, (xi, want) in enumerate(zip([x, *refs[:-1]], refs, strict=True)):
        assert_close(imported.layer_call(i, xi.astype("float32")), want, "float32", what=f"layer {i} isolated")


class ViewAfterPool(nn.Module):
    """x.view(x.size(0), -1) right after conv -> relu -> AvgPool2d: a view needs contiguous memory, which the module
    has when it is fed a contiguous NCHW tensor, as users feed it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.pool = nn.AvgPool2d(2, stride=2)
        self.fc = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        return self.fc(x.view(x.size(0), -1))


def test_the_source_module_is_fed_contiguous_nchw_tensors():
    """Imported.forward and layer_outputs hand the module the canonical NHWC input transposed. With one channel,
    np.ascontiguousarray kept the view's stride 1 on C, which torch reads as channels_last; the conv kept that
    memory format and the module's own x.view raised in certify's source check."""
    imported, x, ref = check_import(seeded(ViewAfterPool(), 5), (3, 1, 8, 8))
    x = x.copy()  # a fresh NHWC array, as certify makes (check_import's is the NCHW one transposed)
    assert_close(imported.forward(x), ref, "float32", what="Imported.forward")
    refs = reference_outputs(imported.model, x.astype("float64"))
    for i, (got, want) in enumerate(zip(imported.layer_outputs(x), refs, strict=True)):
        assert_close(got, want, "float32", what=f"layer {i} accumulated")


def test_without_the_flatten_row_permutation_the_description_is_wrong(monkeypatch):
    net = seeded(FunctionalCNN("torch.flatten"), 3)
    monkeypatch.setattr(torch_import.convert, "flatten_rows_nchw_to_nhwc", lambda k, fs: k)
    imported = torch_import.from_module(net, (3, 3, 6, 5), "tests:net")
    x = np.random.default_rng(7).uniform(-1.0, 1.0, (3, 3, 6, 5)).astype("float32")
    with torch.no_grad():
        own = net(torch.from_numpy(x)).numpy()
    ref = reference_forward(imported.model, np.transpose(x, (0, 2, 3, 1)).astype("float64"))
    assert error_stats(own, ref).rel > 1e-3


@pytest.mark.parametrize("pick", ["out[:, -1]", "h[-1]", "h[0]", "h.squeeze(0)"])
def test_gru_classifier_patterns_import(pick):
    imported = check_import(seeded(GRUClassifier(pick), 4), (3, 7, 4))[0]
    gru = imported.model.layers[0]
    assert gru.kind == "gru" and gru.options == {"units": 5, "variant": "reset_after", "return_sequences": False}
    assert [la.kind for la in imported.model.layers] == ["gru", "dense", "activation"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stacked_gru_with_a_dense_per_step_imports(dtype):
    net = seeded(GRUClassifier("out[:, -1]", stacked=True).to(getattr(torch, dtype)), 5)
    imported, _, _ = check_import(net, (3, 6, 4), dtype)
    layers = imported.model.layers
    assert [(la.kind, la.options.get("return_sequences")) for la in layers] == [
        ("gru", True), ("dense", None), ("activation", None), ("gru", False), ("dense", None), ("activation", None)]
    assert layers[0].weights["W"].dtype == np.dtype(dtype)


def test_the_seed_gru_module_imports():
    from impls.builtin.torch_models import SeedGRU

    imported, _, _ = check_import(seeded(SeedGRU(input_size=4, units=(5, 3), classes=4), 6), (3, 5, 4))
    assert [la.name for la in imported.model.layers] == ["gru1", "gru2", "dense", "softmax"]


# --------------------------------------------------------------------------- refusals


class Wrap(nn.Module):
    def __init__(self, body, fn=None):
        super().__init__()
        self.body, self.fn = body, fn

    def forward(self, x):
        return self.fn(self, x) if self.fn else self.body(x)


class Scale(nn.Module):
    """A custom module: its forward adds a trainable tensor it holds (x * self.scale is a layer scale since issue 24;
    a trainable offset has no kind)."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x + self.scale


def _twice(self, x):  # one module (its weights) in two places
    return self.body(self.body(x))


def _cat(self, x):  # on the batch axis (a residual x + body(x) and cat on dim 1 import: tests/test_import_torch_cnn.py)
    return torch.cat([self.body(x), x], dim=0)


def _used_twice(self, x):  # (x * y imports as multiply since issue 24)
    y = self.body(x)
    return torch.maximum(torch.relu(y), y)


def _out_and_h(self, x):
    out, h = self.body(x)
    return out[:, -1] * h[0]


def _gru_with_h0(self, x):
    return self.body(x, torch.zeros(1, x.shape[0], 5))[0]


def _always_dropout(self, x):
    return F.dropout(self.body(x), 0.5)


CONV = (3, 2, 6, 6)
SEQ = (3, 5, 4)


@pytest.mark.parametrize(("body", "fn", "shape", "node", "words"), [
    (nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 5, batch_first=True, proj_size=2)), None, SEQ, "body_1", ["nn.LSTM", "proj_size"]),
    (nn.BatchNorm2d(2, track_running_stats=False), None, CONV, "body", ["nn.BatchNorm2d", "track_running_stats=False"]),
    (nn.BatchNorm2d(2, momentum=None), None, CONV, "body", ["momentum=None", "cumulative"]),
    (nn.LayerNorm(6), None, CONV, "body", ["nn.LayerNorm", "not its channels", "permute"]),
    (nn.Conv2d(2, 2, 3, padding=1), _twice, CONV, "body_1", ["called a second time", "shared"]),
    (nn.Conv2d(2, 2, 3, padding=1), _cat, CONV, "cat", ["dim 0"]),
    (nn.Linear(4, 4), _used_twice, (3, 4), "maximum", ["joins 2 paths (relu, body)", "add (x + y)"]),
    (nn.GRU(4, 5, batch_first=True), _out_and_h, SEQ, "body", ["both its output and h_n"]),
    (nn.GRU(4, 5, batch_first=True), _gru_with_h0, SEQ, "zeros", ["function torch.zeros", "from no input"]),
    (nn.GRU(4, 5), lambda s, x: s.body(x)[0], SEQ, "body", ["batch_first=False"]),
    (nn.AdaptiveMaxPool2d(2), None, CONV, "body", ["output_size=2", "maximum to size 1"]),  # ceil_mode: issue 24
    (nn.MaxPool2d(2, dilation=2), None, CONV, "body", ["dilation"]),
    (nn.AvgPool2d(2, divisor_override=3), None, CONV, "body", ["divisor_override=3"]),
    (nn.Identity(), lambda s, x: F.max_pool2d(x, 2, dilation=2), CONV, "max_pool2d", ["dilation", "F.max_pool2d"]),
    (nn.Identity(), lambda s, x: F.avg_pool2d(x, 2, divisor_override=2), CONV, "avg_pool2d", ["divisor_override=2"]),
    (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), None, CONV, "body", ["padding_mode='reflect'"]),
    (nn.Softmax(dim=0), None, (3, 4), "body", ["softmax over dim 0"]),
    (nn.Linear(4, 4), _always_dropout, (3, 4), "dropout", ["training=True"]),
    (nn.Linear(6, 3), None, CONV, "body", ["width", "NCHW"]),
    (Scale(), None, (3, 4), "add", ["parameter 'body.scale'", "trainable"]),
    (nn.Linear(4, 4), lambda s, x: torch.exp(s.body(x)), (3, 4), "exp", ["torch.exp", "supported:"]),
])  # fmt: skip
def test_unsupported_nodes_are_refused_naming_them(body, fn, shape, node, words):
    with pytest.raises(UnsupportedLayer) as e:
        torch_import.from_module(Wrap(body, fn), shape, "net.py:model")
    msg = str(e.value)
    assert msg.startswith("net.py:model: ") and f"node {node!r}" in msg and "position" in msg, msg
    for w in words:
        assert w in msg, msg


def test_a_torch_model_needs_an_input_shape():
    with pytest.raises(BadInput, match=r"net.py:model: a torch model needs --input-shape \(for example"):
        torch_import.from_module(SmallCNN(), None, "net.py:model")


def test_an_untraceable_module_is_bad_input():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(BadInput, match="net.py:model: torch.fx cannot trace the module"):
        torch_import.from_module(Branchy(), (3, 4), "net.py:model")


def test_an_input_shape_that_does_not_fit_names_both_shapes():
    with pytest.raises(ShapeError) as e:
        torch_import.from_module(SmallCNN(), (3, 3, 13, 11), "net.py:model")
    msg = str(e.value)
    assert "3,3,13,11" in msg and "(B, 2, H, W)" in msg and "(3, 3, 13, 11)" in msg and "features_0" in msg, msg


# --------------------------------------------------------------------------- the round trip


@pytest.mark.parametrize("case", ["cnn", "gru"])
def test_round_trip_through_the_torch_port_in_a_clean_process(case, tmp_path):
    net, shape = (seeded(SmallCNN(), 8), (3, 2, 13, 11)) if case == "cnn" else (seeded(GRUClassifier("h[-1]", True), 9), (3, 6, 4))
    imported = torch_import.from_module(net, shape, "tests:net")
    out = tmp_path / "port"
    torch_port.write(imported.model, out)
    assert torch_code.generate(imported.model).inputs.kind == ("nchw" if case == "cnn" else "plain")  # drop-in: NCHW
    x = np.random.default_rng(10).uniform(-1.0, 1.0, shape).astype("float32")
    with torch.no_grad():
        own = net(torch.from_numpy(x)).numpy()
    got = run_port(out, x, tmp_path)  # the source's own layout in, the source's out
    assert_close(got, own, "float32", what=f"{case}: torch -> description -> torch port vs the original module")


def test_a_python_file_imports_through_the_dispatcher(tmp_path):
    from impls.importers import load

    src = tmp_path / "net.py"
    src.write_text("import torch\nfrom torch import nn\n\n"
                   "def make():\n    torch.manual_seed(0)\n"
                   "    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 3, 2))\n")
    imported = load(f"{src}:make", (3, 1, 6, 5))
    assert imported.source == "torch" and imported.path == f"{src}:make"
    assert [la.name for la in imported.model.layers] == ["0", "1", "2", "3"]
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (3, 6, 5, 1)).astype("float32")
    assert_close(imported.forward(x), reference_forward(imported.model, x.astype("float64")), "float32")
    with pytest.raises(BadInput, match="needs --input-shape"):
        load(f"{src}:make")
