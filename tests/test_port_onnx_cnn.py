"""The ONNX port's issue-18 kinds and graphs (impls/ports/onnx_port.py): conv1d in every padding mode, batch_norm,
layer_norm, global pooling, reshape, permute, add and concatenate, against the float64 NumPy reference at the
float32 bar: the voice in process (canonical in and out) and the written .onnx file in a fresh `python -I` that has
only onnxruntime and NumPy (NCW / NCHW maps at a channels_first boundary, as the source). A planted Concat axis left
untranslated in the channels-first graph fails; float64 runs where ONNX Runtime has the kernels and is refused,
naming the layer, where it has not.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from impls.contract.limits import Refused
from impls.contract.tolerance import assert_close, error_stats
from impls.model import seeded, voices
from impls.model.compose import reference_forward
from impls.model.description import INPUT, Model

onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)

BATCH = 3


def make(name, input_shape, specs, boundary="channels_first", seed=3) -> Model:
    return seeded.chain(name, input_shape, specs, seed, boundary, BATCH)


def conv1d(padding, **kw):
    return [("conv1d", "conv", {"filters": 4, "kernel_size": 3, "padding": padding, **kw}),
            ("activation", "act", {"activation": "tanh"})]


def cnn1d():
    layers = []
    for k, (f, s) in enumerate(((6, 1), (5, 2), (4, 1))):
        layers += [("conv1d", f"conv{k}", {"filters": f, "kernel_size": 3, "strides": s, "padding": "same"}),
                   ("batch_norm", f"bn{k}", {"epsilon": 1e-5, "momentum": 0.9}),
                   ("activation", f"relu{k}", {"activation": "relu"})]
    return [*layers, ("global_avg_pool", "gap", {}), ("dense", "fc", {"units": 3, "activation": "softmax"})]


RESIDUAL = [  # torch's basic block: conv-bn-relu-conv-bn, + input, relu, AdaptiveAvgPool2d(1), Flatten, Linear
    ("conv2d", "conv1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
    ("batch_norm", "bn1", {"epsilon": 1e-5, "momentum": 0.9}),
    ("activation", "relu1", {"activation": "relu"}),
    ("conv2d", "conv2", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
    ("batch_norm", "bn2", {"epsilon": 1e-5, "momentum": 0.9}),
    ("add", "add", {}, ("bn2", INPUT)),
    ("activation", "relu2", {"activation": "relu"}),
    ("global_avg_pool", "gap", {}),
    ("flatten", "flat", {}),
    ("dense", "fc", {"units": 3}),
]
CONCAT_MAPS = [  # two conv branches joined on the channels: axis -1 here, axis 1 of the NCHW graph
    ("conv2d", "a", {"filters": 3, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}),
    ("conv2d", "b", {"filters": 2, "kernel_size": [1, 1], "activation": "tanh"}, (INPUT,)),
    ("concatenate", "cat", {"axis": -1}, ("a", "b")),
    ("conv2d", "mix", {"filters": 3, "kernel_size": [2, 2]}),
]
CONCAT_1D = [  # conv1d branches joined on the channels, then on the length; a layer norm of the map
    ("conv1d", "a", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation": 2}),
    ("conv1d", "b", {"filters": 3, "kernel_size": 2, "padding": "same"}, (INPUT,)),
    ("concatenate", "cat_c", {"axis": -1}, ("a", "b")),
    ("concatenate", "cat_l", {"axis": 1}, ("cat_c", "cat_c")),
    ("layer_norm", "ln", {"epsilon": 1e-5}),
    ("global_max_pool", "gmp", {}),
]
LAYER_NORM_SEQ = [
    ("dense", "d", {"units": 6}),
    ("layer_norm", "ln", {"epsilon": 1e-5}),
    ("layer_norm", "ln2", {"epsilon": 1e-3, "center": False}),
]
SHAPES = [  # reshape and permute of channels-last values, flatten of an NCW map
    ("conv2d", "c", {"filters": 4, "kernel_size": [2, 2], "activation": "relu"}),
    ("reshape", "rs", {"target_shape": [-1, 4]}),  # (B, H*W, C): a 1-D map
    ("conv1d", "c1", {"filters": 3, "kernel_size": 2}),
    ("permute", "perm", {"dims": [2, 1]}),
    ("dense", "d", {"units": 5}),
    ("flatten", "flat", {}),
    ("dense", "out", {"units": 2}),
]
BN_DENSE = [  # float64-able: no Conv
    ("dense", "d", {"units": 5}),
    ("batch_norm", "bn", {"epsilon": 1e-3, "momentum": 0.99}),
    ("layer_norm", "ln", {"epsilon": 1e-5}),
    ("dense", "out", {"units": 3}),
]

CASES = {
    "conv1d-valid": lambda: make("c_valid", (9, 5), conv1d("valid", strides=2)),
    "conv1d-same": lambda: make("c_same", (8, 4), conv1d("same", strides=2, groups=2)),
    "conv1d-causal": lambda: make("c_causal", (9, 5), conv1d("causal", dilation=2)),
    "conv1d-explicit": lambda: make("c_expl", (9, 5), conv1d([2, 1], strides=2, dilation=2)),
    "conv1d-channels_last": lambda: make("c_last", (9, 5), conv1d("same"), boundary="channels_last"),
    "cnn1d": lambda: make("cnn1d", (12, 3), cnn1d()),
    "cnn1d-channels_last": lambda: make("cnn1d", (12, 3), cnn1d(), boundary="channels_last"),
    "residual": lambda: make("residual", (6, 5, 4), RESIDUAL),
    "concat_maps": lambda: make("concat_maps", (5, 6, 3), CONCAT_MAPS),
    "concat_1d": lambda: make("concat_1d", (7, 4), CONCAT_1D),
    "layer_norm_seq": lambda: make("ln_seq", (5, 4), LAYER_NORM_SEQ),
    "shapes": lambda: make("shapes", (4, 5, 3), SHAPES),
    "bn_dense": lambda: make("bn_dense", (4,), BN_DENSE),
}


def x_for(model: Model, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, (BATCH, *model.input_shape))


@pytest.mark.parametrize("case", CASES)
def test_voice_forward_matches_the_reference(case):
    model = CASES[case]()
    x = x_for(model)
    got = voices.build("onnxruntime", model, "float32").forward(x)
    assert got.dtype == np.float32
    assert_close(got, reference_forward(model, x), "float32", what=f"onnx port {case}")


def _source(model: Model, a: np.ndarray, name: str) -> np.ndarray:
    """Canonical -> the source's layout: a channels_first source holds maps channels first (NCHW, NCW)."""
    if model.boundary != "channels_first" or a.ndim == 2:
        return a
    if a.ndim == 4:
        return a.transpose(0, 3, 1, 2)
    return a.transpose(0, 2, 1) if onnx_port.is_map(model, name) else a


_LOADER = """
import sys
import numpy as np
import onnxruntime as ort
for path, x_path, y_path in zip(*[iter(sys.argv[1:])] * 3):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(y_path, s.run(None, {s.get_inputs()[0].name: np.load(x_path, allow_pickle=False)})[0], allow_pickle=False)
    print(s.get_inputs()[0].shape, "|", s.get_outputs()[0].shape)
assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
"""


def test_written_ports_alone_in_python_isolated(tmp_path):
    jobs, names = [], []
    argv = []
    for case, factory in CASES.items():
        model = factory()
        x = x_for(model, seed=5).astype(np.float32)
        out = tmp_path / f"{case}.onnx"
        assert onnx_port.write(model, out) == [out]
        want = _source(model, reference_forward(model, x.astype(np.float64)), model.layers[-1].name)
        k = len(jobs)
        np.save(tmp_path / f"x{k}.npy", np.ascontiguousarray(_source(model, x, INPUT)), allow_pickle=False)
        argv += [str(out), str(tmp_path / f"x{k}.npy"), str(tmp_path / f"y{k}.npy")]
        jobs.append(want)
        names.append(case)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    done = subprocess.run([sys.executable, "-I", "-c", _LOADER, *argv], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    for k, (case, want) in enumerate(zip(names, jobs, strict=True)):
        got = np.load(tmp_path / f"y{k}.npy", allow_pickle=False)
        assert got.shape == want.shape, (case, got.shape, want.shape, lines[k])
        assert_close(got, want, "float32", what=f"{case}: the written port in python -I")
        assert "'batch'" in lines[k].split("|")[0], lines[k]
    # the channels_first 1-D classifier takes NCW: (batch, C=3, L=12)
    assert lines[names.index("cnn1d")].split("|")[0].strip() == "['batch', 3, 12]", lines


def test_the_graph_uses_onnx_s_own_operators():
    ops = {n.op_type for n in onnx_port.graph(CASES["residual"](), "float32").graph.node}
    assert {"Conv", "BatchNormalization", "Add", "GlobalAveragePool", "Flatten", "Gemm"} <= ops, ops
    cnn = onnx_port.graph(CASES["cnn1d"](), "float32").graph
    convs = [n for n in cnn.node if n.op_type == "Conv"]
    assert len(convs) == 3 and all(len(n.input) == 3 for n in convs)
    assert not [n for n in cnn.node if n.op_type == "Transpose"]  # NCW in, Conv-BN-ReLU, pooled: no transposes
    bn = next(n for n in cnn.node if n.op_type == "BatchNormalization")
    attrs = {a.name: onnx_port.helper.get_attribute_value(a) for a in bn.attribute}
    assert attrs["epsilon"] == pytest.approx(1e-5) and attrs["momentum"] == pytest.approx(0.9)
    causal = next(n for n in onnx_port.graph(CASES["conv1d-causal"](), "float32").graph.node if n.op_type == "Conv")
    assert {a.name: onnx_port.helper.get_attribute_value(a) for a in causal.attribute}["pads"] == [4, 0]


def test_a_concat_axis_left_untranslated_fails(monkeypatch):
    """Planted: Concat's canonical axis -1 passed as is to the NCHW graph (the W axis there, not the channels)."""
    for case in ("concat_maps", "concat_1d"):
        model = CASES[case]()
        x = x_for(model)
        want = reference_forward(model, x)
        assert_close(onnx_port.build(model, "float32").forward(x), want, "float32")
        monkeypatch.setattr(onnx_port.shape, "_physical_axis", lambda layout, rank, axis: axis % rank)
        try:
            got = onnx_port.build(model, "float32").forward(x)
        except Exception as e:  # noqa: BLE001 -- the wrong axis may not fit the shapes: ONNX Runtime raises
            assert "Concat" in str(e) or "cat" in str(e), e
        else:
            assert got.shape != want.shape or error_stats(got, want).max_abs > 1e-2, (case, got.shape)
        monkeypatch.undo()


def test_float64_batch_and_layer_norm_run_and_conv1d_is_refused():
    model = CASES["bn_dense"]()
    x = x_for(model)
    assert onnx_port.refusal(model, "float64") is None
    got = onnx_port.build(model, "float64").forward(x)
    assert got.dtype == np.float64
    assert_close(got, reference_forward(model, x), "float64", what="batch_norm + layer_norm in float64")
    pooled = make("pooled", (5, 3), [("batch_norm", "bn", {}), ("global_avg_pool", "gap", {})])
    assert_close(onnx_port.build(pooled, "float64").forward(x_for(pooled)), reference_forward(pooled, x_for(pooled)), "float64")
    why = onnx_port.refusal(CASES["cnn1d"](), "float64")
    assert why is not None and "'conv0' (conv1d)" in why and "float32 only" in why, why
    with pytest.raises(Refused, match="conv0"):
        onnx_port.build(CASES["cnn1d"](), "float64")


def test_layer_norm_of_a_channels_first_map_normalises_the_channels():
    """On an NCW value ONNX's LayerNormalization(axis=1) would normalise C and L together: the port transposes."""
    model = make("ln_map", (6, 4), [("conv1d", "c", {"filters": 5, "kernel_size": 2}), ("layer_norm", "ln", {"epsilon": 1e-5})])
    g = onnx_port.graph(model, "float32").graph
    ln = next(n for n in g.node if n.op_type == "LayerNormalization")
    assert {a.name: onnx_port.helper.get_attribute_value(a) for a in ln.attribute}["axis"] == -1
    x = x_for(model)
    assert_close(onnx_port.build(model, "float32").forward(x), reference_forward(model, x), "float32")
