"""The torch port (impls/ports/torch_port.py): any model description -> model.py + weights.pt, checked against the
NumPy float64 reference: forward in float32 and float64, vjp, one Adam step, every refusal, and the written port
loaded back by torch alone in a fresh process, with and without --native-layout, at both boundaries."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")

from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close, error_stats, tolerance
from impls.model import seeded, training
from impls.model.compose import reference_forward, reference_vjp
from impls.model.description import Model
from impls.ports import torch_port
from impls.ports.torch_port import code as torch_code

B = 3


def chain(name: str, input_shape: tuple, layers: list[tuple[str, str, dict]], seed: int = 0) -> Model:
    """A model description from (kind, name, options), with each kind's seeded non-symmetric weights."""
    return seeded.chain(name, input_shape, layers, seed, batch=B)


def cnn_strided() -> Model:
    """Strides 2 with 'same' (an odd pad after on the width), dilation with groups and explicit pads, depthwise,
    zero padding, pools with asymmetric pads (Keras' 'same' average), flatten, dropout, every dense activation."""
    return chain("cnn_strided", (9, 10, 3), [
        ("conv2d", "conv_a", {"filters": 6, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "activation": "relu"}),
        ("conv2d", "conv_b", {"filters": 6, "kernel_size": [2, 3], "dilation": [2, 1], "groups": 3,
                              "padding": [[1, 0], [2, 1]], "activation": "tanh"}),
        ("depthwise_conv2d", "dw", {"kernel_size": [3, 3], "depth_multiplier": 2, "padding": "same", "activation": "sigmoid"}),
        ("zero_pad2d", "pad", {"padding": [[1, 0], [0, 2]]}),
        ("max_pool2d", "max", {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}),
        ("avg_pool2d", "avg", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same", "count_include_pad": False}),
        ("flatten", "flatten", {}),
        ("dropout", "drop", {"rate": 0.3}),
        ("dense", "fc1", {"units": 7, "activation": "relu"}),
        ("activation", "act_tanh", {"activation": "tanh"}),
        ("dense", "fc2", {"units": 6, "activation": "sigmoid"}),
        ("dense", "fc3", {"units": 4, "activation": "tanh"}),
        ("dense", "out", {"units": 5, "activation": "softmax"}),
    ])  # fmt: skip


def cnn_map_out() -> Model:
    """Pools whose symmetric pads are the torch layers' own, a conv without bias, a 4-D softmax output (channels)."""
    return chain("cnn_map_out", (8, 7, 2), [
        ("conv2d", "conv", {"filters": 4, "kernel_size": [3, 2], "use_bias": False, "activation": "relu"}),
        ("avg_pool2d", "avg", {"pool_size": [3, 3], "strides": [2, 1], "padding": [[1, 1], [1, 1]], "count_include_pad": True}),
        ("max_pool2d", "max", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[1, 1], [0, 0]]}),
        ("avg_pool2d", "avg_tf", {"pool_size": [2, 3], "strides": [1, 1], "padding": [[1, 0], [1, 1]]}),
        ("conv2d", "head", {"filters": 3, "kernel_size": [1, 1], "activation": "softmax"}),
    ])  # fmt: skip


def cnn_flat_out() -> Model:
    """The output is a flattened map with no Linear after it: the port must give the source's flatten order."""
    return chain("cnn_flat_out", (5, 4, 3), [
        ("conv2d", "conv", {"filters": 3, "kernel_size": [2, 2], "activation": "linear"}),
        ("flatten", "flatten", {}),
        ("activation", "relu", {"activation": "relu"}),
    ])  # fmt: skip


def gru_model() -> Model:
    """GRU returning the sequence, a Dense on its 3-D output's last axis, a GRU returning the last state, softmax."""
    return chain("gru_classifier", (6, 4), [
        ("gru", "gru1", {"units": 5, "return_sequences": True}),
        ("dense", "per_step", {"units": 6, "activation": "tanh"}),
        ("gru", "gru2", {"units": 3, "return_sequences": False}),
        ("dense", "classes", {"units": 4, "activation": "softmax"}),
    ])  # fmt: skip


MODELS = {"cnn_strided": cnn_strided, "cnn_map_out": cnn_map_out, "cnn_flat_out": cnn_flat_out, "gru": gru_model}
BOUNDARIES = ("channels_last", "channels_first")


def sample(model: Model, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, *model.input_shape))


def with_boundary(model: Model, boundary: str) -> Model:
    return dataclasses.replace(model, boundary=boundary)


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_matches_the_reference(name, dtype, boundary):
    model = with_boundary(MODELS[name](), boundary)
    x = sample(model)
    built = torch_port.build(model, dtype)
    assert built.mode == "eager" and built.native_model is not None
    y = built.forward(x.astype(dtype))
    assert y.dtype == np.dtype(dtype)
    assert_close(y, reference_forward(model, x), dtype, what=f"torch port {name} {dtype} {boundary}")
    if name == "cnn_flat_out":  # a flattened map out: (h, w, c) as given by a channels_last source, torch's (c, h, w)
        assert torch_code.generate(model).outputs.kind == ("plain" if boundary == "channels_last" else "chw")


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name", list(MODELS))
def test_vjp_matches_the_reference(name, boundary):
    model = with_boundary(MODELS[name](), boundary)
    x = sample(model)
    dy = np.random.default_rng(2).uniform(-1.0, 1.0, model.shapes(B)[-1])
    dx, grads = torch_port.build(model, "float64").vjp(x, dy)
    ref_dx, ref_grads = reference_vjp(model, x, dy)
    assert set(grads) == set(model.parameters())
    assert_close(dx, ref_dx, "float64", what=f"{name} dL/dx")
    for key, g in ref_grads.items():
        assert_close(grads[key], g, "float64", what=f"{name} dL/d{key}")


@pytest.mark.parametrize("name", list(MODELS))
def test_train_step_matches_torch_adam_in_the_reference(name):
    model = MODELS[name]()
    x = sample(model)
    t = training.targets(model, reference_forward(model, x), seed=5)
    loss, weights = torch_port.train_step(model, x, t, "float64")
    ref_loss, ref_weights = training.reference_step(model, x, t, "torch")
    assert training.loss_kind(model) == ("mse" if name == "cnn_flat_out" else "categorical_crossentropy")
    assert abs(loss - ref_loss) <= tolerance("float64") * abs(ref_loss)
    assert set(weights) == set(ref_weights)
    for key, w in ref_weights.items():
        assert_close(weights[key], w, "float64", what=f"{name} {key} after one Adam step")
        assert not np.array_equal(weights[key], model.parameters()[key]), f"{key} did not move"
    # the eps convention is visible: Keras' (eps added to the uncorrected sqrt(v)) is not torch's step
    _, keras_weights = training.reference_step(model, x, t, "keras")
    assert max(error_stats(weights[k], keras_weights[k]).rel for k in weights) > tolerance("float64")


@pytest.mark.parametrize("variant", ["reset_before", "chung", "seed"])
def test_a_gru_variant_torch_lacks_is_refused_naming_the_layer(variant):
    m = gru_model()
    layer = m.layers[2]
    m = m.replace_layer(2, dataclasses.replace(layer, options={**layer.options, "variant": variant}))
    why = torch_port.refusal(m, "float32")
    assert why is not None and "'gru2'" in why and variant in why and "layer 2" in why
    with pytest.raises(Refused, match="gru2"):
        torch_port.build(m, "float32")
    assert torch_port.refusal(gru_model(), "float32") is None


def test_a_dtype_without_a_port_is_refused():
    why = torch_port.refusal(gru_model(), "float16")
    assert why is not None and "float16" in why
    assert torch_port.refusal(gru_model(), "float64") is None


def test_without_the_flatten_row_permutation_the_port_is_wrong(monkeypatch):
    model = cnn_strided()
    x = sample(model)
    ref = reference_forward(model, x)
    assert_close(torch_port.build(model, "float64").forward(x), ref, "float64")
    monkeypatch.setattr(torch_code.convert, "flatten_rows_nhwc_to_nchw", lambda k, fs: np.asarray(k))
    wrong = torch_port.build(model, "float64").forward(x)
    assert error_stats(wrong, ref).rel > 1e-3, "a Linear after an NCHW flatten must have its rows permuted"


def test_generated_code_imports_only_torch_and_names_each_layer():
    model = cnn_strided()
    code = torch_code.generate(model)
    tree = ast.parse(code.source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"torch", "pathlib"}
    for layer in model.layers:
        assert f"self.{code.attrs[layer.name]} = nn." in code.source
    assert "weights_only=True" in code.source and "F.pad(" in code.source and "(c, h, w)" in code.source
    assert {k.split(".")[0] for k in code.state} == {code.attrs[la.name] for la in model.layers if la.weights}
    assert code.dtype == "float64"  # the weights' own dtype (spec.init's default)


def test_layer_names_become_distinct_identifiers():
    m = chain("odd names", (3,), [("dense", "fc.1", {"units": 2}), ("dense", "fc-1", {"units": 2}),
                                   ("dense", "class", {"units": 2}), ("dense", "forward", {"units": 2}),
                                   ("dense", "1st", {"units": 2})])  # fmt: skip
    attrs = torch_code.attribute_names(m)
    assert all(a.isidentifier() for a in attrs.values()) and len(set(attrs.values())) == 5
    assert attrs["fc.1"] == "fc_1" and attrs["fc-1"] == "fc_1_2" and attrs["class"] == "class_layer"
    assert torch_code.class_name(m) == "OddNames"
    assert_close(torch_port.build(m, "float64").forward(sample(m)), reference_forward(m, sample(m)), "float64")


# --------------------------------------------------------------------------- the written port, torch alone

_LOADER = textwrap.dedent("""
    import sys, torch
    from model import load
    m = load()
    assert not m.training, "load() must return the module in eval mode"
    x = torch.load(sys.argv[1], weights_only=True)
    with torch.no_grad():
        y = m(x)
    torch.save(y, sys.argv[2])
    assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
    print(m.__doc__ is None, type(m).__module__)
""")


def run_port(folder, x: np.ndarray, tmp_path) -> np.ndarray:
    """The port in `folder` loaded and called by torch alone, in a fresh process outside the checkout."""
    import torch

    xin, yout = tmp_path / "x.pt", tmp_path / "y.pt"
    torch.save(torch.from_numpy(np.ascontiguousarray(x)), xin)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(folder)
    done = subprocess.run([sys.executable, "-c", _LOADER, str(xin), str(yout)], check=False, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(yout, weights_only=True).numpy()


@pytest.mark.parametrize(("name", "boundary", "native"), [
    ("cnn_strided", "channels_last", False),
    ("cnn_map_out", "channels_first", False), ("cnn_map_out", "channels_last", True),
    ("gru", "channels_last", False),
])  # fmt: skip
def test_written_port_loads_with_torch_alone_and_matches(name, boundary, native, tmp_path):
    model = with_boundary(MODELS[name](), boundary).astype("float32")
    out = tmp_path / "port"
    files = torch_port.write(model, out, native_layout=native)
    assert sorted(p.name for p in files) == ["model.py", "weights.pt"] and all(p.exists() for p in files)
    source = (out / "model.py").read_text()
    assert ("Native layout" in source) == native
    code = torch_code.generate(model, native_layout=native)
    image = len(model.input_shape) == 4 - 1
    takes_nchw = image and (native or boundary == "channels_first")
    assert (code.inputs.kind == "nchw") == takes_nchw
    x = sample(model).astype("float32")
    y = run_port(out, code.inputs.to_torch(x), tmp_path)
    ref = reference_forward(model, x.astype("float64"))
    if image and code.outputs.kind == "plain" and len(ref.shape) == 4:
        assert y.shape == ref.shape  # NHWC out, as the source gives it
    assert_close(code.outputs.to_canonical(y), ref, "float32", what=f"written {name} port, native_layout={native}")
