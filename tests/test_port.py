"""A port Keras -> description -> PyTorch of both seed models gives the same outputs.

The Keras models are built exactly as the seed's section 4 writes them, and given random weights in
Keras' own layout (not through our to-Keras converter), so only the Keras importer -> torch port path
is trusted here. Without the flatten permutation the CNN port is measurably wrong."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls import convert
from impls.contract.spec import random_array
from impls.contract.tolerance import assert_close, error_stats
from verify.conftest import load, load_framework


def _randomise(model, seed: int) -> list[np.ndarray]:
    g = np.random.default_rng(seed)
    weights = [g.uniform(-0.3, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()]
    model.set_weights(weights)
    return weights


def _ported(model, input_shape: tuple, dtype: str):
    """The Keras model -> the Keras importer's description -> the torch port, loaded by its own load()."""
    from impls.importers import keras_import
    from impls.ports import torch_port

    description = keras_import.from_model(model, input_shape, "the seed's Keras model").model
    return description, torch_port.load_port(description, dtype)[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_gru_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch = load("keras"), load_framework("torch")
    model = keras_b.build_seed_gru(dtype=dtype)
    _randomise(model, 1)
    x = random_array((3, 100, 64), 2, dtype=dtype)
    expected = keras_b.to_numpy(model(x, training=False))
    _, net = _ported(model, x.shape, dtype)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert_close(got, expected, dtype, work="seed_gru_model", what="keras->torch GRU port")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_keras_seed_cnn_ported_to_torch_gives_the_same_outputs(dtype):
    keras_b, torch = load("keras"), load_framework("torch")
    from impls.ports import torch_port

    model = keras_b.build_seed_cnn(dtype=dtype)
    _randomise(model, 3)
    x = random_array((4, 28, 28, 1), 4, dtype=dtype, low=0.0, high=1.0)
    expected = keras_b.to_numpy(model(x, training=False))
    description, net = _ported(model, x.shape, dtype)
    got = net(torch.from_numpy(x)).detach().numpy()
    assert_close(got, expected, dtype, work="seed_cnn_model", what="keras->torch CNN port")

    # the same port with dense1's rows left in Keras' (h, w, c) order, as a naive port would: the torch port
    # permutes the rows itself, so hand it rows pre-permuted the other way to cancel that
    i = next(i for i, la in enumerate(description.layers) if la.kind == "dense")  # the Dense after the Flatten
    dense = description.layers[i]
    naive_rows = {**dense.weights, "kernel": convert.flatten_rows_nchw_to_nhwc(dense.weights["kernel"], (5, 5, 64))}
    naive, _ = torch_port.load_port(description.replace_layer(i, dataclasses.replace(dense, weights=naive_rows)), dtype)
    wrong = naive(torch.from_numpy(x)).detach().numpy()
    assert error_stats(wrong, expected).max_abs > 1e-2


FLAT_LOADER = r"""
import json, sys
import numpy as np
import importlib.util
jobs = json.loads(sys.argv[1])
out = {}
for key, path, x_path in jobs:
    x = np.load(x_path)
    if path.endswith(".keras"):
        import keras
        y = keras.saving.load_model(path)(x, training=False)
    elif path.endswith(".onnx"):
        import onnxruntime as ort
        s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        y = s.run(None, {s.get_inputs()[0].name: x})[0]
    else:
        spec = importlib.util.spec_from_file_location(key, path + "/model.py")
        m = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(m)
        module, variables = m.load()
        y = module.apply(variables, x)
    out[key] = path + ".y.npy"
    np.save(out[key], np.asarray(y))
assert not any(m.split(".")[0] in ("impls", "nnparity") for m in sys.modules), "a port imported nnparity"
print(json.dumps(out))
"""


def test_a_channels_first_source_returning_a_flattened_map_ports_in_its_own_order(tmp_path):
    """A torch module (or its ONNX export) that returns nn.Flatten of a map (then only a softmax) gives its features
    in (c, h, w) order; the description's are (h, w, c). The Keras, ONNX and Flax ports returned the description's
    order (relative error about 1); they reorder at their boundary now, and their voices read it back."""
    import json
    import os
    import subprocess
    import sys

    torch = load_framework("torch")
    from impls.importers import load as import_model
    from impls.importers import torch_import
    from impls.model.compose import reference_forward
    from impls.ports import flax_port, keras_port, onnx_port

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, (3, 2), padding=(1, 0)), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Softmax(dim=-1)).eval()  # fmt: skip
    x = random_array((3, 2, 5, 4), 11, "float32")
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    torch.onnx.export(module, (torch.from_numpy(x),), str(tmp_path / "src.onnx"), dynamo=False)
    sources = {"torch": torch_import.from_module(module, x.shape, "net.py:model").model,
               "onnx": import_model(str(tmp_path / "src.onnx")).model}  # fmt: skip
    np.save(tmp_path / "x.npy", x)
    jobs = []
    for src, model in sources.items():
        assert model.flattened_output() == (5, 3, 3)
        for to, port, name in (("keras", keras_port, "p.keras"), ("onnx", onnx_port, "p.onnx"), ("flax", flax_port, "p")):
            path = tmp_path / f"{src}_{name}"
            port.write(model, path)
            jobs.append((f"{src}->{to}", str(path), str(tmp_path / "x.npy")))
            built = port.build(model, "float32")  # the voice: canonical in and out, as certify compares
            got = built.to_numpy(built.call(built.to_native(np.transpose(x, (0, 2, 3, 1)))))
            assert_close(got, reference_forward(model, np.transpose(x, (0, 2, 3, 1)).astype("float64")), "float32",
                         what=f"{src}->{to} voice")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run([sys.executable, "-I", "-c", FLAT_LOADER, json.dumps(jobs)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    for key, y in json.loads(r.stdout.strip().splitlines()[-1]).items():
        assert_close(np.load(y), want, "float32", what=f"{key} port loaded by its own framework vs the torch module")
