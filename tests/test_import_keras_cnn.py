"""The Keras importer on issue 18's models: a time-series classifier (Conv1D -> BatchNormalization -> ReLU, three
times, GlobalAveragePooling1D, Dense) and a functional residual block (Conv2D -> BN -> ReLU -> Conv2D -> BN, Add with
the block's input, ReLU, GlobalAveragePooling2D, Dense), saved as .keras and loaded back with safe_mode on. Each
imported description agrees with the Keras model at the float32 bar, layer by layer and in training mode (the moving
statistics Keras' own BatchNormalization moves against the reference's); the port back to Keras loads in a fresh
`python -I` with keras.saving.load_model alone and agrees with the source; `nnparity certify x.keras --no-bench`
exits 0 on both. Also: LayerNormalization, global max pools, Reshape, Permute, a Flatten inside, Concatenate(axis),
strided / dilated / grouped Conv1D in one functional graph, and the refusals with their reasons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import assert_close
from impls.importers import UnsupportedLayer
from impls.model.compose import reference_forward, reference_outputs, reference_train

keras_import = pytest.importorskip("impls.importers.keras_import")
keras_port = pytest.importorskip("impls.ports.keras_port")
keras = frameworks.load("keras")
L = keras.layers
BATCH = 3


def randomise(net, seed: int):
    """Seeded, non-symmetric weights; a BatchNormalization's gamma around 1, moving_variance in [0.5, 2], moving_mean
    and beta non-zero (Keras initialises them to 1 and 0, which would hide an untranslated statistic)."""
    g = np.random.default_rng(seed)
    for la in net.layers:
        new = []
        for v in la.weights:
            shape, name = tuple(v.shape), v.path.split("/")[-1]
            lo, hi = {"gamma": (0.5, 1.5), "moving_variance": (0.5, 2.0)}.get(name, (-0.5, 0.5))
            new.append(g.uniform(lo, hi, shape).astype(v.dtype))
        la.set_weights(new)
    return net


def time_series_classifier():
    """keras.io's time-series classification from scratch, small: (Conv1D -> BN -> ReLU) x 3 -> GAP1D -> Dense."""
    x = keras.Input((12, 3))
    y = x
    for i, (f, pad) in enumerate(((6, "same"), (5, "causal"), (4, "valid"))):
        y = L.Conv1D(f, 3, padding=pad, name=f"conv{i}")(y)
        y = L.BatchNormalization(name=f"bn{i}")(y)
        y = L.ReLU(name=f"relu{i}")(y)
    y = L.GlobalAveragePooling1D(name="gap")(y)
    return randomise(keras.Model(x, L.Dense(3, activation="softmax", name="probs")(y), name="ts_classifier"), 1)


def residual_block():
    x = keras.Input((6, 5, 3))
    y = L.Conv2D(3, 3, padding="same", name="conv1")(x)
    y = L.ReLU(name="relu1")(L.BatchNormalization(name="bn1")(y))
    y = L.BatchNormalization(momentum=0.9, epsilon=1e-4, name="bn2")(L.Conv2D(3, 3, padding="same", name="conv2")(y))
    y = L.ReLU(name="relu2")(L.Add(name="add")([y, x]))
    y = L.GlobalAveragePooling2D(name="gap")(y)
    return randomise(keras.Model(x, L.Dense(4, name="out")(y), name="residual_block"), 2)


def misc_graph():
    """The other new kinds in one functional graph: a grouped, strided and a dilated Conv1D, LayerNormalization, a
    Concatenate on the time axis, Permute, Reshape, a Flatten followed by a Dense, global max pools."""
    x = keras.Input((10, 4))
    a = L.Conv1D(4, 3, strides=2, groups=2, padding="same", name="strided")(x)  # (5, 4)
    b = L.Conv1D(4, 2, dilation_rate=2, name="dilated")(x)  # (8, 4)
    b = L.LayerNormalization(name="ln")(b)
    t = L.Concatenate(axis=1, name="cat_time")([a, b])  # (13, 4)
    p = L.Permute((2, 1), name="perm")(t)  # (4, 13)
    m = L.GlobalMaxPooling1D(name="gmp")(p)  # (13,)
    r = L.Reshape((2, 2, 4), name="rs")(L.Flatten(name="flat")(L.Dense(4, name="d1")(p)))  # (4, 4) -> 16 -> (2, 2, 4)
    r = L.GlobalMaxPooling2D(name="gmp2")(r)
    return randomise(keras.Model(x, L.Concatenate(name="cat")([m, r]), name="misc"), 3)


def data(shape, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.5, shape).astype("float32")


MODELS = {"ts": time_series_classifier, "res": residual_block, "misc": misc_graph}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """{name: (the Keras model, its .keras path, the import of that file)}."""
    d = tmp_path_factory.mktemp("keras_cnn")
    out = {}
    for name, make in MODELS.items():
        net = make()
        net.save(d / f"{name}.keras")
        out[name] = (net, d / f"{name}.keras", keras_import.load_file(d / f"{name}.keras", None))
    return out


def test_the_descriptions_are_the_graphs(saved):
    ts = saved["ts"][2].model
    assert [la.kind for la in ts.layers] == ["conv1d", "batch_norm", "activation"] * 3 + ["global_avg_pool", "dense"]
    assert ts.is_chain() and [la.options["padding"] for la in ts.layers if la.kind == "conv1d"] == ["same", "causal", "valid"]
    bn = ts.layers[1]
    assert bn.options == {"momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True, "variance_update": "biased"}
    assert set(ts.state()) == {(f"bn{i}", s) for i in range(3) for s in ("moving_mean", "moving_var")}
    assert ("bn0", "moving_var") not in ts.parameters() and ("bn0", "gamma") in ts.parameters()
    net = saved["ts"][0]
    np.testing.assert_array_equal(bn.weights["moving_var"], np.asarray(net.get_layer("bn0").moving_variance))
    res = saved["res"][2].model
    add = res.layers[res.layer_index("add")]
    assert not res.is_chain() and add.kind == "add" and add.inputs == ("bn2", "input")
    assert res.layers[res.layer_index("bn2")].options["momentum"] == 0.9
    assert res.layers[res.layer_index("bn2")].options["epsilon"] == 1e-4
    misc = saved["misc"][2].model
    assert {la.name: la.kind for la in misc.layers}["rs"] == "reshape"
    assert misc.layers[misc.layer_index("cat_time")].options == {"axis": 1}


@pytest.mark.parametrize("name", list(MODELS))
def test_import_matches_the_source_whole_and_layer_by_layer(saved, name):
    net, _, imported = saved[name]
    model = imported.model
    x = data((BATCH, *model.input_shape))
    want = np.asarray(net(x, training=False))
    assert_close(reference_forward(model, x.astype("float64")), want, "float32", what=f"{name} import")
    assert_close(imported.forward(x), want, "float32", what=f"{name} source")
    refs = reference_outputs(model, x.astype("float64"))
    for i, (got, ref) in enumerate(zip(imported.layer_outputs(x), refs, strict=True)):
        assert_close(got, ref, "float32", what=f"{name} layer {i} {model.layers[i].name}")


@pytest.mark.parametrize("name", ["ts", "res"])
def test_keras_training_mode_moves_the_moving_statistics_as_the_reference(saved, name):
    """Keras' own BatchNormalization called with training=True (batch statistics, momentum as is) against
    compose.reference_train on the import: the output and every moving statistic after the call."""
    _, path, imported = saved[name]
    net = keras.saving.load_model(path)  # a fresh copy: the call moves its statistics
    model = imported.model
    x = data((BATCH, *model.input_shape), seed=9)
    y = np.asarray(net(x, training=True))
    outs, state = reference_train(model, x.astype("float64"))
    assert_close(y, outs[-1], "float32", what=f"{name} training-mode output")
    assert set(state) == set(model.state())
    for (layer, w), v in state.items():
        kv = net.get_layer(layer).moving_mean if w == "moving_mean" else net.get_layer(layer).moving_variance
        assert_close(np.asarray(kv), v, "float32", what=f"{name} {layer}/{w} after the training call")
        assert not np.allclose(v, model.state()[(layer, w)], atol=1e-4)  # the call moved it


LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    out = {}
    for name, path, x_path in json.loads(sys.argv[1]):
        m = keras.saving.load_model(path, safe_mode=True)
        out[name] = np.asarray(m(np.load(x_path, allow_pickle=False), training=False)).tolist()
    out["nnparity loaded"] = sorted(k for k in sys.modules if k.split(".")[0] in ("impls", "nnparity"))
    print(json.dumps(out))
""")


def test_the_port_back_to_keras_loads_in_keras_alone_and_agrees_with_the_source(saved, tmp_path):
    jobs, xs = [], {}
    for name, (net, _, imported) in saved.items():
        out = tmp_path / f"{name}_port.keras"
        assert keras_port.write(imported.model, out) == [out]
        xs[name] = data((BATCH, *imported.model.input_shape), seed=11)
        np.save(tmp_path / f"{name}_x.npy", xs[name])
        jobs.append([name, str(out), str(tmp_path / f"{name}_x.npy")])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    r = subprocess.run([sys.executable, "-I", "-c", LOADER, json.dumps(jobs)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got.pop("nnparity loaded") == []
    for name, (net, _, _) in saved.items():
        assert_close(np.asarray(got[name]), np.asarray(net(xs[name], training=False)), "float32", what=f"{name} port")


@pytest.mark.parametrize("name", ["ts", "res"])
def test_certify_passes(saved, name, tmp_path):
    from nnparity import cli

    status = cli.main(["certify", str(saved[name][1]), "--no-bench", "-o", str(tmp_path / "cert")])
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    keras_row = cert["training"]["voices"]["keras"]
    assert keras_row["pass"]
    moving = [w for w in keras_row["weights"] if w["tensor"].endswith(("moving_mean", "moving_var"))]
    assert len(moving) == 2 * sum(la.kind == "batch_norm" for la in saved[name][2].model.layers) and all(w["pass"] for w in moving)


# --------------------------------------------------------------------------- refusals


def _functional(make, shape):
    x = keras.Input(shape)
    return keras.Model(x, make(x))


def _shared():
    conv = L.Conv1D(4, 1, name="c")
    return _functional(lambda x: L.Add()([conv(x), conv(x)]), (5, 4))


REFUSED = {
    "bn on axis 1": (lambda: _functional(lambda x: L.BatchNormalization(axis=1, name="bn")(x), (5, 4)),
                     r"'bn'.*axis=1 .*only the last axis"),
    "ln on two axes": (lambda: _functional(lambda x: L.LayerNormalization(axis=[1, 2], name="ln")(x), (5, 4)),
                       r"'ln'.*axis=\[1, 2\].*only the last axis"),
    "gmp1d keepdims": (lambda: _functional(lambda x: L.GlobalMaxPooling1D(keepdims=True, name="gp")(x), (5, 4)),
                       r"'gp'.*keepdims=True"),
    "conv1d channels_first": (lambda: _functional(lambda x: L.Conv1D(2, 2, data_format="channels_first", name="c")(x), (5, 4)),
                              r"'c'.*channels_first"),
    "shared conv": (lambda: _shared(), r"'c'.*2 places.*shares its weights"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_each_refusal_names_the_layer_and_the_reason(case):
    make, pattern = REFUSED[case]
    with pytest.raises(UnsupportedLayer, match=pattern) as e:
        keras_import.from_model(make(), None, "net.py:m")
    assert str(e.value).startswith("net.py:m: ")


@pytest.mark.parametrize("pool", ["GlobalAveragePooling2D", "GlobalMaxPooling2D"])
def test_a_map_pooled_with_keepdims_imports_as_one_window_over_the_map(pool):
    """MobileNet's and MobileNetV3's heads and squeeze-excitation: GlobalAveragePooling2D(keepdims=True) is
    adaptive_avg_pool2d to (1, 1), GlobalMaxPooling2D(keepdims=True) a max_pool2d whose one window is the map (5 x 6,
    not square), each (B, 1, 1, C) read by a 1 x 1 convolution, agreeing with Keras layer by layer."""
    def head(x):
        y = L.Conv2D(3, 3, activation="tanh", name="c0")(x)
        g = getattr(L, pool)(keepdims=True, name="gp")(y)
        return L.Flatten(name="f")(L.Conv2D(4, 1, name="c1")(g))

    net = _functional(head, (7, 8, 2))
    randomise(net, 5)
    imported = keras_import.from_model(net, None, "net.py:m")
    model = imported.model
    assert model.layers[1].kind == ("adaptive_avg_pool2d" if pool.startswith("GlobalAverage") else "max_pool2d")
    assert tuple(model.shapes(3)[2]) == (3, 1, 1, 3)  # [0] is the input
    x = data((BATCH, 7, 8, 2))
    want = np.asarray(net(x, training=False))
    assert_close(reference_forward(model, x.astype("float64")), want, "float32", what=f"{pool} keepdims import")
    refs = reference_outputs(model, x.astype("float64"))
    for i, (got, ref) in enumerate(zip(imported.layer_outputs(x), refs, strict=True)):
        assert_close(got, ref, "float32", what=f"layer {i} {model.layers[i].name}")
