"""The certificate's pipeline (nnparity/certify.py) on descriptions made here: every section is there and passes on
correct voices; a planted fault in a voice, in the user's own model, or in the Keras importer's gate order fails it
and names the first diverging layer; the speed ranking pairs the voices with 95% intervals; the JSON is strict."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from impls.contract.spec import random_array
from impls.importers import Imported
from impls.model import voices
from impls.model.compose import reference_forward, reference_outputs
from impls.model.description import Layer, Model
from impls.model.layers import spec_of
from nnparity import certificate, certify, timing


def chain(name: str, input_shape: tuple[int, ...], layers: list[tuple[str, str, dict]], seed: int = 0,
          dtype: str = "float32") -> Model:  # fmt: skip
    """A model of `layers` (kind, name, options) with seeded, non-symmetric weights and non-zero biases."""
    built: list[Layer] = []
    shape = (3, *input_shape)
    for i, (kind, lname, opts) in enumerate(layers):
        spec = spec_of(kind)
        o = spec.options(opts)
        built.append(Layer(kind, lname, opts, spec.init(o, shape, seed + i, dtype)))
        shape = tuple(spec.output_shape(o, shape))
    return Model(name, input_shape, tuple(built)).check(3)


def zoo_cnn(boundary: str = "channels_last", pad: bool = True) -> Model:
    """Every image layer kind and option the contract verifies, small (`pad`: with the zero_pad2d layer)."""
    return dataclasses.replace(chain("zoo_cnn", (11, 10, 2), [
        ("conv2d", "conv_s2", {"filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "activation": "relu"}),
        *([("zero_pad2d", "pad", {"padding": [[1, 0], [0, 2]]})] if pad else []),
        ("conv2d", "conv_dg", {"filters": 6, "kernel_size": [2, 3], "dilation": [2, 1], "groups": 2, "activation": "tanh",
                               **({} if pad else {"padding": [[1, 0], [0, 2]]})}),
        ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "activation": "sigmoid"}),
        ("max_pool2d", "maxp", {"pool_size": [2, 2], "strides": [1, 1]}),
        ("avg_pool2d", "avgp", {"pool_size": [2, 2], "padding": "valid"}),
        ("flatten", "flat", {}),
        ("dropout", "drop", {"rate": 0.25}),
        ("dense", "fc", {"units": 7, "activation": "relu"}),
        ("activation", "act_tanh", {"activation": "tanh"}),
        ("dense", "out", {"units": 5, "activation": "softmax"}),
    ]), boundary=boundary)  # fmt: skip


def small_gru(variant: str = "reset_after") -> Model:
    """GRU (sequences) -> Dense on the 3-D output's last axis -> GRU (last state) -> Dense softmax; I != H."""
    return chain("small_gru", (6, 5), [
        ("gru", "gru_a", {"units": 4, "variant": variant, "return_sequences": True}),
        ("dense", "mix", {"units": 3, "activation": "tanh"}),
        ("gru", "gru_b", {"units": 6, "variant": variant, "return_sequences": False}),
        ("dense", "head", {"units": 4, "activation": "softmax"}),
    ])  # fmt: skip


FAST = ("numpy", "torch", "torch_nn", "keras")


def test_small_gru_passes_and_holds_every_section():
    cert = certify.certify(small_gru(), None, certify.Settings(bench=False, voices=FAST))
    assert cert["verdict"] == "pass", cert["failures"]
    for section in ("model", "inputs", "voices", "initial_state", "training", "source", "speed", "versions", "failures",
                    "first_diverging_layer", "command"):  # fmt: skip
        assert section in cert, section
    assert cert["first_diverging_layer"] is None
    for v in FAST:
        e = cert["voices"][v]
        assert e["forward"]["float32"]["pass"] and e["forward"]["float64"]["pass"], v
        assert [r["name"] for r in e["layers"]["float64"]] == ["gru_a", "mix", "gru_b", "head"]
        assert e["gradients"]["dtype"] == "float64"
        names = {t["tensor"] for t in e["gradients"]["tensors"]}
        assert names == {"input", *("/".join(k) for k in small_gru().parameters())}
    # a non-zero initial state through each voice's op-contract gru, both layers, both dtypes
    rows = [r for r in cert["initial_state"] if "y" in r]
    assert {(r["layer"], r["voice"], r["dtype"]) for r in rows} >= {(g, v, d) for g in ("gru_a", "gru_b") for v in FAST
                                                                   for d in ("float32", "float64")}  # fmt: skip
    assert all(r["pass"] for r in rows)
    t = cert["training"]
    assert t["loss"] == "categorical_crossentropy" and t["voices"]["keras"]["pass"] and t["voices"]["torch_nn"]["pass"]
    assert "eps=1e-7" in t["differences"][0]
    assert cert["speed"] == {"skipped": "--no-bench"}
    assert cert["source"]["none"].startswith("the model is an nnparity description")
    json.loads(certificate.to_json(cert))  # strict JSON (no NaN literals)
    md = certificate.to_markdown(cert)
    assert md.splitlines()[2].startswith("**Verdict: PASS**") and "**First diverging layer:** none" in md


def test_keras_single_bias_training_step_is_compared_in_its_own_parametrization():
    cert = certify.certify(small_gru("reset_before"), None, certify.Settings(bench=False, voices=("numpy", "keras", "torch_nn")))
    assert cert["verdict"] == "pass", cert["failures"]
    row = cert["training"]["voices"]["keras"]
    assert row["pass"] and "keras_single_bias" in row["parametrization"][0]
    assert any(d.startswith("keras: it holds the model in its own parametrization or convention") for d in cert["training"]["differences"])
    assert "refused" in cert["training"]["voices"]["torch_nn"]  # torch.nn.GRU has no reset_before: its reason


def test_a_model_without_parameters_certifies_with_no_training_step(tmp_path):
    """An average pool and a flatten only (torch's nn.Sequential(nn.AvgPool2d(3, 2, 1), nn.Flatten())): nothing to
    train, which the training section says; it raised ValueError (max() of no parameters) instead."""
    model = chain("pools_only", (7, 6, 2), [("avg_pool2d", "avg", {"pool_size": [3, 3], "strides": [2, 2],
                                                                   "padding": [[1, 1], [1, 1]]}), ("flatten", "flat", {})])  # fmt: skip
    cert = certify.certify(model, None, certify.Settings(bench=False, voices=("numpy", "torch_nn", "keras")))
    assert cert["verdict"] == "pass", cert["failures"]
    assert "no parameters" in cert["training"]["not_compared"]
    certificate.write(cert, tmp_path / "c")
    assert "no parameters" in (tmp_path / "c" / "certificate.md").read_text()


def test_a_voice_with_a_wrong_layer_fails_and_names_it(monkeypatch):
    """torch's build of any model holding conv_dg gets that kernel 1% off: its isolated check there fails first."""
    real = voices.build

    def build(voice, model, dtype="float32", device=None):
        if voice == "torch" and any(la.name == "conv_dg" for la in model.layers):
            i = model.layer_index("conv_dg")
            model = model.replace_layer(i, model.layers[i].map(lambda a: a * 1.01))
        return real(voice, model, dtype, device)

    monkeypatch.setattr(voices, "build", build)
    cert = certify.certify(zoo_cnn(), None, certify.Settings(bench=False, voices=("numpy", "torch")))
    assert cert["verdict"] == "fail"
    assert cert["first_diverging_layer"] == "conv_dg"
    assert cert["first_diverging"]["in"] and set(cert["first_diverging"]["in"]) <= {"torch float32", "torch float64"}
    assert cert["voices"]["numpy"]["first_diverging_layer"] is None
    iso = cert["voices"]["torch"]["layers"]["float64"]
    assert iso[0]["isolated"]["pass"] and not iso[2]["isolated"]["pass"] and iso[3]["isolated"]["pass"]
    assert not iso[3]["accumulated"]["pass"]  # the chain carries the error on
    assert any(f.startswith("voices torch forward float32") for f in cert["failures"])


def _swap_zr(a: np.ndarray, H: int) -> np.ndarray:
    return np.concatenate([a[..., H:2 * H], a[..., :H], a[..., 2 * H:]], axis=-1)


def test_the_source_model_itself_is_checked_and_its_wrong_gate_order_named():
    """An Imported whose own model computes gru_b with z and r swapped: every voice agrees with the description,
    the source does not, from gru_b on."""
    model = small_gru()
    i = model.layer_index("gru_b")
    la = model.layers[i]
    wrong = model.replace_layer(i, la.map(lambda a: _swap_zr(a, 6)))
    own = wrong.astype("float64")
    imp = Imported(model, "keras", "planted.keras", lambda x: reference_forward(own, x.astype("float64")).astype("float32"),
                   layer_outputs=lambda x: reference_outputs(own, x.astype("float64")),
                   layer_call=lambda j, x: reference_forward(own.sub(j).astype("float64"), x.astype("float64")))  # fmt: skip
    cert = certify.certify(model, imp, certify.Settings(bench=False, voices=("numpy",)))
    assert cert["verdict"] == "fail"
    assert cert["first_diverging_layer"] == "gru_b" and cert["first_diverging"]["in"] == ["source"]
    src = cert["source"]
    assert not src["forward"]["pass"] and [r["isolated"]["pass"] for r in src["layers"]] == [True, True, False, True]
    assert cert["voices"]["numpy"]["forward"]["float64"]["pass"]


keras_import = pytest.importorskip("impls.importers.keras_import", reason="the Keras importer has not landed")


def test_a_planted_gate_order_in_the_keras_importer_fails_certify(tmp_path, monkeypatch):
    """The issue's test: a Keras GRU model saved as .keras, its importer's converter made to swap z and r; the CLI
    exits 1 and certificate.json names that GRU as the first diverging layer."""
    from impls import convert, frameworks
    from nnparity import cli

    keras = frameworks.load("keras")
    net = keras.Sequential([keras.Input((6, 5)), keras.layers.GRU(4, name="the_gru"),
                            keras.layers.Dense(3, activation="softmax", name="head")])  # fmt: skip
    net.layers[0].set_weights([random_array(w.shape, 10 + k, "float32", -0.5, 0.5) for k, w in enumerate(net.layers[0].get_weights())])
    path = tmp_path / "gru.keras"
    net.save(path)
    real = convert.gru_from_keras

    def swapped(weights, reset_after):
        w = real(weights, reset_after)
        H = w.U.shape[0]
        return dataclasses.replace(w, **{k: _swap_zr(np.asarray(getattr(w, k)), H) for k in ("W", "U", "b_x", "b_h")})

    monkeypatch.setattr(convert, "gru_from_keras", swapped)
    monkeypatch.setattr(voices, "VOICES", ("numpy", "torch"))
    out = tmp_path / "cert"
    assert cli.main(["certify", str(path), "-o", str(out), "--no-bench"]) == 1
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["verdict"] == "fail" and cert["first_diverging_layer"] == "the_gru"
    assert cert["source"]["first_diverging_layer"]["name"] == "the_gru"
    assert cert["voices"]["torch"]["forward"]["float32"]["pass"]  # the rebuild agrees with the (wrong) description
    assert (out / "certificate.md").read_text().count("`the_gru`") >= 2


def test_the_timed_step_gets_dy_in_the_outputs_layout_for_an_nchw_source():
    """A channels_first model (a torch CNN) takes (B, C, H, W) and returns (B, 5): the timed forward+backward fed dy
    through the input's conversion (NHWC -> NCHW of a 2-D array), and certify with its speed ranking raised
    'axes don't match array' on every torch or ONNX CNN."""
    model = zoo_cnn("channels_first")
    builts = {v: voices.build(v, model, "float32") for v in ("torch_nn", "flax", "keras")}
    x = random_array((3, *model.input_shape), 1, "float32")
    dy = random_array(model.shapes(3)[-1], 2, "float32")
    rows = timing.members(builts, x, dy)["forward+backward"]
    assert [m.id for m in rows] == list(builts)
    for member in rows:
        member.call()


def test_speed_ranking_pairs_every_voice_with_intervals(monkeypatch):
    monkeypatch.setattr(timing, "TIMING", dataclasses.replace(timing.TIMING, group_time=0.3, min_blocks=4, max_blocks=6,
                                                              slot=0.005, epochs=2))  # fmt: skip
    model = small_gru()
    builts = {v: voices.build(v, model, "float32") for v in ("numpy", "torch")}
    x = random_array((3, *model.input_shape), 1, "float32")
    dy = random_array(model.shapes(3)[-1], 2, "float32")
    s = timing.rank(builts, x, dy, 5, timing=timing.TIMING, flops=model.flops(3))
    for name in ("forward", "forward+backward"):
        p = s["passes"][name]
        # a voice whose timed step raises is left out of its pass with the reason, never silently
        assert {r["voice"] for r in p["rows"]} | set(p["left_out"]) == {"numpy", "torch"}
        assert "torch" in {r["voice"] for r in p["rows"]} and all(p["left_out"].values())
        if len(p["rows"]) < 2:
            continue
        fastest = p["rows"][0]
        assert fastest["ratio"] == 1.0 and fastest["voice"] == p["reference"] and fastest["rank"] == 1
        slow = p["rows"][1]
        assert slow["ratio"] >= 1.0 and slow["ci95"][0] <= slow["ratio"] <= slow["ci95"][1]
        assert all(r["median_s"] > 0 and r["blocks"] >= 4 for r in p["rows"])
    assert len(s["passes"]["forward"]["rows"]) == 2 and s["passes"]["forward"]["rows"][0]["gflops"] > 0
    assert s["contention"]["matmul_gflops_start"] > 0 and "cpu_model" in s["machine"]
    md = "\n".join(certificate._speed({"speed": s}))
    assert "### forward+backward" in md and "| rank | voice (mode)" in md


def test_a_bias_read_only_by_a_batchnorm_is_held_to_not_moving_rather_than_to_a_relative_bar():
    """Its gradient is exactly zero in a training step, so both steps move it by rounding noise alone (Adam makes a
    1e-16 gradient into a ~1e-11 step): the certificate checks that neither moves it, not that the noise agrees."""
    import numpy as np

    from impls.model.description import INPUT
    from impls.model.seeded import chain
    from nnparity import certify

    m = chain("res", (5, 5, 2), [
        ("conv2d", "c1", {"filters": 2, "kernel_size": [3, 3], "padding": "same"}), ("batch_norm", "bn1", {}),
        ("conv2d", "c2", {"filters": 2, "kernel_size": [3, 3], "padding": "same"}),
        ("add", "a", {}, ("c2", "bn1")), ("batch_norm", "bn2", {}), ("add", "b", {}, ("bn2", INPUT)),
        ("global_avg_pool", "g", {}), ("dense", "d", {"units": 3})])  # fmt: skip
    assert set(certify.zero_gradient_parameters(m)) == {("c1", "bias")}  # c2 is read by an add, which keeps its bias
    fused = chain("fused", (5, 5, 2), [
        ("conv2d", "c1", {"filters": 2, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
        ("batch_norm", "bn1", {}), ("global_avg_pool", "g", {}), ("dense", "d", {"units": 3})])  # fmt: skip
    assert certify.zero_gradient_parameters(fused) == {}  # Conv2D(activation="relu") -> BatchNormalization: b moves
    before = np.zeros(3)
    ok = certify._unmoved(before, before + 1e-12, before - 1e-12, "why")
    moved = certify._unmoved(before, before + 1e-6, before, "why")
    assert ok["pass"] and not moved["pass"] and moved["error"] == 1e-6
