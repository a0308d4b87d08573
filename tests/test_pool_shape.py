"""Issue 24's pooling and shape constructs, from each source to each target, as a user runs them.

- Sources, each a user's file: a torch module with resnet's stem pool (MaxPool2d(3, 2, 1): explicit pads over signed
  values), squeezenet's MaxPool2d(ceil_mode=True), AvgPool2d(ceil_mode=True) counting and not counting its pads, an
  AdaptiveAvgPool2d to a size that grows an axis and F.adaptive_avg_pool2d to one that shrinks it; that module (its
  adaptive pools tiling the map) exported to ONNX by torch.onnx.export; a Keras model with AdaptiveAveragePooling2D.
  Each imports, and its description's reference agrees with the source, layer by layer.
- `nnparity port` of each to torch, Keras, ONNX and Flax, each loaded back by its own framework in a fresh
  interpreter that never imports nnparity, agreeing with the source at the float32 bar.
- Planted convention bugs, each caught: ceil_mode sized with floor; the adaptive window's end floored (one cell
  short); the Keras port's max pool padded with zeros over negative inputs.
"""

from __future__ import annotations

import json
import os
import runpy
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.importers import load
from impls.model import seeded, voices
from impls.model.compose import reference_forward, reference_outputs
from nnparity import cli
from tests.alone import run_alone
from tests.test_elementwise import LOADER
from verify.conftest import load_framework

BAR = tolerance("float32")

TORCH_NET = """
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self, adaptive=True):
        super().__init__()
        self.adaptive = adaptive
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.stem_pool = nn.MaxPool2d(3, 2, 1)  # resnet's: pads over signed values
        self.ceil_max = nn.MaxPool2d(3, 2, ceil_mode=True)  # squeezenet's
        self.ceil_avg = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True)
        self.ceil_avg_uncounted = nn.AvgPool2d(2, 2, padding=1, ceil_mode=True, count_include_pad=False)
        self.grow = nn.AdaptiveAvgPool2d((5, 3))
        self.fc = nn.Linear(4 * 6 if adaptive else 4 * 9, 3)

    def forward(self, x):
        y = self.ceil_avg_uncounted(self.ceil_avg(self.ceil_max(self.stem_pool(self.conv(x)))))
        if self.adaptive:  # torch.onnx refuses them ('output size that are not factor of input size')
            y = F.adaptive_avg_pool2d(self.grow(y), (3, 2))  # 2x2 -> 5x3 -> 3x2
        return self.fc(torch.flatten(y, 1))


torch.manual_seed(0)
model = Net().eval()
"""

SHUFFLE_NET = """
import torch
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle


class Net(nn.Module):  # shufflenet_v2's unit of stride 1, then split, cat, a cat of one tensor, a crop and a slice
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.branch = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())
        self.fc = nn.Linear(8 * 2 * 5, 3)

    def forward(self, x):
        x = self.conv(x)
        x1, x2 = x.chunk(2, dim=1)
        out = channel_shuffle(torch.cat((x1, self.branch(x2)), dim=1), 2)
        a, b, c = torch.split(out, [2, 3, 3], dim=1)
        out = torch.cat([torch.cat((c, b, a), dim=1)], 1)  # densenet's cat of a list holding one tensor
        out = out[:, :, 1:, :-1]  # a crop of H and W
        out = out[:, :, 2:4]  # a slice of H
        return self.fc(torch.flatten(out, 1))


torch.manual_seed(0)
model = Net().eval()
"""

KERAS_SHAPES = """
import keras

L = keras.layers
keras.utils.set_random_seed(0)
x = keras.Input((7, 6, 3))
y = L.Conv2D(6, 3, padding="same", name="conv")(x)
y = L.Cropping2D(((1, 2), (0, 1)), name="crop")(y)
y = L.Reshape((4, 5, 3, 2), name="groups")(y)  # a channel shuffle as Keras code writes it
y = L.Permute((1, 2, 4, 3), name="swap")(y)
y = L.Reshape((20, 6), name="steps")(y)
y = L.Cropping1D((2, 3), name="crop_steps")(y)
model = keras.Model(x, L.Dense(3, name="out")(L.Flatten(name="flat")(y)))
"""

KERAS_NET = """
import keras

L = keras.layers
keras.utils.set_random_seed(0)
x = keras.Input((9, 8, 3))
y = L.Conv2D(4, 3, name="conv")(x)
y = L.AdaptiveAveragePooling2D((4, 3), name="adaptive")(y)
model = keras.Model(x, L.Dense(3, name="out")(L.Flatten(name="flat")(y)))
"""

SHAPE = (3, 3, 21, 19)
"""The last pool drops a window on H (torch's rule: it would start in the trailing pad), each ceil pool overhangs."""
ONNX_SHAPE = (3, 3, 23, 24)
"""For the ONNX source no ceil_mode pool drops a window: where one does, onnx's shape inference keeps it and ONNX
Runtime refuses to load torch.onnx's file ('Dimension mismatch in unification between 16 and 36' at the Gemm). The
ONNX importer's shapes and the ONNX port handle the drop (verify/test_pool_shape_layers.py, the ONNX port)."""


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """name -> (spec, --input-shape or None, x in the source's layout, the source's own output there, Imported)."""
    torch = load_framework("torch")
    load_framework("keras"), load_framework("onnxruntime"), load_framework("flax"), load_framework("torchvision")
    d = tmp_path_factory.mktemp("pools")
    (d / "torch_net.py").write_text(textwrap.dedent(TORCH_NET))
    (d / "keras_net.py").write_text(textwrap.dedent(KERAS_NET))
    g = np.random.default_rng(3)
    out = {}
    ns = runpy.run_path(str(d / "torch_net.py"))
    x = g.uniform(-1, 1, SHAPE).astype(np.float32)
    with torch.no_grad():
        want = ns["model"](torch.from_numpy(x)).numpy()
    out["torch"] = (f"{d / 'torch_net.py'}:model", ",".join(map(str, SHAPE)), x, want, load(f"{d / 'torch_net.py'}:model", SHAPE))
    torch.manual_seed(1)
    tiling = ns["Net"](adaptive=False).eval()
    x = g.uniform(-1, 1, ONNX_SHAPE).astype(np.float32)  # no ceil_mode pool drops a window (see below)
    with torch.no_grad():
        want = tiling(torch.from_numpy(x)).numpy()
    torch.onnx.export(tiling, torch.from_numpy(x), str(d / "torch_net.onnx"), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})  # fmt: skip
    out["onnx"] = (str(d / "torch_net.onnx"), None, x, want, load(str(d / "torch_net.onnx"), None))
    imported = load(f"{d / 'keras_net.py'}:model", (3, 9, 8, 3))
    x = g.uniform(-1, 1, (3, 9, 8, 3)).astype(np.float32)
    out["keras"] = (f"{d / 'keras_net.py'}:model", "3,9,8,3", x, np.asarray(runpy.run_path(str(d / "keras_net.py"))["model"](x)), imported)
    (d / "shuffle_net.py").write_text(textwrap.dedent(SHUFFLE_NET))
    (d / "keras_shapes.py").write_text(textwrap.dedent(KERAS_SHAPES))
    net = runpy.run_path(str(d / "shuffle_net.py"))["model"]
    x = g.uniform(-1, 1, (3, 3, 7, 6)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    out["shuffle"] = (f"{d / 'shuffle_net.py'}:model", "3,3,7,6", x, want, load(f"{d / 'shuffle_net.py'}:model", x.shape))
    torch.onnx.export(net, torch.from_numpy(x), str(d / "shuffle_net.onnx"), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})  # fmt: skip
    out["shuffle_onnx"] = (str(d / "shuffle_net.onnx"), None, x, want, load(str(d / "shuffle_net.onnx"), None))
    x = g.uniform(-1, 1, (3, 7, 6, 3)).astype(np.float32)
    want = np.asarray(runpy.run_path(str(d / "keras_shapes.py"))["model"](x))
    out["keras_shapes"] = (f"{d / 'keras_shapes.py'}:model", "3,7,6,3", x, want, load(f"{d / 'keras_shapes.py'}:model", x.shape))
    return {"folder": d, **out}


def _nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


@pytest.mark.parametrize("name, kinds", [
    ("torch", {"max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"}),
    ("onnx", {"max_pool2d", "avg_pool2d"}),
    ("keras", {"adaptive_avg_pool2d"}),
    ("shuffle", {"slice", "channel_shuffle", "concatenate", "crop2d"}),
    ("shuffle_onnx", {"slice", "channel_shuffle", "concatenate"}),  # torch.onnx slices H and W by one Slice each
    ("keras_shapes", {"crop2d", "slice", "reshape", "permute"}),
])  # fmt: skip
def test_each_source_imports_and_its_description_agrees_layer_by_layer(sources, name, kinds):
    _, _, x, want, imported = sources[name]
    m = imported.model
    assert kinds <= {la.kind for la in m.layers}, [la.kind for la in m.layers]
    xc = (x if name.startswith("keras") else _nhwc(x)).astype(np.float64)
    got, ref = imported.forward(xc), reference_forward(m, xc)
    assert error_stats(got, ref).rel <= BAR
    assert error_stats(got, want).rel <= BAR  # the source's own output
    for i, (got, r) in enumerate(zip(imported.layer_outputs(xc), reference_outputs(m, xc), strict=True)):
        assert error_stats(got, r).rel <= BAR, f"{name}: {m.layers[i].label(i)}"
    if name in ("torch", "onnx"):
        ceil = [la.options for la in m.layers if la.options.get("ceil_mode")]
        assert len(ceil) == 3 and {c.get("count_include_pad") for c in ceil} == {None, True, False}, ceil
    if name.startswith("shuffle"):  # chunk: two slices, split: three, a shuffle of 2 groups; cat([x]) no layer
        assert [la.options["groups"] for la in m.layers if la.kind == "channel_shuffle"] == [2]
        assert sum(la.kind == "slice" for la in m.layers) == (6 if name == "shuffle" else 8)
        assert sum(la.kind == "concatenate" for la in m.layers) == 2
    if name == "torch":
        assert [la.options["output_size"] for la in m.layers if la.kind == "adaptive_avg_pool2d"] == [[5, 3], [3, 2]]


def test_ports_load_with_their_own_frameworks_and_agree_with_the_sources(sources, capsys):
    d = sources["folder"]
    ports, cwd = [], Path.cwd()
    try:
        os.chdir(d)
        for name in ("torch", "onnx", "keras", "shuffle", "shuffle_onnx", "keras_shapes"):
            spec, shape, x, want, _ = sources[name]
            np.save(f"{name}_x.npy", x)
            np.save(f"{name}_want.npy", np.asarray(want, np.float32))
            for target, path in (("torch", f"{name}_torch"), ("keras", f"{name}.keras"), ("onnx", f"{name}.onnx"),
                                 ("flax", f"{name}_flax")):  # fmt: skip
                if name in ("onnx", "shuffle_onnx") and target == "onnx":
                    continue
                argv = ["port", spec, "--to", target, "-o", path] + (["--input-shape", shape] if shape else [])
                assert cli.main(argv) == 0, (argv, capsys.readouterr().err)
                ports.append((name, target, path))
        Path("ports.json").write_text(json.dumps(ports))
    finally:
        os.chdir(cwd)
    got = run_alone(LOADER, d)
    assert len(got) == len(ports) and all(err <= BAR for err in got.values()), got


# --------------------------------------------------------------------------- planted convention bugs


def _caught(spec: str, shape: tuple, x: np.ndarray, want: np.ndarray) -> bool:
    """Whether the imported description's reference disagrees with the source's own output beyond the float32 bar
    (or cannot be built)."""
    try:
        got = reference_forward(load(spec, shape).model, _nhwc(x).astype(np.float64))
    except Exception:  # noqa: BLE001 - a shape the planted rule cannot even build is caught too
        return True
    return got.shape != want.shape or error_stats(got, want).rel > BAR


def test_a_planted_floor_for_ceil_is_caught(sources, monkeypatch):
    from impls.model.layers import pool2d

    spec, _, x, want, _ = sources["torch"]
    assert not _caught(spec, SHAPE, x, want)
    monkeypatch.setattr(pool2d, "ceil_size", lambda n, k, s, before, after: (n + before + after - k) // s + 1)
    assert _caught(spec, SHAPE, x, want)


@pytest.mark.parametrize("bug", ["end floored", "start ceiled"])
def test_a_planted_adaptive_window_off_by_one_is_caught(sources, monkeypatch, bug):
    from impls.model.layers import adaptive_pool

    spec, _, x, want, _ = sources["torch"]
    assert not _caught(spec, SHAPE, x, want)
    if bug == "end floored":
        planted = lambda n, out: [((i * n) // out, max((i + 1) * n // out, (i * n) // out + 1)) for i in range(out)]
    else:
        planted = lambda n, out: [(min(-(-(i * n) // out), n - 1), -(-((i + 1) * n) // out)) for i in range(out)]
    monkeypatch.setattr(adaptive_pool, "windows", planted)
    assert _caught(spec, SHAPE, x, want)


def test_a_planted_zero_pad_in_the_keras_max_pool_is_caught(monkeypatch):
    """Over negative inputs a zero pad wins at every border: the Keras port's pads hold the lowest finite value."""
    from impls.ports.keras_port import pooling

    m = seeded.chain("mp", (6, 5, 2), [("max_pool2d", "mp", {"pool_size": [3, 3], "strides": [2, 2],
                                                              "padding": [[1, 1], [1, 0]]})], seed=3)  # fmt: skip
    x = np.random.default_rng(6).uniform(-2, -0.5, (3, 6, 5, 2))
    ref = reference_forward(m, x)
    assert error_stats(voices.build("keras", m, "float64").forward(x), ref).rel <= tolerance("float64")
    real = pooling.counted
    monkeypatch.setattr(pooling, "counted", lambda opts, in_shape, avg: (real(opts, in_shape, avg)[0],
                                                                         np.ones_like(real(opts, in_shape, avg)[1])))
    assert error_stats(voices.build("keras", m, "float64").forward(x), ref).rel > BAR


def test_the_keras_port_of_explicit_pads_is_built_in_layers_only():
    """A max pool's pads: ZeroPadding2D, a Rescaling of offset the lowest float32 on the padded cells, a 'valid'
    MaxPooling2D; an average not counting its pads ends in a Rescaling by area / count, held in float64 even in a
    float32 model (25 / 9 is not a float32: the model run in float64 divides by the exact count)."""
    from impls.ports import keras_port

    m = seeded.chain("pads", (6, 5, 2), [
        ("max_pool2d", "mp", {"pool_size": [3, 3], "strides": [1, 1], "padding": [[2, 0], [1, 1]]}),
        ("avg_pool2d", "ap", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[1, 0], [0, 1]]}),
        ("avg_pool2d", "ap5", {"pool_size": [5, 5], "strides": [1, 1], "padding": [[2, 2], [1, 3]]})], seed=3)  # fmt: skip
    net = keras_port.keras_model(m, "float32")
    kinds = [type(la).__name__ for la in net.layers]
    assert kinds == ["ZeroPadding2D", "Rescaling", "MaxPooling2D", "ZeroPadding2D", "AveragePooling2D", "Rescaling",
                     "ZeroPadding2D", "AveragePooling2D", "Rescaling"]  # fmt: skip
    floor = net.layers[1].offset
    assert np.min(floor) == np.finfo(np.float32).min and np.max(floor) == 0
    h, w = 6 - 1 + 1, 5 + 1 - 1  # the map the 5x5 pool sees: after the 2x2 pool of pads (1, 0), (0, 1)
    rows = np.array([min(i + 3, h) - max(i - 2, 0) for i in range(h)])
    cols = np.array([min(j + 4, w) - max(j - 1, 0) for j in range(w)])  # pads 1 left, 3 right
    scale = np.asarray(net.layers[-1].scale)
    assert scale.dtype == np.float64 and np.array_equal(scale[..., 0], 25 / np.outer(rows, cols))


def test_a_planted_shuffle_without_its_transpose_is_caught(sources, monkeypatch):
    """The kind's reshape, swap, reshape without the swap is no shuffle: the description leaves torch's source."""
    from impls.model.layers import slicing

    spec, _, x, want, _ = sources["shuffle"]
    assert not _caught(spec, x.shape, x, want)
    monkeypatch.setattr(slicing.ChannelShuffle, "forward", lambda self, ops, x, opts, w: x)
    assert _caught(spec, x.shape, x, want)


def test_a_planted_keras_shuffle_without_its_permute_is_caught(monkeypatch):
    from impls.ports.keras_port import slicing

    m = seeded.chain("shuffle", (3, 2, 6), [("channel_shuffle", "s", {"groups": 3}), ("flatten", "f", {})], seed=3)
    x = np.random.default_rng(6).uniform(-1, 1, (3, 3, 2, 6))
    ref = reference_forward(m, x)
    assert error_stats(voices.build("keras", m, "float64").forward(x), ref).rel <= tolerance("float64")
    real = slicing.channel_shuffle
    monkeypatch.setattr(slicing.keras.layers, "Permute", lambda dims, **kw: slicing.keras.layers.Identity(**kw))
    assert error_stats(voices.build("keras", m, "float64").forward(x), ref).rel > BAR
    assert real is slicing.channel_shuffle


def test_chunk_and_split_pieces_of_any_count():
    """x.chunk(3, dim=1) of 8 channels is 3, 3, 2; x.split(3, dim=2) of 7 rows 3, 3, 1; torch.split(x, [1, 4], -1)."""
    torch = load_framework("torch")
    from impls.importers import torch_import

    class M(torch.nn.Module):
        def forward(self, x):
            a, b, c = x.chunk(3, dim=1)
            p, q, r = x.split(3, dim=2)
            u, v = torch.split(x, [1, 4], -1)
            return torch.cat((c, a, b), 1).sum() * 0 + torch.cat((r, p, q), 2)[:, :, :, :4] + torch.cat((v, u), -1)[:, :, :, :4]

    x = np.random.default_rng(8).uniform(-1, 1, (3, 8, 7, 5)).astype(np.float32)
    with pytest.raises(Exception):  # noqa: B017 - the sum is outside the description; the pieces themselves:
        torch_import.from_module(M(), x.shape, "net.py:model")

    class Pieces(torch.nn.Module):
        def forward(self, x):
            a, b, c = x.chunk(3, dim=1)
            p, q, r = x.split(3, dim=2)
            u, v = torch.split(x, [1, 4], -1)
            return torch.cat((torch.cat((c, a, b), 1), torch.cat((r, p, q), 2), torch.cat((v, u), -1)), 1)

    imported = torch_import.from_module(Pieces(), x.shape, "net.py:model")
    slices = [(la.options["axis"], la.options["start"], la.options["stop"]) for la in imported.model.layers if la.kind == "slice"]
    assert slices == [(-1, 0, 3), (-1, 3, 6), (-1, 6, 8), (1, 0, 3), (1, 3, 6), (1, 6, 7), (2, 0, 1), (2, 1, 5)]
    with torch.no_grad():
        want = Pieces()(torch.from_numpy(x)).numpy()
    got = reference_forward(imported.model, _nhwc(x).astype(np.float64))
    assert error_stats(np.transpose(got, (0, 3, 1, 2)), want).rel <= BAR


def test_onnx_light_shufflenet_imports_its_channel_shuffles():
    """ONNX's shipped light_shufflenet (IR 3, its weights ConstantOfShape nodes): folded, its shapes inferred (IR 3
    wants every initializer a graph input; the folded weights are not, and inference gave no shapes before the
    rebuilt model said IR 4), each Reshape / Transpose / Reshape a channel_shuffle of 4 groups."""
    onnx = load_framework("onnx")
    path = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_shufflenet.onnx"
    if not path.exists():
        pytest.skip(f"{path} is not in this onnx wheel")
    m = load(str(path), None).model
    shuffles = [la.options["groups"] for la in m.layers if la.kind == "channel_shuffle"]
    assert len(shuffles) == 16 and set(shuffles) == {4}
    assert {"avg_pool2d", "max_pool2d", "concatenate", "add"} <= {la.kind for la in m.layers}
    from impls.ports import keras_port, onnx_port

    assert keras_port.refusal(m, "float32") is None and onnx_port.refusal(m, "float32") is None


def test_the_shuffle_unit_certifies(sources, tmp_path, capsys):
    """`nnparity certify --no-bench` of the torch source (chunk, cat, channel shuffle, split, crop, slice) passes: the
    source's own layers checked one by one too (a chunk's piece run alone takes the chunk of its input, not [i] of
    the batch)."""
    spec, shape, _, _, _ = sources["shuffle"]
    assert cli.main(["certify", spec, "--input-shape", shape, "--no-bench", "-o", str(tmp_path / "cert")]) == 0, \
        capsys.readouterr().err  # fmt: skip
    text = (tmp_path / "cert" / "certificate.md").read_text()
    assert "**Verdict: PASS**" in text, text[:2000]


def test_torch_pads_asymmetric_and_negative():
    """F.pad(x, (1, 0, 2, 1)) is an asymmetric zero_pad2d, nn.ZeroPad2d of negative pads a crop2d; a pad that both
    adds and crops is refused naming the node."""
    torch = load_framework("torch")
    from impls.importers import UnsupportedLayer, torch_import

    F = torch.nn.functional

    class Pads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(2, 3, 2)
            self.crop = torch.nn.ZeroPad2d((-1, 0, -2, -1))

        def forward(self, x):
            return self.crop(self.conv(F.pad(x, (1, 0, 2, 1))))

    x = np.random.default_rng(9).uniform(-1, 1, (3, 2, 7, 6)).astype(np.float32)
    torch.manual_seed(0)
    net = Pads()
    imported = torch_import.from_module(net, x.shape, "net.py:model")
    assert [(la.kind, la.options) for la in imported.model.layers if la.kind != "conv2d"] == [
        ("zero_pad2d", {"padding": [[2, 1], [1, 0]]}), ("crop2d", {"cropping": [[2, 1], [1, 0]]})]
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    got = reference_forward(imported.model, _nhwc(x).astype(np.float64))
    assert error_stats(np.transpose(got, (0, 3, 1, 2)), want).rel <= BAR

    class Mixed(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.pad(x, (1, -1, 0, 0))

    with pytest.raises(UnsupportedLayer, match="both pads and crops"):
        torch_import.from_module(Mixed(), x.shape, "net.py:model")
