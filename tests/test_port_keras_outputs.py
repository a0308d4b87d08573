"""The Keras voice's build gives every layer's output from one forward, and rebinds to other weights (issue 27).

`Built.outputs` runs a second functional keras.Model over the port's own Keras layers whose outputs are every
description layer's last Keras tensor (inside the boundary's permutes: the canonical layout). Each must equal the
forward of the voice's own build of `model.sub(0, i + 1)`, on a residual graph, CNNs of a channels_first source (a
flatten into a dense, a flatten returned in (c, h, w) order, a 4-D map and a 3-D feature map at the boundary), masked
bidirectional LSTM/GRU stacks and embedding models. A tap reported one layer late, a description layer's first Keras
layer tapped instead of its last, or the boundary's permutes left on a tap, must fail that comparison. `rebind`
computes what a fresh build of the other model computes and builds no Keras layer, makes no tf.function and traces
nothing again; `build` writes no file.
"""

from __future__ import annotations

import builtins
import tempfile

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import error_stats, tolerance
from impls.model import seeded
from impls.model.description import INPUT
from impls.model.voices import LayerBuilds
from impls.model.voices import build as voice_build

keras_port = pytest.importorskip("impls.ports.keras_port")
assembly, voice = keras_port.assembly, keras_port.voice

keras = frameworks.load("keras")
tf = frameworks.load("tensorflow")
B, T = 3, 5
LENGTHS = [5, 2, 0]
pytestmark = pytest.mark.filterwarnings("ignore:Layer '.*' \\(of type Cropping1D\\) was passed an input with a mask")
BARS = {"float32": tolerance("float32"), "float64": 1e-12}

RESIDUAL = [
    ("conv2d", "stem", {"filters": 4, "kernel_size": [3, 3], "padding": [[1, 1], [0, 2]]}),
    ("batch_norm", "bn0", {"epsilon": 1e-3}),
    ("activation", "relu0", {"activation": "relu"}),
    ("conv2d", "c1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "activation": "tanh"}),
    ("conv2d", "c2", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
    ("add", "res", {}, ("c2", "relu0")),
    ("conv2d", "side", {"filters": 2, "kernel_size": [1, 1]}, ("relu0",)),
    ("concatenate", "cat", {"axis": -1}, ("res", "side")),
    ("global_avg_pool", "gap", {}),
    ("dense", "out", {"units": 5, "activation": "softmax"}),
]  # fmt: skip
RES_CF = [  # a torch source's residual block: the input added back, then reshaped, permuted, flattened into a dense
    ("conv2d", "c1", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
    ("batch_norm", "b1", {}),
    ("activation", "r1", {"activation": "relu"}),
    ("add", "add", {}, ("r1", INPUT)),
    ("concatenate", "cat", {"axis": -1}, ("add", "c1")),
    ("global_max_pool", "gmp", {}),
    ("reshape", "rs", {"target_shape": [2, -1]}),
    ("permute", "pm", {"dims": [2, 1]}),
    ("flatten", "fl", {}),
    ("dense", "out", {"units": 4}),
]  # fmt: skip
CNN_DENSE = [  # pads in front of a conv and of a pool (two Keras layers each), a flatten into a dense
    ("conv2d", "c1", {"filters": 5, "kernel_size": [3, 3], "padding": [[1, 0], [0, 1]], "activation": "relu"}),
    ("avg_pool2d", "ap", {"pool_size": [2, 3], "strides": [2, 2], "padding": [[1, 0], [0, 1]], "count_include_pad": True}),
    ("flatten", "fl", {}),
    ("dense", "d1", {"units": 6, "activation": "tanh"}),
    ("dropout", "do", {"rate": 0.3}),
    ("dense", "d2", {"units": 4, "activation": "softmax"}),
]  # fmt: skip
CNN_FLAT = [  # returns a flatten: the features leave in the source's (c, h, w) order
    ("conv2d", "c1", {"filters": 3, "kernel_size": [3, 3], "strides": [2, 1]}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 2], "padding": "same"}),
    ("flatten", "fl", {}),
    ("activation", "act", {"activation": "sigmoid"}),
]  # fmt: skip
CNN_MAP = [  # returns a 4-D map: Permute at both ends
    ("conv2d", "c1", {"filters": 6, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
    ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "activation": "tanh"}),
    ("zero_pad2d", "zp", {"padding": [[1, 0], [0, 2]]}),
    ("batch_norm", "bn", {"scale": False}),
]  # fmt: skip
TS_CF = [  # a (B, C, L) feature map in and out
    ("conv1d", "c1", {"filters": 4, "kernel_size": 3, "padding": [1, 2]}),
    ("batch_norm", "b1", {}),
    ("activation", "r1", {"activation": "relu"}),
    ("conv1d", "c2", {"filters": 5, "kernel_size": 2, "padding": "causal", "dilation": 2}),
]  # fmt: skip
MASKED = [
    ("masking", "mk", {"mask_value": 0.0}),
    ("lstm", "l1", {"units": 3, "return_sequences": True}),
    ("dense", "td", {"units": 4, "activation": "tanh"}),
    ("gru", "g2", {"units": 2, "variant": "reset_before", "direction": "bidirectional", "merge_mode": "ave"}),
]  # fmt: skip
EMB_LSTM = [  # take_step is a Cropping1D then a Reshape
    ("embedding", "emb", {"input_dim": 11, "output_dim": 4, "mask_zero": True}),
    ("lstm", "bi", {"units": 3, "direction": "bidirectional", "merge_mode": "concat", "return_sequences": True}),
    ("take_step", "last", {"index": -1}),
    ("dense", "out", {"units": 5, "activation": "softmax"}),
]  # fmt: skip
EMB_GRU = [
    ("embedding", "emb", {"input_dim": 9, "output_dim": 5}),
    ("gru", "bi", {"units": 3, "direction": "bidirectional", "merge_mode": "sum"}),
    ("dense", "out", {"units": 2}),
]  # fmt: skip

CASES = {  # name: (specs, input shape, boundary)
    "residual": (RESIDUAL, (7, 6, 3), "channels_last"),
    "res_cf": (RES_CF, (6, 5, 3), "channels_first"),
    "cnn_dense_cf": (CNN_DENSE, (9, 8, 3), "channels_first"),
    "cnn_dense": (CNN_DENSE, (9, 8, 3), "channels_last"),
    "cnn_flat_cf": (CNN_FLAT, (8, 7, 2), "channels_first"),
    "cnn_map_cf": (CNN_MAP, (6, 7, 3), "channels_first"),
    "ts_cf": (TS_CF, (8, 3), "channels_first"),
    "masked_bi": (MASKED, (T, 4), "channels_last"),
    "emb_lstm": (EMB_LSTM, (T,), "channels_last"),
    "emb_gru": (EMB_GRU, (T,), "channels_last"),
}


def make(name: str, seed: int = 1, suffix: str = ""):
    """CASES[name] with seeded weights (seed) and every layer's name + suffix, and its input."""
    specs, shape, boundary = CASES[name]
    renamed = [(s[0], s[1] + suffix, s[2], *([tuple(i if i == INPUT else i + suffix for i in s[3])] if len(s) > 3 else []))
               for s in specs]  # fmt: skip
    model = seeded.chain(name + suffix, shape, renamed, seed=seed, boundary=boundary, batch=B)
    rng = np.random.default_rng(seed + 100)
    if model.input_dtype == "int64":
        x = rng.integers(1, specs[0][2]["input_dim"], (B, T))
        for b, n in enumerate(LENGTHS if specs[0][2].get("mask_zero") else []):
            x[b, n:] = 0
        return model, x.astype("int64")
    x = rng.uniform(-1.0, 1.5, (B, *shape))
    if specs[0][0] == "masking":
        for b, n in enumerate(LENGTHS):
            x[b, n:] = 0.0
    return model, x


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float("inf") if a.shape != b.shape else error_stats(a, b).rel


def mismatches(model, x, dtype: str) -> list[str]:
    """The layers whose output from the whole build's one forward is not the forward of the voice's own build of
    layers 0..i (over the dtype's bar), and the last one where it is not forward(x)."""
    built = voice_build("keras", model, dtype)
    outs = built.outputs(x)
    assert len(outs) == len(model.layers)
    bad = [f"{i} {la.name}: {rel(outs[i], y):.2e}" for i, la in enumerate(model.layers)
           for y in (voice_build("keras", model.sub(0, i + 1), dtype).forward(x),) if not rel(outs[i], y) <= BARS[dtype]]  # fmt: skip
    if not rel(outs[-1], built.forward(x)) <= BARS[dtype]:
        bad.append(f"the last output is not forward(x): {rel(outs[-1], built.forward(x)):.2e}")
    return bad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_every_layer_output_is_the_forward_of_its_prefix(name, dtype):
    model, x = make(name)
    assert mismatches(model, x, dtype) == []


def test_the_cases_cover_graphs_boundaries_and_layers_of_several_keras_layers():
    assert not make("residual")[0].is_chain() and not make("res_cf")[0].is_chain()
    assert make("cnn_flat_cf")[0].flattened_output() is not None
    assert keras_port.boundary_perms(make("cnn_map_cf")[0], False) == ((2, 3, 1), (3, 1, 2))
    assert keras_port.boundary_perms(make("ts_cf")[0], False) == ((2, 1), (2, 1))
    net = keras_port.keras_model(make("cnn_dense_cf")[0], "float64")
    assert {"c1_pad", "ap_pad"} <= {la.name for la in net.layers}


# --------------------------------------------------------------------------- planted bookkeeping bugs


def test_a_layer_reported_one_late_is_caught(monkeypatch):
    monkeypatch.setattr(assembly, "layer_tensors", lambda per: [ps[-1].output for ps in [per[0], *per[:-1]]])
    model, x = make("residual")
    assert mismatches(model, x, "float64")


def test_a_layers_first_keras_layer_tapped_instead_of_its_last_is_caught(monkeypatch):
    monkeypatch.setattr(assembly, "layer_tensors", lambda per: [ps[0].output for ps in per])
    for name in ("cnn_dense_cf", "emb_lstm"):  # a pad in front of the conv and the pool; take_step's crop
        model, x = make(name)
        assert mismatches(model, x, "float64"), name


@pytest.mark.parametrize("name", ["cnn_flat_cf", "cnn_map_cf", "ts_cf"])
def test_the_boundarys_permutes_left_on_the_last_tap_are_caught(name, monkeypatch):
    """The model's own output (the source's layout: NCHW, (c, h, w) features, (B, C, L)) reported as the last
    layer's: the conversion to canonical dropped."""
    real = assembly.tapped

    def planted(model, dtype="float32"):
        net, mains, taps = real(model, dtype)
        outs = taps.outputs
        return net, mains, keras.Model(net.inputs[0], [*outs[:-1], net.outputs[0]])

    monkeypatch.setattr(voice, "tapped", planted)
    model, x = make(name)
    assert mismatches(model, x, "float64")


# --------------------------------------------------------------------------- rebind


@pytest.fixture
def counted(monkeypatch):
    """Counts of what building costs: assemblies, Keras layers made, tf.functions made, and their traces."""
    made: list = []
    n = {"assemble": 0, "layers": 0}
    real_function, real_assemble, real_init = tf.function, assembly._assemble, keras.Layer.__init__

    def function(*a, **k):
        f = real_function(*a, **k)
        if hasattr(f, "experimental_get_tracing_count"):  # not tf.function(jit_compile=...)'s decorator
            made.append(f)
        return f

    def assemble(*a, **k):
        n["assemble"] += 1
        return real_assemble(*a, **k)

    def init(self, *a, **k):
        n["layers"] += 1
        return real_init(self, *a, **k)

    monkeypatch.setattr(tf, "function", function)
    monkeypatch.setattr(assembly, "_assemble", assemble)
    monkeypatch.setattr(keras.Layer, "__init__", init)

    def snapshot() -> dict:
        return {**n, "functions": len(made), "traces": sum(f.experimental_get_tracing_count() for f in made)}

    return snapshot


@pytest.mark.parametrize("name", ["residual", "cnn_dense_cf", "masked_bi", "emb_lstm"])
def test_rebind_computes_the_other_models_build_and_builds_and_traces_nothing(name, counted):
    a, x = make(name, seed=1)
    b, _ = make(name, seed=5, suffix="_b")
    first = voice_build("keras", a, "float64")
    dy = np.random.default_rng(7).normal(size=first.forward(x).shape)
    want_a = (first.forward(x), first.outputs(x))
    before = counted()
    assert before["assemble"] == 1 and before["layers"] > 0 and before["functions"] >= 2 and before["traces"] >= 2
    again = first.rebind(b)
    got = (again.forward(x), again.outputs(x))
    after = counted()
    assert after == before  # no assembly, no Keras layer, no tf.function, no trace

    fresh = voice_build("keras", b, "float64")
    assert rel(got[0], fresh.forward(x)) <= 1e-12 and rel(got[0], want_a[0]) > 1e-3
    assert all(rel(g, f) <= 1e-12 for g, f in zip(got[1], fresh.outputs(x), strict=True))
    dx, grads = again.vjp(x, dy)
    fdx, fgrads = fresh.vjp(x, dy)
    assert sorted(grads) == sorted(fgrads) and all(k[0].endswith("_b") for k in grads)
    assert all(rel(grads[k], fgrads[k]) <= 1e-12 for k in grads)
    assert dx is None if fdx is None else rel(dx, fdx) <= 1e-12
    assert again.notes == fresh.notes

    # the earlier Built still computes its own model: its weights go back in when it runs
    assert rel(first.forward(x), want_a[0]) == 0.0
    assert all(rel(o, w) == 0.0 for o, w in zip(first.outputs(x), want_a[1], strict=True))
    assert rel(again.forward(x), got[0]) == 0.0


def test_layer_builds_rebind_each_layer_configuration(counted):
    """certify's isolated checks: one-layer models of one structure are built once and rebound."""
    model, _ = make("residual")
    twins = [model.sub(i).astype("float32") for i in (3, 4)]  # c1 (tanh) and c2: different activations
    same = [make("residual", seed=s)[0].sub(4).astype("float32") for s in (1, 2, 3)]  # c2 again: rebound
    builds = LayerBuilds("keras", "float32")
    for m in [*twins, *same]:
        builds.get(m)
    assert (builds.built, builds.rebound) == (2, 3)
    assert counted()["assemble"] == 2


def test_rebind_refuses_another_structure():
    a, _ = make("residual")
    other, _ = make("cnn_dense")
    with pytest.raises(ValueError, match="same structure"):
        voice_build("keras", a, "float32").rebind(other)


# --------------------------------------------------------------------------- no files


def test_build_outputs_and_rebind_write_no_file(monkeypatch, tmp_path):
    model, x = make("cnn_dense_cf")
    other, _ = make("cnn_dense_cf", seed=4, suffix="_b")

    class Wrote(AssertionError):
        pass

    def refuse(*a, **k):
        raise Wrote("a file was written, saved or loaded")

    real_open = builtins.open

    def opened(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+"):
            raise Wrote(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *a, **k)

    for owner, attr in [(keras.Model, "save"), (keras.saving, "save_model"), (keras.saving, "load_model"),
                        (tempfile, "TemporaryDirectory"), (tempfile, "mkdtemp"), (tempfile, "NamedTemporaryFile"),
                        (np, "save"), (np, "savez"), (np, "load")]:  # fmt: skip
        monkeypatch.setattr(owner, attr, refuse)
    monkeypatch.setattr(builtins, "open", opened)
    built = voice_build("keras", model, "float32")
    built.forward(x)
    built.outputs(x)
    built.rebind(other).outputs(x)
    with pytest.raises(Wrote):  # the writer is what these catch
        keras_port.write(model, tmp_path / "net.keras")
