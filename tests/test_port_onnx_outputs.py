"""The ONNX port's every-layer outputs and rebinding (issue 27; impls/ports/onnx_port/voice.py).

Built.outputs runs the port's graph once with every layer's value marked a graph output as well and reads each back
from the layout the graph builder tracked for it: (a) each equals the forward of the voice's own build of the layers
up to it (Model.sub(0, i + 1)), and the last equals forward(x), at the float32 bar and in float64 to 1e-12 relative,
on seeded non-symmetric models: a residual graph with add and concatenate, CNNs whose Flatten feeds a Dense (the
NCHW flatten, the Dense's rows permuted) or is returned to a channels_first source (its (c, h, w) order), zero
padding beside a pool or a conv (the ONNX Runtime 1.31 workarounds), masked bidirectional LSTM and GRU, an
embedding; (b) a tap reported for the next layer, or a layout the builder tracked dropped, is caught by the same
comparison; (c) Built.rebind computes what build computes for another model of the same structure (other weights,
other names) without assembling or checking a graph again; (d) build, outputs and rebind write no file.
"""

from __future__ import annotations

import builtins
import tempfile

import numpy as np
import pytest

from impls.contract.tolerance import error_stats, tolerance
from impls.model import seeded, voices
from impls.model.description import INPUT, Model

onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)
from impls.ports.onnx_port import builder, voice
from impls.runtime import onnx_graphs

VOICE = "onnxruntime"
B, T, I, H = 4, 5, 4, 3
VOCAB = 7


def make(name: str, input_shape: tuple, specs: list, boundary: str = "channels_last", seed: int = 11,
         input_dtype: str | None = None, prefix: str = "") -> Model:  # fmt: skip
    """Seeded non-symmetric weights (each kind's own init); `prefix` renames every layer (and what reads it)."""
    named = [(k, prefix + n, o, *([tuple(s if s == INPUT else prefix + s for s in sp[0])] if sp else []))
             for k, n, o, *sp in specs]
    return seeded.chain(name, input_shape, named, seed, boundary, B, input_dtype=input_dtype)


RESIDUAL = [  # conv-bn-relu-conv, + input, concatenated with the first block's output, pooled, dense
    ("conv2d", "conv1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
    ("batch_norm", "bn1", {"epsilon": 1e-5}),
    ("activation", "relu1", {"activation": "relu"}),
    ("conv2d", "conv2", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
    ("add", "add", {}, ("conv2", INPUT)),
    ("concatenate", "cat", {"axis": -1}, ("add", "relu1")),
    ("activation", "relu2", {"activation": "relu"}),
    ("global_avg_pool", "gap", {}),
    ("dense", "fc", {"units": 3}),
]
CNN = [  # zero padding before a conv (folded into it) and before a max pool (the Pad keeps its axes), flatten -> dense
    ("zero_pad2d", "pad0", {"padding": [[1, 0], [0, 2]]}),
    ("conv2d", "c1", {"filters": 5, "kernel_size": [3, 2], "strides": [1, 2], "activation": "tanh"}),
    ("activation", "relu", {"activation": "relu"}),
    ("zero_pad2d", "pad1", {"padding": [[1, 1], [0, 1]]}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1]}),
    ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "padding": "same"}),
    ("flatten", "flat", {}),
    ("dropout", "drop", {"rate": 0.2}),
    ("dense", "d1", {"units": 6, "activation": "sigmoid"}),
    ("dense", "d2", {"units": 3, "activation": "softmax"}),
]
FLAT_OUT = [  # a channels_first source returns the features in its (c, h, w) order; the description in (h, w, c)
    ("conv2d", "c", {"filters": 3, "kernel_size": [2, 2], "activation": "relu"}),
    ("flatten", "flat", {}),
    ("dropout", "drop", {"rate": 0.1}),
    ("activation", "act", {"activation": "tanh"}),
]
CNN1D = [
    ("conv1d", "c1", {"filters": 5, "kernel_size": 3, "padding": "causal", "dilation": 2}),
    ("batch_norm", "bn", {"epsilon": 1e-3}),
    ("conv1d", "c2", {"filters": 3, "kernel_size": 2, "padding": "same", "activation": "tanh"}),
    ("dense", "d", {"units": 4}),  # on the last axis of an NCW map: channels last again
    ("global_max_pool", "gmp", {}),
]
MASKED = [
    ("masking", "m", {"mask_value": 0.25}),
    ("lstm", "bl", {"units": H, "direction": "bidirectional", "merge_mode": "concat", "return_sequences": True}),
    ("dense", "td", {"units": 5, "activation": "tanh"}),
    ("gru", "bg", {"units": H, "direction": "bidirectional", "merge_mode": "sum", "variant": "reset_before",
                   "return_sequences": True, "padded_outputs": "hold"}),
    ("gru", "g", {"units": 2}),
    ("dense", "out", {"units": 3, "activation": "softmax"}),
]  # fmt: skip
EMBEDDING = [
    ("embedding", "emb", {"input_dim": VOCAB, "output_dim": I, "mask_zero": True}),
    ("lstm", "bl", {"units": H, "direction": "bidirectional", "merge_mode": "mul", "return_sequences": False}),
    ("dense", "d", {"units": 2, "activation": "softmax"}),
]
F64_MAPS = [  # no Conv, GRU, LSTM or AveragePool: ONNX Runtime has float64 kernels for all of it
    ("zero_pad2d", "pad", {"padding": [[1, 0], [1, 1]]}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1]}),
    ("batch_norm", "bn", {"epsilon": 1e-3}),
    ("activation", "soft", {"activation": "softmax"}),
    ("flatten", "flat", {}),
    ("dense", "d", {"units": 4, "activation": "tanh"}),
]
F64_GRAPH = [
    ("dense", "a", {"units": 5, "activation": "relu"}),
    ("dense", "b", {"units": 5}, (INPUT,)),
    ("add", "sum", {}, ("a", "b")),
    ("layer_norm", "ln", {"epsilon": 1e-5}),
    ("concatenate", "cat", {"axis": -1}, ("ln", "a")),
    ("global_avg_pool", "gap", {}),
    ("dense", "out", {"units": 3, "activation": "sigmoid"}),
]
F64_FLAT_OUT = [("max_pool2d", "mp", {"pool_size": [2, 2]}), ("flatten", "flat", {}), ("activation", "a", {"activation": "tanh"})]

CASES = {  # name -> (model factory(seed, prefix), dtypes)
    "residual": (lambda s=11, p="": make("residual", (6, 5, 4), RESIDUAL, seed=s, prefix=p), ("float32",)),
    "residual-channels_first": (lambda s=11, p="": make("residual", (6, 5, 4), RESIDUAL, "channels_first", s, prefix=p), ("float32",)),
    "cnn": (lambda s=11, p="": make("cnn", (7, 8, 3), CNN, seed=s, prefix=p), ("float32",)),
    "cnn-channels_first": (lambda s=11, p="": make("cnn", (7, 8, 3), CNN, "channels_first", s, prefix=p), ("float32",)),
    "flat_out-channels_first": (lambda s=11, p="": make("flat_out", (4, 5, 2), FLAT_OUT, "channels_first", s, prefix=p), ("float32",)),
    "cnn1d-channels_first": (lambda s=11, p="": make("cnn1d", (9, 3), CNN1D, "channels_first", s, prefix=p), ("float32",)),
    "masked-bilstm-bigru": (lambda s=11, p="": make("masked", (T, I), MASKED, seed=s, prefix=p), ("float32",)),
    "embedding-bilstm": (lambda s=11, p="": make("emb", (T,), EMBEDDING, seed=s, prefix=p), ("float32",)),
    "f64-maps-channels_first": (lambda s=11, p="": make("f64_maps", (5, 4, 3), F64_MAPS, "channels_first", s, prefix=p),
                                ("float32", "float64")),
    "f64-graph": (lambda s=11, p="": make("f64_graph", (T, I), F64_GRAPH, seed=s, prefix=p), ("float32", "float64")),
    "f64-flat_out-channels_first": (lambda s=11, p="": make("f64_flat", (4, 6, 2), F64_FLAT_OUT, "channels_first", s, prefix=p),
                                    ("float32", "float64")),
}  # fmt: skip


def x_for(model: Model, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if model.layers[0].kind == "embedding":  # post-padded rows of 4, 2, 0 and 5 valid ids
        ids = rng.integers(1, VOCAB, (B, T))
        for row, n in enumerate((4, 2, 0, 5)):
            ids[row, n:] = 0
        return ids
    x = rng.uniform(-1.0, 1.0, (B, *model.input_shape))
    if model.layers[0].kind == "masking":  # rows of 3, 5, 0 and 1 valid steps
        for row, n in enumerate((3, 5, 0, 1)):
            x[row, n:] = 0.25
    return x - (0.5 if any(la.kind == "zero_pad2d" for la in model.layers) else 0.0)  # zeros win a max at the border


def close(got: np.ndarray, want: np.ndarray, dtype: str) -> bool:
    """The float32 bar, or 1e-12 relative (normwise) in float64; the same shape."""
    if got.shape != want.shape:
        return False
    return error_stats(got, want).rel <= (tolerance("float32") if dtype == "float32" else 1e-12)


def diverging(model: Model, dtype: str, x: np.ndarray) -> list:
    """The layers whose outputs(x) differ from the forward of the voice's build of the layers up to them; "last" where
    the last differs from forward(x)."""
    built = voices.build(VOICE, model, dtype)
    outs = built.outputs(x)
    assert len(outs) == len(model.layers)
    bad: list = [i for i, got in enumerate(outs)
                 if not close(got, voices.build(VOICE, model.sub(0, i + 1), dtype).forward(x), dtype)]
    return bad + ([] if close(outs[-1], built.forward(x), dtype) else ["last"])


@pytest.mark.parametrize("case, dtype", [(c, d) for c, (_, dts) in CASES.items() for d in dts])
def test_every_layers_output_from_one_run_equals_the_prefix_builds(case, dtype):
    model = CASES[case][0]()
    assert diverging(model, dtype, x_for(model)) == []


def test_outputs_is_one_session_run_and_the_written_graph_has_no_taps(monkeypatch, tmp_path):
    model = CASES["residual-channels_first"][0]()
    before = onnx_port.graph(model, "float32").SerializeToString()
    built = onnx_port.build(model, "float32")
    runs = []
    real_session = voice.ort_impl.session

    def session(proto, *a, **kw):
        sess = real_session(proto, *a, **kw)
        runs.append([o.name for o in proto.graph.output])
        return sess

    monkeypatch.setattr(voice.ort_impl, "session", session)
    built.outputs(x_for(model))
    built.outputs(x_for(model, 3))
    assert len(runs) == 1 and runs[0][0] == "output" and len(runs[0]) > 1  # one tapped session, made once
    after = onnx_port.graph(model, "float32")
    assert after.SerializeToString() == before and [o.name for o in after.graph.output] == ["output"]
    onnx_port.write(model, tmp_path / "net.onnx")
    assert (tmp_path / "net.onnx").read_bytes() == before


# --------------------------------------------------------------------------- planted bookkeeping bugs


def _planted(monkeypatch, change) -> None:
    real = voice._graph

    def planted(*a, **kw):
        proto, notes, taps = real(*a, **kw)
        return proto, notes, change(taps)

    monkeypatch.setattr(voice, "_graph", planted)


@pytest.mark.parametrize("case", ["cnn-channels_first", "masked-bilstm-bigru", "f64-graph"])
def test_a_tap_reported_for_the_next_layer_is_caught(monkeypatch, case):
    _planted(monkeypatch, lambda taps: [taps[0], *taps[:-1]])  # layer i's value given as layer i + 1's
    model = CASES[case][0]()
    assert diverging(model, "float32", x_for(model)) != []


@pytest.mark.parametrize("case", ["cnn", "cnn1d-channels_first", "masked-bilstm-bigru"])
def test_a_dropped_layout_is_caught(monkeypatch, case):
    """Every tap read as if canonical: NCHW maps, NCW maps, time-major sequences come back in the wrong order."""
    _planted(monkeypatch, lambda taps: [(t, builder.CANON, chw) for t, _, chw in taps])
    model = CASES[case][0]()
    assert diverging(model, "float32", x_for(model)) != []


@pytest.mark.parametrize("case", ["cnn-channels_first", "flat_out-channels_first"])
def test_a_dropped_flatten_order_is_caught(monkeypatch, case):
    """A Flatten of an NCHW map read as if its features were in the description's (h, w, c) order."""
    model = CASES[case][0]()
    taps = builder._graph(model, "float32", False)[2]
    assert any(chw is not None for _, _, chw in taps)
    _planted(monkeypatch, lambda taps: [(t, layout, None) for t, layout, _ in taps])
    assert diverging(model, "float32", x_for(model)) != []


# --------------------------------------------------------------------------- rebind


def _count_assembly(monkeypatch) -> list[str]:
    """Every graph assembled (onnx_graphs.model), checked (onnx.checker) or refused anew, by name."""
    calls: list[str] = []
    for owner, name in ((onnx_graphs, "model"), (builder.onnx.checker, "check_model"), (builder, "refusal"),
                        (builder, "_graph"), (voice, "_graph")):  # fmt: skip
        real = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _real=real, _name=name, **kw: (calls.append(_name), _real(*a, **kw))[1])
    return calls


@pytest.mark.parametrize("case", ["residual-channels_first", "cnn-channels_first", "masked-bilstm-bigru", "embedding-bilstm",
                                  "f64-graph"])
def test_rebind_computes_what_build_computes_without_assembling_a_graph(monkeypatch, case):
    make_ = CASES[case][0]
    a, b = make_(11, ""), make_(29, "other_")
    assert voices.structure(a) == voices.structure(b) and a.layers[0].name != b.layers[0].name
    x = x_for(a)
    built = onnx_port.build(a, "float32")
    want = onnx_port.build(b, "float32")
    calls = _count_assembly(monkeypatch)
    rebound = built.rebind(b)
    got, outs = rebound.forward(x), rebound.outputs(x)
    assert calls == []
    np.testing.assert_array_equal(got, want.forward(x))
    for g, w in zip(outs, want.outputs(x), strict=True):
        np.testing.assert_array_equal(g, w)
    assert not close(got, built.forward(x), "float32")  # other weights: another function
    assert rebound.notes == want.notes


def test_rebind_refuses_another_structure():
    built = onnx_port.build(CASES["residual"][0](), "float32")
    other = make("residual", (6, 5, 4), [(k, n, {**o, "units": 4} if k == "dense" else o, *r) for k, n, o, *r in RESIDUAL])
    with pytest.raises(ValueError, match="not the same structure"):
        built.rebind(other)


def test_layer_builds_rebind_each_configuration(monkeypatch):
    """The certificate's isolated checks: two conv layers of one configuration are one build and one rebind."""
    model = make("twins", (6, 5, 3), [("conv2d", "c1", {"filters": 3, "kernel_size": [3, 3], "padding": "same"}),
                                      ("conv2d", "c2", {"filters": 3, "kernel_size": [3, 3], "padding": "same"})])
    builds = voices.LayerBuilds(VOICE, "float32")
    x = x_for(model)
    first = builds.get(model.sub(0)).forward(x)
    second = builds.get(model.sub(1)).forward(x)
    assert (builds.built, builds.rebound) == (1, 1)
    np.testing.assert_array_equal(first, onnx_port.build(model.sub(0), "float32").forward(x))
    np.testing.assert_array_equal(second, onnx_port.build(model.sub(1), "float32").forward(x))


# --------------------------------------------------------------------------- no file


def test_build_outputs_and_rebind_write_no_file(monkeypatch, tmp_path):
    def refuse(*a, **kw):
        raise AssertionError("the in-process build touched a file")

    real_open = builtins.open

    def open_for_reading(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+"):
            refuse()
        return real_open(file, mode, *a, **kw)

    for owner, name in ((builder.onnx, "save"), (builder.onnx, "save_model"), (np, "save"), (np, "savez"),
                        (tempfile, "mkdtemp"), (tempfile, "mkstemp"), (tempfile, "NamedTemporaryFile"),
                        (tempfile, "TemporaryDirectory"), (builtins, "open")):  # fmt: skip
        monkeypatch.setattr(owner, name, open_for_reading if name == "open" else refuse)
    monkeypatch.chdir(tmp_path)
    model = CASES["cnn-channels_first"][0]()
    built = onnx_port.build(model, "float32")
    built.forward(x_for(model))
    built.outputs(x_for(model))
    built.rebind(CASES["cnn-channels_first"][0](29, "other_")).outputs(x_for(model))
    assert list(tmp_path.iterdir()) == []


def test_the_masked_models_outputs_refuse_pre_padded_input():
    """outputs() refuses what forward refuses (Model.check_input), before converting it."""
    model = CASES["masked-bilstm-bigru"][0]()
    x = x_for(model)
    x[0, 0] = 0.25  # a padded step before a valid one: pre-padding
    built = voices.build(VOICE, model, "float32")
    with pytest.raises(Exception) as forward_error:
        built.forward(x)
    with pytest.raises(type(forward_error.value)):
        built.outputs(x)

