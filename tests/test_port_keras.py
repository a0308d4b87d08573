"""The Keras port (impls/ports/keras_port.py) on models built here: forward, vjp and one Adam step against the NumPy
float64 reference, every refusal with its reason, and the written .keras file loaded back by keras.saving.load_model
alone in a fresh process (no impls there), both with the source's boundary and with native_layout."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from impls import convert, frameworks
from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.description import Model
from impls.model.layers.gru import weights as gru_weights
from impls.model.voices import build as voice_build

keras_port = pytest.importorskip("impls.ports.keras_port")
keras = frameworks.load("keras")
BATCH = 3


def chain(name: str, input_shape: tuple, specs: list[tuple[str, str, dict]], seed: int = 0, boundary: str = "channels_last") -> Model:
    """A model of (kind, name, options) layers with seeded, non-symmetric weights and non-zero biases."""
    return seeded.chain(name, input_shape, specs, seed, boundary, BATCH)


CNN = [
    ("conv2d", "c1", {"filters": 6, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "activation": "relu"}),
    ("zero_pad2d", "zp", {"padding": [[1, 0], [0, 2]]}),
    ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "activation": "tanh"}),
    ("conv2d", "c2", {"filters": 6, "kernel_size": [3, 3], "dilation": [2, 1], "groups": 3, "padding": [[1, 2], [0, 1]],
                      "activation": "sigmoid"}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}),
    ("avg_pool2d", "ap", {"pool_size": [2, 3], "strides": [2, 2], "padding": "same"}),
    ("flatten", "fl", {}),
    ("dense", "d1", {"units": 10, "activation": "relu"}),
    ("dropout", "do", {"rate": 0.3}),
    ("dense", "d2", {"units": 7}),
    ("activation", "act", {"activation": "tanh"}),
    ("dense", "d3", {"units": 5, "activation": "softmax"}),
]  # fmt: skip
CNN_INPUT = (12, 14, 4)


def cnn_last() -> Model:
    return chain("cnn", CNN_INPUT, CNN, seed=1)


def cnn_first() -> Model:
    """The CNN as a torch source would hold it (NCHW boundary), its pool counting explicit pads."""
    specs = [s if s[1] != "ap" else ("avg_pool2d", "ap", {"pool_size": [2, 3], "strides": [2, 2],
                                                          "padding": [[1, 0], [0, 1]], "count_include_pad": True})
             for s in CNN]  # fmt: skip
    return chain("cnn_cf", CNN_INPUT, specs, seed=2, boundary="channels_first")


def cnn_map() -> Model:
    """An NCHW model returning a 4-D map: Permute at both ends; avg pool 'same' counting its pads."""
    specs = [*CNN[:4], ("avg_pool2d", "ap", {"pool_size": [3, 2], "strides": [2, 2], "padding": "same", "count_include_pad": True}),
             ("activation", "sig", {"activation": "sigmoid"})]  # fmt: skip
    return chain("cnn_map", CNN_INPUT, specs, seed=3, boundary="channels_first")


def gru_model(variant: str) -> Model:
    specs = [
        ("gru", "g1", {"units": 5, "variant": variant, "return_sequences": True}),
        ("dense", "td", {"units": 6, "activation": "tanh"}),  # on the 3-D output's last axis
        ("gru", "g2", {"units": 4, "variant": variant, "return_sequences": False}),
        ("dense", "out", {"units": 3, "activation": "softmax"}),
    ]
    return chain(f"gru_{variant}", (7, 3), specs, seed=4)


MODELS = {"cnn": cnn_last, "cnn_cf": cnn_first, "cnn_map": cnn_map, "gru_ra": lambda: gru_model("reset_after"),
          "gru_rb": lambda: gru_model("reset_before")}  # fmt: skip


def data(model: Model, seed: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.5, (BATCH, *model.input_shape))


# --------------------------------------------------------------------------- forward, vjp, train step


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_build_forward_matches_the_reference(name, dtype):
    model = MODELS[name]()
    x = data(model)
    built = voice_build("keras", model, dtype)
    assert built.mode == "tf.function" and built.native_model is not None
    y = built.forward(x)
    assert y.dtype == np.dtype(dtype)
    assert_close(y, reference_forward(model, x), dtype, what=f"keras port {name} {dtype}")
    # the timed call takes the port's own layout: NCHW where the source's boundary is channels_first
    native = built.to_native(x)
    assert tuple(native.shape) == ((BATCH, 4, 12, 14) if model.boundary == "channels_first" else (BATCH, *CNN_INPUT)
                                   if name.startswith("cnn") else (BATCH, 7, 3))  # fmt: skip


@pytest.mark.parametrize("name", ["cnn", "cnn_map", "gru_ra", "gru_rb"])
def test_vjp_matches_the_reference(name):
    model = MODELS[name]()
    x = data(model)
    y = reference_forward(model, x)
    dy = np.random.default_rng(11).standard_normal(y.shape)
    dx, grads = keras_port.build(model, "float64").vjp(x, dy)
    rdx, rgrads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters())
    assert_close(dx, rdx, "float64", what=f"{name} dx")
    for key, g in rgrads.items():
        assert_close(grads[key], g, "float64", what=f"{name} d{key}")
    if name == "cnn_map":  # step: the timed fwd+bwd (tf.function) on native arrays gives the same dx
        built = keras_port.build(model, "float32")
        gx = built.step(built.to_native(x), built.to_native(dy))[0]
        assert_close(built.to_numpy(gx), rdx, "float32", what=f"{name} step dx")


def _project_keras_bias(model: Model) -> Model:
    """reset_before GRUs as Keras holds them: b_x + b_h in b_x, b_h = 0 (convert.keras_single_bias)."""
    out = model
    for i, la in enumerate(model.layers):
        if la.kind == "gru":
            w = convert.keras_single_bias(gru_weights(la.weights))
            out = out.replace_layer(i, dataclasses.replace(la, weights={"W": w.W, "U": w.U, "b_x": w.b_x, "b_h": w.b_h}))
    return out


@pytest.mark.parametrize("name", ["cnn", "cnn_map", "gru_ra", "gru_rb"])
def test_train_step_matches_the_reference_step(name):
    model = MODELS[name]()
    x = data(model)
    y = reference_forward(model, x)
    if training.loss_kind(model) == "categorical_crossentropy":
        training.check_unsaturated(y)
    t = training.targets(model, y, seed=12)
    loss, after = keras_port.train_step(model, x, t, "float64")
    ref_model = _project_keras_bias(model) if name == "gru_rb" else model
    ref_loss, ref_after = training.reference_step(ref_model, x, t, "keras")
    assert training.loss_kind(model) == ("mse" if name == "cnn_map" else "categorical_crossentropy")
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    assert set(after) == set(model.parameters())
    moved = 0
    for key, w in ref_after.items():
        if name == "gru_rb" and key[1] == "b_h":  # Keras' one bias: a declared difference (train_notes)
            assert np.all(after[key] == 0)
            continue
        assert_close(after[key], w, "float64", what=f"{name} {key} after one Adam step")
        moved += not np.allclose(w, model.parameters()[key], rtol=0, atol=1e-6)
    assert moved >= 3  # the step changed the weights (an untouched model would not match)
    assert bool(keras_port.train_notes(model)) == (name == "gru_rb")


# --------------------------------------------------------------------------- refusals


def _one(kind: str, opts: dict, input_shape: tuple) -> Model:
    return chain(f"one_{kind}", input_shape, [(kind, "the_layer", opts)])


REFUSED = {
    "gru seed": (lambda: _one("gru", {"units": 4, "variant": "seed"}, (5, 3)), "variant 'seed' has no Keras layer"),
    "gru chung": (lambda: _one("gru", {"units": 4, "variant": "chung"}, (5, 3)), "variant 'chung' has no Keras layer"),
    "conv strided dilated": (lambda: _one("conv2d", {"filters": 2, "kernel_size": [3, 3], "strides": [2, 2], "dilation": [2, 2]},
                                          (11, 11, 2)), "refuse strides > 1 together with dilation_rate > 1"),
    "depthwise strided dilated": (lambda: _one("depthwise_conv2d", {"kernel_size": [2, 2], "strides": [2, 1], "dilation": [1, 2]},
                                               (9, 9, 2)), "refuse strides > 1 together with dilation_rate > 1"),
    # explicit pads of a max or an average pool port since issue 24 (tests/test_pool_shape.py)
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_each_refusal_is_raised_with_its_reason(case, tmp_path):
    make, reason = REFUSED[case]
    model = make()
    why = keras_port.refusal(model, "float32")
    assert why is not None and reason in why and "'the_layer'" in why
    with pytest.raises(Refused, match="the_layer"):
        keras_port.build(model, "float32")
    with pytest.raises(Refused, match="the_layer"):
        keras_port.write(model, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_names_keras_forbids_are_made_keras_names():
    model = chain("onnx_like", (6, 4), [("dense", "/fc/Gemm", {"units": 3}), ("dense", "_fc_Gemm", {"units": 2})])
    net = keras_port.keras_model(model)
    assert [la.name for la in net.layers] == ["_fc_Gemm", "_fc_Gemm_1"]
    x = data(model)
    assert_close(keras_port.build(model, "float64").forward(x), reference_forward(model, x), "float64")


def test_names_tensorflow_scopes_refuse_run_under_tf_function():
    """Keras takes 'conv same s2' or 'gru.0 (rb)' as a layer name and '_my model' as a model's, but TensorFlow's name
    scopes do not: tf.function (build's forward, model.predict) raised on them until they were made scope names."""
    model = chain("_my model", (5, 3), [("gru", "gru.0 (rb)", {"units": 4, "variant": "reset_before"}),
                                        ("dense", "out probs!", {"units": 2}),
                                        ("activation", "dw:x2 é", {"activation": "tanh"})])  # fmt: skip
    net = keras_port.keras_model(model)
    assert net.name == "model_my_model" and [la.name for la in net.layers] == ["gru.0__rb_", "out_probs_", "dw_x2__"]
    x = data(model)
    assert_close(keras_port.build(model, "float64").forward(x), reference_forward(model, x), "float64")
    assert_close(net.predict(x.astype("float32"), verbose=0), reference_forward(model, x), "float32")


def test_explicit_pool_pads_that_are_tensorflows_same_port_as_same():
    """tf2onnx writes Keras' AveragePooling2D(3, 2, padding='same') on a 5 x 6 map as pads [1, 0, 1, 1]: read back as
    explicit pads they were refused ('pads only valid or same'), though they are 'same' on this input."""
    model = chain("pools", (5, 6, 2), [
        ("avg_pool2d", "avg", {"pool_size": [3, 3], "strides": [2, 2], "padding": [[1, 1], [0, 1]]}),
        ("max_pool2d", "max", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[0, 1], [0, 1]]}),
        ("flatten", "flat", {})])  # fmt: skip
    assert keras_port.refusal(model, "float32") is None
    net = keras_port.keras_model(model)
    assert [(la.name, la.padding) for la in net.layers[:2]] == [("avg", "same"), ("max", "same")]
    x = data(model)
    assert_close(keras_port.build(model, "float64").forward(x), reference_forward(model, x), "float64")
    other = chain("pools", (5, 6, 2), [("avg_pool2d", "avg", {"pool_size": [3, 3], "strides": [2, 2],
                                                              "padding": [[1, 1], [1, 0]]}), ("flatten", "flat", {})])  # fmt: skip
    assert keras_port.refusal(other, "float32") is None  # not 'same' here: pads and a per-window divisor (issue 24)
    assert [type(la).__name__ for la in keras_port.keras_model(other).layers[:3]] == ["ZeroPadding2D",
                                                                                       "AveragePooling2D", "Rescaling"]
    x = data(other)
    assert_close(keras_port.build(other, "float64").forward(x), reference_forward(other, x), "float64")


def test_a_dtype_without_a_port_is_refused():
    why = keras_port.refusal(gru_model("reset_after"), "float16")
    assert why is not None and "float16" in why
    assert keras_port.refusal(gru_model("reset_after"), "float64") is None


# --------------------------------------------------------------------------- the written port, loaded by Keras alone

LOADER = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import keras
    jobs = json.loads(sys.argv[1])
    for path, x_path, y_path in jobs:
        m = keras.saving.load_model(path, safe_mode=True)  # no custom objects
        np.save(y_path, np.asarray(m(np.load(x_path, allow_pickle=False), training=False)))
        print(os.path.basename(path), m.name)
    assert "impls" not in sys.modules and "nnparity" not in sys.modules, "the port imported nnparity"
    print("clean")
""")


WRITTEN = [(n, False) for n in MODELS] + [("cnn_cf", True), ("cnn_map", True), ("gru_ra", True)]
"""native_layout changes what a channels_first port takes; on the others it only names the model."""


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Every WRITTEN port, then loaded and run in one fresh process: {(name, native): (model, x, y, keras name, path)}."""
    root = tmp_path_factory.mktemp("keras_ports")
    ports, elsewhere = root / "ports", root / "cwd"
    ports.mkdir()
    elsewhere.mkdir()
    jobs, cases = [], {}
    for name, native in WRITTEN:
        model = MODELS[name]()
        out = ports / f"{name}_{int(native)}.keras"
        assert keras_port.write(model, out, native_layout=native) == [out]
        x = data(model, seed=20).astype("float32")
        feed = convert.nhwc_to_nchw(x) if model.boundary == "channels_first" and not native else x
        np.save(root / f"{out.stem}_x.npy", feed)
        jobs.append([str(out), str(root / f"{out.stem}_x.npy"), str(root / f"{out.stem}_y.npy")])
        cases[(name, native)] = (model, x, root / f"{out.stem}_y.npy", out)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(ports), KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", LOADER, json.dumps(jobs)], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().endswith("clean")
    names = dict(line.split(" ", 1) for line in run.stdout.strip().splitlines()[:-1])
    return {k: (m, x, np.load(y, allow_pickle=False), names[out.name], out) for k, (m, x, y, out) in cases.items()}


@pytest.mark.parametrize(("name", "native"), WRITTEN)
def test_written_port_loads_in_keras_alone_and_matches_the_reference(written, name, native):
    model, x, y, keras_name, _ = written[(name, native)]
    ref = reference_forward(model, x.astype("float64"))
    four_d_out = ref.ndim == 4
    if model.boundary == "channels_first" and not native and four_d_out:
        y = convert.nchw_to_nhwc(y)  # the drop-in port returns the source's NCHW
    assert_close(y, ref, "float32", what=f"written keras port {name} native_layout={native}")
    assert ("native_layout" in keras_name) == native


def test_written_port_names_its_layers_after_the_description(written):
    model, _, _, _, out = written[("cnn_cf", False)]
    net = keras.saving.load_model(out)
    names = [la.name for la in net.layers]
    assert names[0] == "to_nhwc" and "c2_pad" in names and "ap_pad" in names
    assert [n for n in names if n in {la.name for la in model.layers}] == [la.name for la in model.layers]
    assert tuple(net.inputs[0].shape[1:]) == (4, 12, 14)
    native = keras.saving.load_model(written[("cnn_cf", True)][4])
    assert tuple(native.inputs[0].shape[1:]) == CNN_INPUT and "to_nhwc" not in [la.name for la in native.layers]
