"""The ONNX importer (impls/importers/onnx_import.py): .onnx files -> model descriptions.

Files written by torch.onnx.export (the TorchScript exporter, dynamo=False) from torch modules built here import
and agree with the torch module itself: the description's float64 reference against the module in float64 at the
float64 bar, the file in ONNX Runtime against the module at the float32 bar, layer by layer too. The ONNX port of
the port tests' descriptions imports back to the same description. What the chain cannot hold is refused naming
the node; bad files are one BadInput line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import assert_close
from impls.importers import BadInput, UnsupportedLayer, load
from impls.model.compose import reference_forward, reference_outputs
from impls.model.description import ShapeError
from impls.model.layers import spec_of
from impls.ports import onnx_port
from tests.test_port_onnx import MODELS

onnx_import = pytest.importorskip("impls.importers.onnx_import", exc_type=ImportError)
onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper


def _torch():
    try:
        return frameworks.load("torch")
    except frameworks.BackendUnavailable as e:
        pytest.skip(str(e))


def export(module, shape: tuple, path: Path, dynamic: bool = True) -> Path:
    """torch.onnx.export (TorchScript, dynamo=False) of the module in eval mode, the batch symbolic."""
    torch = _torch()
    module.eval()
    torch.manual_seed(0)
    kwargs = {"dynamic_axes": {"x": {0: "batch"}}} if dynamic else {}
    torch.onnx.export(module, (torch.randn(*shape),), str(path), dynamo=False, input_names=["x"], output_names=["y"], **kwargs)
    return path


def torch_cnn():
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
            self.conv2 = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=2)
            self.dw = nn.Conv2d(6, 12, 2, groups=6)  # one input channel per group: depthwise
            self.pad = nn.ZeroPad2d((0, 1, 1, 0))  # torch order: left, right, top, bottom
            self.pool = nn.MaxPool2d(2, stride=1)
            self.avg = nn.AvgPool2d(2, stride=(1, 2), padding=1, count_include_pad=False)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(12 * 5 * 3, 7)
            self.fc2 = nn.Linear(7, 4)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = torch.tanh(self.conv2(x))
            x = self.pool(self.pad(torch.sigmoid(self.dw(x))))  # positive before the zero pad: see the port's PadFusion note
            x = self.flatten(self.avg(x))
            return torch.softmax(self.fc2(F.relu(self.fc1(x))), dim=-1)

    return Net()


def torch_gru(head: str = "out[:, -1]"):
    torch = _torch()
    nn = torch.nn

    class GRUNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(5, 6, batch_first=True)
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            out, h = self.gru(x)
            last = out[:, -1] if head == "out[:, -1]" else h[-1]
            return torch.softmax(self.fc(torch.tanh(last)), dim=-1)

    return GRUNet()


def _against_torch(module, imported, x_torch_layout: np.ndarray, x_canonical: np.ndarray) -> None:
    torch = _torch()
    with torch.no_grad():
        y32 = module(torch.from_numpy(x_torch_layout.astype(np.float32))).numpy()
        y64 = module.double()(torch.from_numpy(x_torch_layout.astype(np.float64))).numpy()
    assert_close(reference_forward(imported.model, x_canonical), y64, "float64", what="description vs the torch module (float64)")
    assert_close(imported.forward(x_canonical), y32, "float32", what="the file in onnxruntime vs the torch module")
    for i, (got, ref) in enumerate(zip(imported.layer_outputs(x_canonical), reference_outputs(imported.model, x_canonical), strict=True)):
        assert_close(got, ref, "float32", what=f"layer {i} {imported.model.layers[i].name} of the file")


def test_torch_cnn_imports_and_agrees_with_the_module(tmp_path):
    module = torch_cnn()
    imported = load(str(export(module, (3, 3, 9, 10), tmp_path / "cnn.onnx")))
    m = imported.model
    assert (m.source, m.boundary, m.input_shape) == ("onnx", "channels_first", (9, 10, 3))
    kinds = [la.kind for la in m.layers]
    assert kinds == ["conv2d", "activation", "conv2d", "activation", "depthwise_conv2d", "activation", "zero_pad2d",
                     "max_pool2d", "avg_pool2d", "flatten", "dense", "activation", "dense", "activation"]  # fmt: skip
    names = [la.name for la in m.layers]
    assert names[0] == "conv1" and names[4] == "dw" and names[6] == "pad" and names[10] == "fc1"
    assert m.layers[6].options["padding"] == [[1, 0], [0, 1]] and m.layers[8].options["count_include_pad"] is False
    # the flatten's (c, h, w) rows became canonical (h, w, c) ones: fc1's kernel is not torch's weight transposed
    torch_rows = module.fc1.weight.detach().numpy().T
    assert not np.allclose(m.layers[10].weights["kernel"], torch_rows)
    x = np.random.default_rng(3).uniform(-1, 1, (3, 9, 10, 3))
    _against_torch(module, imported, x.transpose(0, 3, 1, 2), x)


@pytest.mark.parametrize("head", ["out[:, -1]", "h[-1]"])
def test_torch_gru_classifier_imports_and_agrees_with_the_module(tmp_path, head):
    module = torch_gru(head)
    imported = onnx_import.load_file(export(module, (3, 7, 5), tmp_path / "gru.onnx"), None)
    m = imported.model
    assert m.input_shape == (7, 5) and [la.kind for la in m.layers] == ["gru", "activation", "dense", "activation"]
    assert dict(m.layers[0].options) == {"units": 6, "variant": "reset_after", "return_sequences": False}
    assert m.layers[0].name == "gru" and m.layers[2].name == "fc"
    assert any("folded" in n for n in imported.notes)  # Shape -> Gather -> Concat -> ConstantOfShape: the zero state
    x = np.random.default_rng(4).uniform(-1, 1, (3, 7, 5))
    _against_torch(module, imported, x, x)


def test_a_transposed_initializer_folds_into_the_dense(tmp_path):
    """Transpose of an initializer (as exporters emit) is evaluated once: the Gemm sees a constant."""
    g = np.random.default_rng(5)
    k, b = g.uniform(-1, 1, (4, 6)).astype(np.float32), g.uniform(-1, 1, 4).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["k_out_in"], ["k"], perm=[1, 0], name="/fc/Transpose"),
             helper.make_node("Gemm", ["x", "k", "b"], ["z"], name="/fc/Gemm"),
             helper.make_node("Sigmoid", ["z"], ["y"], name="/fc/Sigmoid")]  # fmt: skip
    path = _save(tmp_path / "t.onnx", nodes, (None, 6), {"k_out_in": k, "b": b}, (None, 4))
    m = onnx_import.load_file(path, None).model
    assert [(la.kind, la.name, la.options.get("activation")) for la in m.layers] == [("dense", "fc", "sigmoid")]
    np.testing.assert_array_equal(m.layers[0].weights["kernel"], k.T)


# --------------------------------------------------------------------------- port -> import


def _normalised(model) -> list[tuple]:
    """(kind, name, options with 'same' / 'valid' as explicit pads) per layer, dropout left out (the port omits it)."""
    from impls.contract import spec
    from impls.model.layers.conv2d import geometry_kwargs
    from impls.model.layers.pool2d import pool_kwargs

    out, shapes = [], model.shapes(3)
    for la, shape in zip(model.layers, shapes, strict=False):
        if la.kind == "dropout":
            continue
        opts = spec_of(la.kind).options(la.options)
        if la.kind in ("conv2d", "depthwise_conv2d"):
            kernel = spec_of(la.kind).op_weights(opts, dict(la.weights))["kernel"].shape
            groups = shape[3] if la.kind == "depthwise_conv2d" else opts["groups"]
            pads = spec.check_conv2d(shape, kernel, (kernel[3],), **geometry_kwargs({**opts, "groups": groups})).pads
        elif la.kind in ("max_pool2d", "avg_pool2d"):
            pads = spec.check_pool2d(shape, **pool_kwargs(opts), op=la.kind).pads
        if "padding" in opts and la.kind != "zero_pad2d":
            opts["padding"] = [[pads[0], pads[1]], [pads[2], pads[3]]]
        out.append((la.kind, la.name, opts))
    return out


@pytest.mark.parametrize("native_layout", [False, True], ids=["source_layout", "native_layout"])
@pytest.mark.parametrize("case", MODELS)
def test_port_then_import_gives_the_same_description(tmp_path, case, native_layout):
    model = MODELS[case]()
    path = tmp_path / f"{case}.onnx"
    onnx_port.write(model, path, native_layout=native_layout)
    back = onnx_import.load_file(path, None).model
    assert back.input_shape == model.input_shape
    if len(model.input_shape) == 3:
        assert back.boundary == ("channels_first" if native_layout else model.boundary)
    assert _normalised(back) == _normalised(model)
    kept = [la for la in model.layers if la.kind != "dropout"]
    for ours, theirs in zip(kept, back.layers, strict=True):
        assert set(ours.weights) == set(theirs.weights), ours.name
        for w in ours.weights:  # permutations and transposes only: exactly the float32 weights written
            np.testing.assert_array_equal(theirs.weights[w], np.asarray(ours.weights[w], np.float32), err_msg=f"{ours.name}.{w}")
    x = np.random.default_rng(8).uniform(-1, 1, (3, *model.input_shape))
    assert_close(onnx_import.load_file(path, None).forward(x), reference_forward(model, x), "float32", what=f"{case} port in onnxruntime")


# --------------------------------------------------------------------------- refusals


def _save(path: Path, nodes: list, in_shape: tuple, init: dict | None = None, out_shape=None, graph_name: str = "g") -> Path:
    g = helper.make_graph(nodes, graph_name, [helper.make_tensor_value_info("x", 1, list(in_shape))],
                          [helper.make_tensor_value_info("y", 1, list(out_shape or in_shape))],
                          [numpy_helper.from_array(np.asarray(a), k) for k, a in (init or {}).items()])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def _refused(path: Path, *words: str, input_shape=None) -> str:
    with pytest.raises(UnsupportedLayer) as e:
        onnx_import.load_file(path, input_shape)
    msg = str(e.value)
    assert str(path) in msg and "supported ops:" in msg and "\n" not in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_a_loop_is_refused_naming_the_node_and_the_keras_export(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Relu", ["v_in"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", 7, []), helper.make_tensor_value_info("cond_in", 9, []),
         helper.make_tensor_value_info("v_in", 1, None)],
        [helper.make_tensor_value_info("cond_out", 9, []), helper.make_tensor_value_info("v_out", 1, None)])  # fmt: skip
    nodes = [helper.make_node("Loop", ["M", "cond", "x"], ["y"], body=body, name="while_gru")]
    path = _save(tmp_path / "loop.onnx", nodes, (3, 4), {"M": np.array(2, np.int64), "cond": np.array(True)}, (3, 4))
    _refused(path, "node 0 'while_gru' (Loop)", "tf2onnx", "Keras")


def test_an_lstm_from_a_state_per_batch_row_is_refused_naming_the_node(tmp_path):
    """torch.onnx writes a buffer h0 (1, B, H) as initial_h: one the same in every row imports (initial_state
    'weights', tests/test_initial_state.py), one that differs between rows is refused."""
    torch = _torch()
    nn = torch.nn

    class L(nn.Module):
        def __init__(self, rows):
            super().__init__()
            self.lstm = nn.LSTM(5, 4, batch_first=True)
            self.register_buffer("h0", torch.full((1, 3, 4), 0.5) + (torch.arange(3.0)[None, :, None] if rows else 0))

        def forward(self, x):
            return self.lstm(x, (self.h0, torch.zeros_like(self.h0)))[0][:, -1]

    _refused(export(L(True), (3, 6, 5), tmp_path / "lstm.onnx", dynamic=False), "'/lstm/LSTM' (LSTM)", "node ",
             "initial_h", "differs between the rows")  # fmt: skip
    imported = onnx_import.load_file(export(L(False), (3, 6, 5), tmp_path / "same.onnx", dynamic=False), None)
    (layer,) = imported.model.layers
    assert layer.options["initial_state"] == "weights" and np.all(layer.weights["h0"] == 0.5)
    assert np.all(layer.weights["c0"] == 0)
    x = np.random.default_rng(4).uniform(-1, 1, (3, 6, 5))
    assert_close(reference_forward(imported.model, x), imported.forward(x).astype(np.float64), "float32")


def test_batchnorm_in_training_mode_is_refused(tmp_path):
    """Issue 18: the inference form imports (tests/test_import_onnx_cnn.py); training_mode=1 normalises by the batch."""
    c = np.arange(1.0, 3.0, dtype=np.float32)
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", training_mode=1)]
    path = _save(tmp_path / "bn.onnx", nodes, (3, 2, 4, 4), {"s": c, "b": c, "m": c, "v": c}, (3, 2, 4, 4))
    _refused(path, "node 0 'bn' (BatchNormalization)", "training_mode=1")


@pytest.mark.parametrize("what", ["dilation", "bidirectional", "gate"])
def test_torch_graphs_outside_the_chain_are_refused(tmp_path, what):
    torch = _torch()
    nn = torch.nn

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 1)
            self.pool = nn.MaxPool2d(2, dilation=2)  # ceil_mode imports since issue 24
            self.gru = nn.GRU(5, 3, batch_first=True, bidirectional=True)

        def forward(self, x):
            if what == "dilation":
                return self.pool(self.conv(x))
            if what == "bidirectional":  # h_n[0]: the forward half alone (a bidirectional layer imports joined only)
                return self.gru(x)[1][0]
            return x / torch.relu(self.conv(x))  # x + ... imports since issue 18, a gate's x * ... since 24; x / ... not

    shape = (3, 6, 5) if what == "bidirectional" else (3, 2, 5, 5)
    path = export(M(), shape, tmp_path / f"{what}.onnx")
    words = {"dilation": ("(MaxPool)", "dilations"), "bidirectional": ("(GRU)", "bidirectional"),
             "gate": ("(Div)", "only Add, Mul, Sum and Concat merge")}[what]  # fmt: skip
    _refused(path, *words)


# --------------------------------------------------------------------------- bad input and shapes


@pytest.mark.parametrize("damage", ["missing", "truncated", "junk"])
def test_unreadable_files_are_one_bad_input_line(tmp_path, damage):
    good = onnx_port.write(MODELS["gru"](), tmp_path / "good.onnx")[0].read_bytes()
    path = tmp_path / f"{damage}.onnx"
    if damage != "missing":
        path.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"not an onnx file at all")
    with pytest.raises(BadInput) as e:
        load(str(path))
    msg = str(e.value)
    assert msg.startswith(str(path)) and "\n" not in msg, msg
    assert ("no such file" in msg) if damage == "missing" else ("not a readable ONNX file" in msg or "not a valid ONNX" in msg)


def test_symbolic_dims_need_an_input_shape_that_fits(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="/act/Relu")]
    path = _save(tmp_path / "sym.onnx", nodes, ("batch", "time", 4))
    with pytest.raises(BadInput, match="--input-shape"):
        onnx_import.load_file(path, None)
    assert onnx_import.load_file(path, (3, 6, 4)).model.input_shape == (6, 4)
    with pytest.raises(ShapeError) as e:
        onnx_import.load_file(path, (3, 6, 5))
    assert "(3, 6, 5)" in str(e.value) and "'batch', 'time', 4" in str(e.value)


def test_a_graph_returning_a_flattened_nchw_map_imports(tmp_path):
    """torch's Conv -> Flatten -> Softmax exported as it is: the output is flattened (c, h, w) with no Dense after it.
    It was refused; the source's outputs now read back in the description's (h, w, c) order, and its ports return
    (c, h, w) again (Model.flattened_output, tests/test_port.py)."""
    torch = _torch()
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Flatten(), torch.nn.Softmax(dim=-1))
    imported = load(str(export(module, (3, 2, 5, 4), tmp_path / "flat.onnx")))
    assert imported.model.flattened_output() == (3, 2, 3)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 5, 4, 2))
    ref = reference_forward(imported.model, x)
    assert_close(imported.forward(x), ref, "float32", what="the file in onnxruntime, read back in (h, w, c) order")
    with torch.no_grad():
        own = module(torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))).numpy()
    assert_close(own.reshape(3, 3, 3, 2).transpose(0, 2, 3, 1).reshape(3, -1), ref, "float32", what="torch's (c, h, w)")


def test_an_opset_11_gru_export_folds_at_its_own_opset(tmp_path):
    """torch.onnx.export(..., opset_version=11) writes the zero state's Unsqueeze with an `axes` attribute; folding it
    ran Unsqueeze-13 (ReferenceEvaluator given a bare node ignores `opsets`) and raised TypeError, a traceback."""
    torch = _torch()
    module = torch_gru().eval()
    torch.onnx.export(module, (torch.randn(3, 7, 5),), str(tmp_path / "gru11.onnx"), dynamo=False, opset_version=11)
    imported = load(str(tmp_path / "gru11.onnx"))
    assert [la.kind for la in imported.model.layers] == ["gru", "activation", "dense", "activation"]
    x = np.random.default_rng(6).uniform(-1, 1, (3, 7, 5))
    _against_torch(module, imported, x, x)


@pytest.mark.parametrize("case", ["cnn", "gru"])
def test_a_graph_exported_with_a_fixed_batch_of_one_runs_the_certificates_batch(tmp_path, case):
    """torch.onnx.export(model, torch.randn(1, ...)) without dynamic axes, the everyday export, fixes the batch at 1;
    the source check fed it the certificate's batch of 3 and ONNX Runtime raised INVALID_ARGUMENT (certify: FAIL)."""
    module, shape = (torch_cnn(), (1, 3, 9, 10)) if case == "cnn" else (torch_gru(), (1, 7, 5))
    imported = load(str(export(module, shape, tmp_path / "one.onnx", dynamic=False)))
    x = np.random.default_rng(7).uniform(-1, 1, (3, *imported.model.input_shape))
    _against_torch(module, imported, x.transpose(0, 3, 1, 2) if case == "cnn" else x, x)
    assert any("fixed at 1" in n for n in imported.notes)
