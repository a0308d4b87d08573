"""The torch port's in-process build (impls/ports/torch_port/build.py): every layer's output from one forward
(Built.outputs), a build rebound to another model of the same structure (Built.rebind), and no file written.

On seeded models with non-symmetric weights, I != H, batch 3: a residual graph (add, concatenate), a CNN with a
flatten into dense (torch's (c, h, w) rows), both at either boundary, a channels_first 1-D map (NCW input, a flat
(c, l) map), a masked bidirectional LSTM / GRU model and an embedding model (mask_zero, a row of padding only):
    (a) outputs(x)[i] is the forward of the port's own build of model.sub(0, i + 1), for every i, at the float32 bar
        and in float64 to 1e-12 relative; the last is forward(x);
    (b) a planted bookkeeping bug (layer i's output reported for layer i + 1, a layout conversion dropped) is caught
        by that comparison;
    (c) rebind(other) computes what build(other) computes (forward, outputs, vjp) for a model of the same structure
        with other weights and other layer names, and generates, execs and writes nothing;
    (d) build writes no file (and loads none), and computes what the written port loaded by its own load() computes.
"""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from impls.contract.tolerance import assert_close, error_stats
from impls.layouts import PLAIN
from impls.model import seeded, voices
from impls.model.description import INPUT, Model
from impls.ports import torch_port

build_mod = importlib.import_module("impls.ports.torch_port.build")  # the package's `build` is the function
code_mod = importlib.import_module("impls.ports.torch_port.code")
files_mod = importlib.import_module("impls.ports.torch_port.files")

B, T, I, H, V = 3, 5, 4, 3, 9
BN = {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}


def residual(seed: int = 0, p: str = "", boundary: str = "channels_last") -> Model:
    """conv -> BN -> relu -> conv -> BN, + the input, relu, concatenated with the first relu, max pool, LayerNorm,
    global average pool, dense softmax: the maps held NCHW, kept tensors read again later."""
    return seeded.chain(f"{p}residual", (6, 5, 3), [
        ("conv2d", f"{p}conv1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
        ("batch_norm", f"{p}bn1", BN),
        ("activation", f"{p}relu1", {"activation": "relu"}),
        ("conv2d", f"{p}conv2", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", f"{p}bn2", BN),
        ("add", f"{p}add", {}, (f"{p}bn2", INPUT)),
        ("activation", f"{p}relu2", {"activation": "relu"}),
        ("concatenate", f"{p}cat", {}, (f"{p}relu2", f"{p}relu1")),
        ("max_pool2d", f"{p}pool", {"pool_size": [2, 2], "padding": "same"}),
        ("layer_norm", f"{p}ln", {"epsilon": 1e-5}),
        ("global_avg_pool", f"{p}gap", {}),
        ("dense", f"{p}fc", {"units": 4, "activation": "softmax"}),
    ], seed=seed, boundary=boundary, batch=B)  # fmt: skip


def cnn_flat(seed: int = 0, p: str = "", boundary: str = "channels_last") -> Model:
    """conv -> pool -> flatten -> dense -> dense: the flatten's output held in torch's (c, h, w) order (chw), the
    first dense's rows permuted to read it."""
    return seeded.chain(f"{p}cnn_flat", (7, 6, 2), [
        ("conv2d", f"{p}conv", {"filters": 3, "kernel_size": [3, 2], "strides": [2, 1], "activation": "tanh"}),
        ("max_pool2d", f"{p}pool", {"pool_size": [1, 2]}),
        ("flatten", f"{p}flat", {}),
        ("dense", f"{p}hidden", {"units": 5, "activation": "relu"}),
        ("dense", f"{p}out", {"units": 3, "activation": "softmax"}),
    ], seed=seed, boundary=boundary, batch=B)  # fmt: skip


def conv1d_map(seed: int = 0, p: str = "", boundary: str = "channels_first") -> Model:
    """A 1-D feature map (NCW at a channels_first boundary): conv1d -> BatchNorm1d -> flatten (c, l) -> dense."""
    return seeded.chain(f"{p}conv1d_map", (T + 2, I), [
        ("conv1d", f"{p}conv", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation": 2}),
        ("batch_norm", f"{p}bn", BN),
        ("flatten", f"{p}flat", {}),
        ("dense", f"{p}out", {"units": 2}),
    ], seed=seed, boundary=boundary, batch=B)  # fmt: skip


def masked_rnn(seed: int = 0, p: str = "", boundary: str = "channels_last") -> Model:
    """Masking -> bidirectional LSTM sequence (padded steps held) -> bidirectional GRU final states -> dense."""
    return seeded.chain(f"{p}masked_rnn", (T, I), [
        ("masking", f"{p}mask", {"mask_value": 0.5}),
        ("lstm", f"{p}l1", {"units": H, "return_sequences": True, "direction": "bidirectional",
                            "padded_outputs": "hold"}),
        ("gru", f"{p}g2", {"units": H + 1, "direction": "bidirectional"}),
        ("dense", f"{p}out", {"units": 2, "activation": "tanh"}),
    ], seed=seed, boundary=boundary, batch=B)  # fmt: skip


def embedded(seed: int = 0, p: str = "", boundary: str = "channels_last") -> Model:
    """Embedding (mask_zero) -> bidirectional GRU sequence (sum) -> dense per step -> LSTM final -> dense."""
    return seeded.chain(f"{p}embedded", (T,), [
        ("embedding", f"{p}emb", {"input_dim": V, "output_dim": I, "mask_zero": True}),
        ("gru", f"{p}g1", {"units": H, "return_sequences": True, "direction": "bidirectional", "merge_mode": "sum"}),
        ("dense", f"{p}per_step", {"units": 5, "activation": "tanh"}),
        ("lstm", f"{p}l2", {"units": H}),
        ("dense", f"{p}out", {"units": 4, "activation": "softmax"}),
    ], seed=seed, boundary=boundary, batch=B)  # fmt: skip


CASES = {"residual": (residual, "channels_last"), "residual_cf": (residual, "channels_first"),
         "cnn_flat": (cnn_flat, "channels_last"), "cnn_flat_cf": (cnn_flat, "channels_first"),
         "conv1d_cf": (conv1d_map, "channels_first"), "masked_rnn": (masked_rnn, "channels_last"),
         "embedded": (embedded, "channels_last")}  # fmt: skip


def case(name: str, seed: int = 0, p: str = "") -> Model:
    make, boundary = CASES[name]
    return make(seed, p, boundary)


def sample(model: Model, dtype: str, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    if model.layers[0].kind == "embedding":  # post-padded ids: lengths 5, 2 and 0 (a row of padding only)
        x = g.integers(1, V, (B, T))
        x[1, 2:] = 0
        x[2, :] = 0
        return x
    x = g.uniform(-1.0, 1.0, (B, *model.input_shape))
    if model.layers[0].kind == "masking":  # lengths 5, 3, 0
        x[1, 3:] = 0.5
        x[2, :] = 0.5
    return x.astype(dtype)


def close(a: np.ndarray, b: np.ndarray, dtype: str) -> bool:
    """a equals b at the float32 bar, or in float64 to 1e-12 relative; a wrong shape is not close."""
    if np.shape(a) != np.shape(b):
        return False
    return error_stats(a, b).rel <= (1e-12 if dtype == "float64" else 2e-5)


def wrong_layers(model: Model, dtype: str, outs: list[np.ndarray], x: np.ndarray) -> list[int]:
    """The layers whose one-pass output is not the forward of the port's build of layers 0..i."""
    return [i for i in range(len(model.layers))
            if not close(outs[i], torch_port.build(model.sub(0, i + 1), dtype).forward(x), dtype)]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_output_from_one_forward_is_the_prefix_build_s(name, dtype):
    model = case(name)
    x = sample(model, dtype)
    built = torch_port.build(model, dtype)
    outs = built.outputs(x)
    assert len(outs) == len(model.layers)
    assert wrong_layers(model, dtype, outs, x) == []
    assert close(outs[-1], built.forward(x), dtype)


@pytest.mark.parametrize("name", ["residual", "cnn_flat_cf", "masked_rnn"])
def test_a_tap_reported_for_the_next_layer_is_caught(name, monkeypatch):
    model, dtype = case(name), "float64"
    x = sample(model, dtype)
    recording = build_mod.Program.recording

    def shifted(self):
        fwd = recording(self)

        def forward(net, xn):
            y, taps = fwd(net, xn)
            return y, [taps[0], *taps[:-1]]  # layer i's output reported for layer i + 1

        return forward

    monkeypatch.setattr(build_mod.Program, "recording", shifted)
    outs = torch_port.build(model, dtype).outputs(x)
    assert wrong_layers(model, dtype, outs, x) != []


@pytest.mark.parametrize("name", ["cnn_flat", "residual_cf", "conv1d_cf"])
def test_a_dropped_layout_conversion_is_caught(name, monkeypatch):
    """One layer not held in the canonical layout reported as if it were (a flatten's (c, h, w) rows where there is
    one: the same shape, only torch's order; else the first map held NCHW)."""
    model, dtype = case(name), "float64"
    x = sample(model, dtype)
    generate = build_mod.generate

    def dropped(*args, **kwargs):
        code = generate(*args, **kwargs)
        held = [h.kind for h in code.held]
        i = held.index("chw") if "chw" in held else next(i for i, h in enumerate(held) if h != "plain")
        return dataclasses.replace(code, held=[*code.held[:i], PLAIN, *code.held[i + 1:]])

    monkeypatch.setattr(build_mod, "generate", dropped)
    built = torch_port.build(model, dtype)
    outs = built.outputs(x)
    bad = wrong_layers(model, dtype, outs, x)
    assert len(bad) == 1
    if name != "residual_cf":
        assert model.layers[bad[0]].kind == "flatten" and outs[bad[0]].shape == (B, int(np.prod(model.shapes(B)[bad[0]][1:])))


class Counted:
    """Counts the calls of the code generator, the source's text, the exec and the file writer."""

    def __init__(self, monkeypatch):
        self.calls = {"generate": 0, "module_source": 0, "exec_source": 0, "write": 0}
        for mod, name in ((build_mod, "generate"), (code_mod, "module_source"), (build_mod, "exec_source"),
                          (files_mod, "_write")):  # fmt: skip
            monkeypatch.setattr(mod, name, self.counting(getattr(mod, name), "write" if name == "_write" else name))

    def counting(self, fn, key):
        def wrapped(*args, **kwargs):
            self.calls[key] += 1
            return fn(*args, **kwargs)

        return wrapped


@pytest.mark.parametrize("name", list(CASES))
def test_rebind_computes_what_a_build_computes_and_generates_nothing(name, monkeypatch):
    dtype = "float64"
    first, other = case(name), case(name, seed=5, p="other_")
    assert voices.structure(first) == voices.structure(other)
    assert [la.name for la in first.layers] != [la.name for la in other.layers]
    x = sample(first, dtype)
    dy = np.random.default_rng(2).standard_normal(np.shape(torch_port.build(other, dtype).forward(x)))
    fresh = torch_port.build(other, dtype)
    want_y, want_outs, (want_dx, want_g) = fresh.forward(x), fresh.outputs(x), fresh.vjp(x, dy)

    built = torch_port.build(first, dtype)
    built.outputs(x)  # the recording variant is exec'd once a build: before the count
    counted = Counted(monkeypatch)
    again = built.rebind(other)
    y, outs, (dx, g) = again.forward(x), again.outputs(x), again.vjp(x, dy)
    assert counted.calls == {"generate": 0, "module_source": 0, "exec_source": 0, "write": 0}
    assert not close(built.forward(x), y, dtype)  # other weights: the first build is untouched, and differs
    assert close(y, want_y, dtype)
    assert all(close(a, b, dtype) for a, b in zip(outs, want_outs, strict=True))
    assert (dx is None) == (want_dx is None) and (dx is None or close(dx, want_dx, dtype))
    assert sorted(g) == sorted(want_g) and all(k[0].startswith("other_") for k in g)
    assert all(close(g[k], want_g[k], dtype) for k in g)
    assert type(again.native_model) is type(built.native_model)


def test_layer_builds_rebind_each_configuration(monkeypatch):
    """The certificate's isolated checks: one build per distinct layer configuration, the rest rebound."""
    dtype = "float32"
    twin = seeded.chain("twin", (T, I), [("dense", "d1", {"units": I}), ("dense", "d2", {"units": I}),
                                         ("dense", "d3", {"units": I})], seed=3, batch=B)  # fmt: skip
    builds = voices.LayerBuilds("torch_nn", dtype)
    counted = Counted(monkeypatch)
    x = sample(twin, dtype)
    for i in range(len(twin.layers)):
        sub = twin.sub(i).astype(dtype)
        assert_close(builds.get(sub).forward(x), torch_port.build(sub, dtype).forward(x), dtype)
    assert (builds.built, builds.rebound) == (1, 2)
    assert counted.calls["exec_source"] == 1 + 3  # the first build, and the three fresh builds compared with


def _refuse(*args, **kwargs):
    raise AssertionError("the in-process build wrote or read a file")


@pytest.mark.parametrize("name", ["residual_cf", "embedded"])
def test_build_writes_no_file(name, monkeypatch):
    model, dtype = case(name), "float64"
    x = sample(model, dtype)
    for mod, attr in ((torch, "save"), (torch, "load"), (files_mod, "_write"), (files_mod, "_import"),
                      (tempfile, "TemporaryDirectory"), (tempfile, "mkdtemp"), (pathlib.Path, "write_text"),
                      (pathlib.Path, "write_bytes"), (np, "save"), (np, "savez")):  # fmt: skip
        monkeypatch.setattr(mod, attr, _refuse)
    built = torch_port.build(model, dtype)
    y = built.forward(x)
    assert close(built.outputs(x)[-1], y, dtype)
    assert close(built.rebind(case(name, seed=4, p="q_")).forward(x), torch_port.build(case(name, 4, "q_"), dtype).forward(x),
                 dtype)  # fmt: skip
    dy = np.ones_like(y)
    built.vjp(x, dy)
    torch_port.train_step(model, x, np.eye(y.shape[-1])[np.arange(B) % y.shape[-1]], dtype)


@pytest.mark.parametrize("name", ["residual", "cnn_flat_cf", "masked_rnn", "embedded"])
def test_build_is_the_written_port(name, tmp_path):
    """The in-process module has the written model.py's text, and state dict, of the written weights.pt."""
    model, dtype = case(name), "float64"
    torch_port.write(model, tmp_path)
    built = torch_port.build(model, dtype)
    net, code = torch_port.load_port(model, dtype)
    assert (tmp_path / "model.py").read_text() == code.source == torch_port.generate(model, dtype).source
    mine, written = built.native_model.state_dict(), net.state_dict()
    assert list(mine) == list(written)
    assert all(mine[k].dtype == written[k].dtype and torch.equal(mine[k], written[k]) for k in mine)
    loaded = torch.load(tmp_path / "weights.pt", weights_only=True)  # num_batches_tracked: (1,) there, () loaded
    assert all(torch.equal(mine[k], loaded[k].reshape(mine[k].shape)) for k in mine)
    x = sample(model, dtype)
    with torch.no_grad():
        want = code.outputs.to_canonical(net(built.to_native(x)).numpy())
    assert close(built.forward(x), want, dtype)


def test_the_written_source_has_no_taps():
    """The recording variant differs from model.py only by its tap lines and its return."""
    model = case("residual")
    plain, taps = torch_port.generate(model, "float32"), torch_port.generate(model, "float32", taps=True)
    assert "taps" not in plain.source
    kept = [line for line in taps.source.splitlines() if "taps" not in line]
    assert kept == [line for line in plain.source.splitlines() if line != "        return x"]
    assert taps.source.count("taps.append(x)") == len(model.layers) and "return x, taps" in taps.source
    assert taps.held == plain.held and taps.state.keys() == plain.state.keys()
