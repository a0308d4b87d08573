"""The Keras port on issue 18's kinds and graphs, built here as seeded descriptions: Conv1D (same, causal, explicit
pads through ZeroPadding1D, dilation, groups, strides), BatchNormalization (momentum, epsilon, center/scale, moving
statistics), LayerNormalization, global pools, Reshape, Permute, a Flatten inside, Add and Concatenate in a
functional keras.Model. Forward in float32 and float64, every gradient, one Adam step returning the parameters AND
the moving statistics against training.reference_step, a channels_first source's (B, C, L) boundary, the refusals,
and the written graph loaded by Keras alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from impls import frameworks
from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.voices import build as voice_build

keras_port = pytest.importorskip("impls.ports.keras_port")
trainref = pytest.importorskip("nnparity.trainref")
keras = frameworks.load("keras")
BATCH = 3

TS = [
    ("conv1d", "c1", {"filters": 4, "kernel_size": 3, "padding": "same"}),
    ("batch_norm", "b1", {}),
    ("activation", "r1", {"activation": "relu"}),
    ("conv1d", "c2", {"filters": 5, "kernel_size": 2, "padding": "causal", "dilation": 2}),
    ("batch_norm", "b2", {"momentum": 0.9, "epsilon": 1e-4, "center": False}),
    ("dropout", "do", {"rate": 0.4}),
    ("conv1d", "c3", {"filters": 4, "kernel_size": 3, "padding": [1, 2], "groups": 1}),
    ("layer_norm", "ln", {"scale": False}),
    ("global_avg_pool", "gap", {}),
    ("dense", "out", {"units": 3, "activation": "softmax"}),
]  # fmt: skip
RES = [
    ("conv2d", "c1", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
    ("batch_norm", "b1", {}),
    ("activation", "r1", {"activation": "relu"}),
    ("conv2d", "c2", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
    ("batch_norm", "b2", {"scale": False}),
    ("add", "add", {}, ("b2", "input")),
    ("activation", "r", {"activation": "relu"}),
    ("concatenate", "cat", {"axis": -1}, ("r", "c1")),
    ("global_max_pool", "gmp", {}),
    ("reshape", "rs", {"target_shape": [2, -1]}),
    ("permute", "pm", {"dims": [2, 1]}),
    ("flatten", "fl", {}),
    ("dense", "out", {"units": 4}),
]  # fmt: skip
STRIDED = [
    ("conv1d", "s", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 2}),
    ("global_max_pool", "gmp", {}),
]  # fmt: skip


def models():
    return {
        "ts": seeded.chain("ts", (8, 3), TS, seed=1, batch=BATCH),
        "res": seeded.chain("res", (6, 5, 3), RES, seed=2, batch=BATCH),
        "strided": seeded.chain("strided", (9, 4), STRIDED, seed=3, batch=BATCH),
        # a torch source: (B, C, L) in, the conv1d reads it; a (B, C, L) map out
        "ts_cf": seeded.chain("ts_cf", (8, 3), TS[:5], seed=4, boundary="channels_first", batch=BATCH),
    }


MODELS = models()


def data(model, seed: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.5, (BATCH, *model.input_shape))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_matches_the_reference(name, dtype):
    model = MODELS[name]
    x = data(model)
    built = voice_build("keras", model, dtype)
    assert_close(built.forward(x), reference_forward(model, x), dtype, what=f"keras port {name} {dtype}")
    net = built.native_model
    assert isinstance(net, keras.Sequential) == model.is_chain()
    if name == "ts_cf":  # the drop-in port takes and returns the torch source's (B, C, L)
        assert tuple(built.to_native(x).shape) == (BATCH, 3, 8)
        assert tuple(net.outputs[0].shape[1:]) == (5, 8) and net.layers[0].name == "to_nwc"


@pytest.mark.parametrize("name", list(MODELS))
def test_vjp_matches_the_reference(name):
    model = MODELS[name]
    x = data(model)
    dy = np.random.default_rng(11).standard_normal(reference_forward(model, x).shape)
    dx, grads = keras_port.build(model, "float64").vjp(x, dy)
    rdx, rgrads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters())  # the moving statistics are state, not parameters
    assert_close(dx, rdx, "float64", what=f"{name} dx")
    for key, g in rgrads.items():
        assert_close(grads[key], g, "float64", what=f"{name} d{key}")


@pytest.mark.parametrize("name", ["ts", "res", "ts_cf"])
def test_train_step_returns_the_parameters_and_the_moving_statistics_of_the_reference_step(name):
    model = MODELS[name]
    x = data(model)
    y = reference_forward(model, x)
    if training.loss_kind(model) == "categorical_crossentropy":
        training.check_unsaturated(y)
    t = training.targets(model, y, seed=12)
    loss, after = keras_port.train_step(model, x, t, "float64")
    ref_loss, ref_after = training.reference_step(model, x, t, "keras")
    assert set(after) == set(model.parameters()) | set(model.state()) == set(ref_after)
    assert abs(loss - ref_loss) <= 1e-10 * abs(ref_loss)
    for key, w in ref_after.items():
        assert_close(after[key], w, "float64", "adam_step", what=f"{name} {key} after one step")
    for key, before in model.state().items():  # training mode moved them (inference mode would not)
        assert not np.allclose(after[key], before, atol=1e-6), key
    # the step's copy has Dropout rate 0: the reference step takes dropout off, as the port's must
    assert keras_port.train_notes(model) == []


def test_an_unbiased_batchnorm_is_forward_exact_and_its_step_is_compared_in_keras_convention():
    specs = [("conv1d", "c", {"filters": 3, "kernel_size": 2}),
             ("batch_norm", "bn", {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}),
             ("global_avg_pool", "g", {})]  # fmt: skip
    model = seeded.chain("torch_bn", (6, 4), specs, seed=5, batch=BATCH)
    assert keras_port.refusal(model, "float32") is None
    built = keras_port.build(model, "float64")
    assert any("variance_update 'unbiased'" in n and "forward-exact" in n for n in built.notes)
    x = data(model)
    assert_close(built.forward(x), reference_forward(model, x), "float64")
    t = training.targets(model, reference_forward(model, x), seed=13)
    _, after = keras_port.train_step(model, x, t, "float64")
    _, want, notes = trainref.reference_step("keras", model, x, t)
    assert any("'unbiased'" in n and "keras's BatchNorm" in n for n in notes)
    for key, w in want.items():
        assert_close(after[key], w, "float64", "adam_step", what=f"{key}")
    _, canonical = training.reference_step(model, x, t, "keras")
    gap = trainref.state_difference(model, want, canonical)
    assert gap["largest_in"] == "bn/moving_var" and gap["max_abs"] > 1e-4  # the convention is visible, and stated
    np.testing.assert_array_equal(want[("bn", "moving_mean")], canonical[("bn", "moving_mean")])


def test_strided_and_dilated_conv1d_is_refused_with_the_reason(tmp_path):
    model = seeded.chain("sd", (11, 2), [("conv1d", "the_layer", {"filters": 2, "kernel_size": 3, "strides": 2,
                                                                  "dilation": 2})], batch=BATCH)  # fmt: skip
    why = keras_port.refusal(model, "float32")
    assert why is not None and "'the_layer'" in why and "strides > 1 together with dilation_rate > 1" in why
    with pytest.raises(Refused, match="the_layer"):
        keras_port.write(model, tmp_path / "m.keras")
    assert not (tmp_path / "m.keras").exists()


def test_explicit_pads_are_a_zero_padding1d_named_after_the_layer():
    net = keras_port.keras_model(MODELS["ts"])
    names = [la.name for la in net.layers]
    assert names[names.index("c3") - 1] == "c3_pad"
    assert net.get_layer("c3_pad").padding == (1, 2) and net.get_layer("c3").padding == "valid"
    assert net.get_layer("c2").padding == "causal" and net.get_layer("b2").momentum == 0.9


def test_arrays_and_canonical_round_trip_with_the_moving_statistics():
    model = MODELS["res"]
    arrays = keras_port.arrays(model)
    net, _ = keras_port.assemble(model, "float64")
    assert len(arrays) == len(net.get_weights())  # BatchNormalization's 4 (or 3: scale=False) variables included
    back = keras_port.canonical(model, arrays)
    assert set(back) == set(model.parameters()) | set(model.state())
    for key, a in {**model.parameters(), **model.state()}.items():
        np.testing.assert_array_equal(back[key], a)
    grads = [a for a in arrays if a is not None]
    with pytest.raises(ValueError, match="Keras arrays"):
        keras_port.canonical(model, grads, grads=True)  # gradients leave the moving statistics out


LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras
    out = {}
    for name, path, x_path in json.loads(sys.argv[1]):
        m = keras.saving.load_model(path, safe_mode=True)
        out[name] = [type(m).__name__, np.asarray(m(np.load(x_path, allow_pickle=False), training=False)).tolist()]
    out["nnparity loaded"] = sorted(k for k in sys.modules if k.split(".")[0] in ("impls", "nnparity"))
    print(json.dumps(out))
""")


def test_written_graph_ports_load_in_keras_alone(tmp_path):
    jobs, xs = [], {}
    for name in ("res", "ts_cf"):
        model = MODELS[name]
        out = tmp_path / f"{name}.keras"
        keras_port.write(model, out)
        xs[name] = data(model, seed=20).astype("float32")
        feed = np.swapaxes(xs[name], 1, 2) if name == "ts_cf" else xs[name]
        np.save(tmp_path / f"{name}_x.npy", np.ascontiguousarray(feed))
        jobs.append([name, str(out), str(tmp_path / f"{name}_x.npy")])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    r = subprocess.run([sys.executable, "-I", "-c", LOADER, json.dumps(jobs)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got.pop("nnparity loaded") == []
    assert got["res"][0] == "Functional" and got["ts_cf"][0] == "Sequential"
    assert_close(np.asarray(got["res"][1]), reference_forward(MODELS["res"], xs["res"].astype("float64")), "float32")
    y = np.swapaxes(np.asarray(got["ts_cf"][1]), 1, 2)  # the port returns the source's (B, C, L)
    assert_close(y, reference_forward(MODELS["ts_cf"], xs["ts_cf"].astype("float64")), "float32")
