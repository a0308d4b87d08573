"""Exported graphs in ONNX Runtime: the torch.nn seed models through both torch.onnx exporters and the Keras seed
models through keras.Model.export(format="onnx") (tf2onnx) compute the source model's function at the float32 bar;
what each exporter emits (linear_before_reset, gate order, layouts, opset) is stated and checked; and a wrong
linear_before_reset planted into an exported graph is caught. Small seed-shaped models (impls/runtime/onnx_export.py;
`python -m reports porting` runs the seed's full sizes and writes reports/PORTING.md)."""

from __future__ import annotations

import numpy as np
import pytest

from impls import BackendUnavailable
from impls.contract.models import init_seed_cnn, init_seed_gru
from impls.contract.spec import random_array
from impls.contract.tolerance import assert_close, tolerance
from impls.model import seed as seed_models
from verify import headroom
from verify.conftest import load

PARAMS = {"seed_gru_model": init_seed_gru(31, input_size=7, units=(6, 5), classes=4),
          "seed_cnn_model": init_seed_cnn(32, image=(14, 12, 2), filters=(3, 4), dense_units=6, classes=5)}  # fmt: skip
X = {"seed_gru_model": random_array((3, 9, 7), 33), "seed_cnn_model": random_array((3, 14, 12, 2), 34, low=0.0)}
EXPORTERS = ("torch-dynamo", "torch-torchscript", "keras-tf2onnx")
CASES = [(e, m) for e in EXPORTERS for m in PARAMS]

EMITS = {  # what each exporter writes for the seed GRU model, stated (and checked below)
    "torch-dynamo": "GRU",  # one ONNX GRU node per nn.GRU, linear_before_reset=1, layout 0 between Transposes
    "torch-torchscript": "GRU",  # the legacy tracer: the same GRU nodes (its symbolic for aten::gru)
    "keras-tf2onnx": "Loop",  # Keras 3's GRU is a while loop in TensorFlow: tf2onnx writes a Loop of MatMul,
    # Sigmoid and Tanh per layer, no GRU operator (nothing of linear_before_reset to get wrong, nor to fuse)
}


@pytest.fixture(scope="module")
def onnx_export():
    load("onnxruntime")
    from impls.runtime import onnx_export

    return onnx_export


@pytest.fixture(scope="module")
def measured(onnx_export):
    cache = {}

    def get(exporter, model):
        if (exporter, model) not in cache:
            try:
                cache[(exporter, model)] = onnx_export.measure(exporter, PARAMS[model], X[model])
            except BackendUnavailable as e:
                cache[(exporter, model)] = e
        if isinstance(cache[(exporter, model)], BackendUnavailable):
            pytest.skip(str(cache[(exporter, model)]))
        return cache[(exporter, model)]

    return get


@pytest.mark.parametrize("exporter, model", CASES, ids=[f"{m}-{e}" for e, m in CASES])
def test_exported_model_computes_the_source_models_function(measured, exporter, model):
    """At the float32 bar against the source model's own forward, and against the NumPy float64 reference."""
    m = measured(exporter, model)
    bar = tolerance("float32")
    for key in ("err_vs_source", "err_vs_reference"):
        headroom.record("float32", "onnxruntime", model, m[key], bar, f"{exporter} {model} {key}")
        assert m[key] <= bar, f"{exporter} {model}: {key} {m[key]:.2e} > the float32 bar {bar:.0e}"


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_what_each_exporter_emits_for_the_gru_model(measured, exporter):
    f = measured(exporter, "seed_gru_model")["facts"]
    if EMITS[exporter] == "GRU":
        assert len(f["gru_nodes"]) == 2 and f["loops"] == 0
        for node in f["gru_nodes"]:
            assert node["linear_before_reset"] == 1, f"{exporter} wrote linear_before_reset={node['linear_before_reset']}"
            assert node["gate_order"].startswith("z, r, h"), node["gate_order"]
            assert node["layout"] == 0 and node["direction"] == "forward"
        assert [1, 0, 2] in f["transposes"]  # batch-first (B, T, I) in, ONNX's (T, B, I) inside
    else:
        assert f["gru_nodes"] == [] and f["loops"] == 2 and "GRU" not in f["operators"]
    assert f["opset"] >= 15


@pytest.mark.parametrize("exporter", [e for e in EXPORTERS if EMITS[e] == "GRU"])
def test_a_planted_wrong_linear_before_reset_is_caught(measured, onnx_export, exporter):
    m = measured(exporter, "seed_gru_model")
    planted = m["planted"]
    assert planted["linear_before_reset"] == 0
    assert planted["err_vs_reference"] > 100 * tolerance("float32"), planted
    p64 = PARAMS["seed_gru_model"].map(lambda a: np.asarray(a, np.float32).astype(np.float64))
    want = seed_models.reference_model(p64, "reset_after")(X["seed_gru_model"].astype(np.float32).astype(np.float64))
    assert_close(onnx_export.run(m["onnx"], X["seed_gru_model"]), want, "float32", what=f"{exporter} as exported")
    with pytest.raises(AssertionError, match="differ: relative error"):  # the suite's own comparison rejects it
        assert_close(onnx_export.run(onnx_export.plant(m["onnx"], 0), X["seed_gru_model"]), want, "float32",
                     what=f"{exporter} with linear_before_reset planted to 0")
