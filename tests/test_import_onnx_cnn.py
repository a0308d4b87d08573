"""The ONNX importer on the issue-18 kinds and graphs (impls/importers/onnx_import.py).

torch.onnx.export (TorchScript, dynamo=False, eval mode) of a 2-D residual block, a Conv1d-BatchNorm1d-ReLU x3
classifier, a LayerNorm over an NCW map's length and a channel concatenation import and agree with the torch module
(the description's float64 reference at the float64 bar, the file in ONNX Runtime at the float32 bar, layer by
layer). The exporter folds an eval-mode BatchNorm into the Conv before it: those descriptions hold no batch_norm
(asserted: what the file holds is what is described). Hand-built graphs with explicit BatchNormalization,
LayerNormalization, GlobalAveragePool / ReduceMean and Concat nodes import with their attributes (epsilon, momentum)
and agree with the file in ONNX Runtime. The ONNX port of the port tests' graphs imports back and computes the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import assert_close
from impls.importers import UnsupportedLayer
from impls.model.compose import reference_forward, reference_outputs
from impls.ports import onnx_port
from tests.test_port_onnx_cnn import CASES as PORT_CASES

onnx_import = pytest.importorskip("impls.importers.onnx_import", exc_type=ImportError)
onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper


def _torch():
    try:
        return frameworks.load("torch")
    except frameworks.BackendUnavailable as e:
        pytest.skip(str(e))


def export(module, shape: tuple, path: Path) -> Path:
    torch = _torch()
    module.eval()
    torch.manual_seed(0)
    torch.onnx.export(module, (torch.randn(*shape),), str(path), dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}})  # fmt: skip
    return path


def _randomise_bn(module) -> None:
    """Non-trivial moving statistics and affine weights (a fresh BatchNorm's are 0, 1, 1, 0)."""
    torch = _torch()
    g = torch.Generator().manual_seed(3)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.uniform_(-0.5, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)


def _against_torch(module, imported, x_torch: np.ndarray, x: np.ndarray) -> None:
    """The exporter folded each BatchNorm into its Conv in float32 (the folded kernel rounded to float32): the
    description is the file's function, so it meets the torch module at the float32 bar, not the float64 one."""
    torch = _torch()
    with torch.no_grad():
        y32 = module.float()(torch.from_numpy(x_torch.astype(np.float32))).numpy()
        y64 = module.double()(torch.from_numpy(x_torch.astype(np.float64))).numpy()
    assert_close(reference_forward(imported.model, x), y64, "float32", what="description vs the torch module")
    assert_close(imported.forward(x), y32, "float32", what="the file in onnxruntime vs the torch module")
    for i, (got, ref) in enumerate(zip(imported.layer_outputs(x), reference_outputs(imported.model, x), strict=True)):
        assert_close(got, ref, "float32", what=f"layer {i} {imported.model.layers[i].name} of the file")


def torch_residual():
    nn = _torch().nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(4)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.flatten = nn.Flatten()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            y = self.bn2(self.conv2(nn.functional.relu(self.bn1(self.conv1(x)))))
            return self.fc(self.flatten(self.pool(nn.functional.relu(y + x))))

    m = Block()
    _randomise_bn(m)
    return m


def test_a_torch_residual_block_imports_as_a_graph(tmp_path):
    module = torch_residual()
    imported = onnx_import.load_file(export(module, (3, 4, 6, 5), tmp_path / "res.onnx"), None)
    model = imported.model
    kinds = [la.kind for la in model.layers]
    assert not model.is_chain() and "add" in kinds and "global_avg_pool" in kinds, kinds
    add = model.layers[kinds.index("add")]
    assert "input" in model.sources(kinds.index("add")) and len(add.inputs) == 2, add.inputs
    assert model.boundary == "channels_first" and model.input_shape == (6, 5, 4)
    # torch.onnx.export folds an eval-mode BatchNorm into the Conv before it: the file has no BatchNormalization
    assert "batch_norm" not in kinds, kinds
    x = np.random.default_rng(1).uniform(-1, 1, (3, 6, 5, 4))
    _against_torch(module, imported, x.transpose(0, 3, 1, 2), x)


def torch_cnn1d():
    nn = _torch().nn
    layers = []
    for cin, cout, s in ((3, 6, 1), (6, 5, 2), (5, 4, 1)):
        layers += [nn.Conv1d(cin, cout, 3, stride=s, padding=1), nn.BatchNorm1d(cout), nn.ReLU()]
    m = nn.Sequential(*layers, nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(4, 3))
    _randomise_bn(m)
    return m


def test_a_torch_conv1d_bn_relu_classifier_imports(tmp_path):
    module = torch_cnn1d()
    imported = onnx_import.load_file(export(module, (3, 3, 12), tmp_path / "cnn1d.onnx"), None)
    kinds = [la.kind for la in imported.model.layers]
    assert kinds.count("conv1d") == 3 and "global_avg_pool" in kinds and kinds[-1] == "dense", kinds
    assert imported.model.boundary == "channels_first" and imported.model.input_shape == (12, 3)
    x = np.random.default_rng(2).uniform(-1, 1, (3, 12, 3))
    _against_torch(module, imported, x.transpose(0, 2, 1), x)


def test_torch_layer_norm_of_an_ncw_map_imports_after_a_permute(tmp_path):
    """torch's LayerNorm(L) on (B, C, L) normalises the length: the description permutes, then normalises its last axis."""
    nn = _torch().nn
    module = nn.Sequential(nn.Conv1d(3, 4, 2), nn.LayerNorm(6), nn.Tanh())
    with _torch().no_grad():
        module[1].weight.uniform_(0.5, 1.5)
        module[1].bias.uniform_(-0.5, 0.5)
    imported = onnx_import.load_file(export(module, (3, 3, 7), tmp_path / "ln.onnx"), None)
    kinds = [la.kind for la in imported.model.layers]
    assert kinds[:3] == ["conv1d", "permute", "layer_norm"], kinds
    x = np.random.default_rng(3).uniform(-1, 1, (3, 7, 3))
    torch = _torch()
    with torch.no_grad():
        y64 = module.double()(torch.from_numpy(x.transpose(0, 2, 1).copy())).numpy()
    # the graph returns (B, C, L) with the length normalised: the description's output is that order (permuted)
    assert_close(reference_forward(imported.model, x), y64, "float64", what="description vs torch")
    assert_close(imported.forward(x), y64, "float32", what="the file vs torch")


def test_a_torch_channel_concatenation_imports(tmp_path):
    torch = _torch()
    nn = torch.nn

    class Cat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.mix = nn.Conv2d(3, 2, 3, padding=1), nn.Conv2d(3, 3, 1), nn.Conv2d(5, 2, 2)

        def forward(self, x):
            return self.mix(torch.cat([torch.relu(self.a(x)), torch.tanh(self.b(x))], dim=1))

    module = Cat()
    imported = onnx_import.load_file(export(module, (3, 3, 5, 6), tmp_path / "cat.onnx"), None)
    cat = next(la for la in imported.model.layers if la.kind == "concatenate")
    assert cat.options["axis"] == -1 and len(cat.inputs) == 2  # torch's dim=1 of NCHW: the channels
    x = np.random.default_rng(4).uniform(-1, 1, (3, 5, 6, 3))
    with torch.no_grad():
        y = module.double()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    assert_close(reference_forward(imported.model, x), y, "float64", what="description vs torch")
    assert_close(imported.forward(x), y, "float32", what="the file vs torch")


# --------------------------------------------------------------------------- hand-built graphs


def _save(path: Path, nodes: list, in_shape: tuple, init: dict, out_shape=None) -> Path:
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, ["batch", *in_shape[1:]])],
                          [helper.make_tensor_value_info("y", 1, ["batch", *out_shape])],
                          [numpy_helper.from_array(np.asarray(a, np.float32) if np.asarray(a).dtype.kind == "f" else np.asarray(a), k)
                           for k, a in init.items()])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def _bn_init(prefix: str, C: int, seed: int) -> dict:
    g = np.random.default_rng(seed)
    return {f"{prefix}.s": g.uniform(0.5, 1.5, C), f"{prefix}.b": g.uniform(-0.5, 0.5, C),
            f"{prefix}.m": g.uniform(-0.3, 0.3, C), f"{prefix}.v": g.uniform(0.5, 2.0, C)}  # fmt: skip


def _bn(prefix: str, x: str, y: str, **attrs):
    return helper.make_node("BatchNormalization", [x, *(f"{prefix}.{k}" for k in "sbmv")], [y], name=f"/{prefix}/BatchNormalization", **attrs)


def test_a_hand_built_residual_block_with_explicit_batch_norms(tmp_path):
    rng = np.random.default_rng(5)
    C = 3
    init = {"w1": rng.uniform(-0.4, 0.4, (C, C, 3, 3)), "w2": rng.uniform(-0.4, 0.4, (C, C, 3, 3)),
            **_bn_init("bn1", C, 1), **_bn_init("bn2", C, 2), "fc.w": rng.uniform(-0.5, 0.5, (2 * C, 2)),
            "fc.b": rng.uniform(-0.1, 0.1, 2), "ln.s": rng.uniform(0.5, 1.5, 2 * C), "ln.b": rng.uniform(-0.2, 0.2, 2 * C),
            "axes": np.array([2, 3], np.int64)}  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="/conv1/Conv", pads=[1, 1, 1, 1]),
        _bn("bn1", "c1", "b1", epsilon=1e-3, momentum=0.8),
        helper.make_node("Relu", ["b1"], ["r1"], name="/relu1/Relu"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="/conv2/Conv", pads=[1, 1, 1, 1]),
        _bn("bn2", "c2", "b2"),
        helper.make_node("Add", ["b2", "x"], ["s"], name="/add/Add"),
        helper.make_node("Relu", ["s"], ["r2"], name="/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["r2"], ["gap"], name="/gap/GlobalAveragePool"),
        helper.make_node("ReduceMax", ["r2", "axes"], ["gmp"], name="/gmp/ReduceMax", keepdims=0),
        helper.make_node("Flatten", ["gap"], ["flat"], name="/flat/Flatten"),
        helper.make_node("Concat", ["flat", "gmp"], ["cat"], name="/cat/Concat", axis=1),
        helper.make_node("LayerNormalization", ["cat", "ln.s", "ln.b"], ["ln"], name="/ln/LayerNormalization", epsilon=1e-4),
        helper.make_node("MatMul", ["ln", "fc.w"], ["mm"], name="/fc/MatMul"),
        helper.make_node("Add", ["mm", "fc.b"], ["y"], name="/fc/Add"),
    ]  # fmt: skip
    imported = onnx_import.load_file(_save(tmp_path / "res.onnx", nodes, (3, C, 5, 4), init, (2,)), None)
    m = imported.model
    by = {la.name: la for la in m.layers}
    assert [la.kind for la in m.layers] == ["conv2d", "batch_norm", "activation", "conv2d", "batch_norm", "add",
                                            "activation", "global_avg_pool", "global_max_pool", "concatenate",
                                            "layer_norm", "dense"]  # fmt: skip
    assert by["bn1"].options == {"epsilon": 1e-3, "momentum": pytest.approx(0.8), "variance_update": "biased"}
    assert by["bn2"].options["epsilon"] == pytest.approx(1e-5) and by["bn2"].options["momentum"] == pytest.approx(0.9)
    np.testing.assert_array_equal(by["bn1"].weights["moving_var"], np.asarray(init["bn1.v"], np.float32))
    assert set(m.state()) == {(b, w) for b in ("bn1", "bn2") for w in ("moving_mean", "moving_var")}
    assert m.sources(m.layer_index("add")) == ("bn2", "input") and by["cat"].inputs == ("gap", "gmp")
    assert by["ln"].options["epsilon"] == pytest.approx(1e-4)
    x = rng.uniform(-1, 1, (3, 5, 4, C))
    assert_close(reference_forward(m, x), imported.forward(x), "float32", what="description vs the file")
    for i, (got, ref) in enumerate(zip(imported.layer_outputs(x), reference_outputs(m, x), strict=True)):
        assert_close(got, ref, "float32", what=f"layer {i} {m.layers[i].name}")
    # and the description's own ONNX port computes the same
    assert_close(onnx_port.build(m, "float32").forward(x), imported.forward(x), "float32", what="port of the import")


def test_refusals_name_the_node(tmp_path):
    init = {**_bn_init("bn", 2, 0), "ln.s": np.ones(4)}
    cases = {
        "training": ([_bn("bn", "x", "y", training_mode=1)], (3, 2, 4), ("training_mode=1",)),
        "ln_axes": ([helper.make_node("LayerNormalization", ["x", "ln.s"], ["y"], name="/ln/LN", axis=1)], (3, 2, 4),
                    ("(LayerNormalization)", "over the last axis only")),
        "div": ([helper.make_node("Div", ["x", "x"], ["y"], name="/m/Div")], (3, 2, 4), ("(Div)", "only Add, Mul, Sum and Concat")),
    }  # fmt: skip
    for what, (nodes, shape, words) in cases.items():
        path = _save(tmp_path / f"{what}.onnx", nodes, shape, init, shape[1:])
        with pytest.raises(UnsupportedLayer) as e:
            onnx_import.load_file(path, None)
        for w in words:
            assert w in str(e.value), (what, str(e.value))


@pytest.mark.parametrize("case", ["cnn1d", "residual", "concat_maps", "concat_1d", "shapes", "conv1d-causal", "bn_dense"])
def test_the_port_of_a_graph_imports_back(tmp_path, case):
    model = PORT_CASES[case]()
    path = onnx_port.write(model, tmp_path / f"{case}.onnx")[0]
    back = onnx_import.load_file(path, None)
    kinds = lambda m: [la.kind for la in m.layers if la.kind not in ("dropout", "flatten")]
    assert kinds(back.model) == kinds(model) or case == "shapes", (kinds(back.model), kinds(model))
    assert back.model.is_chain() == model.is_chain()
    x = np.random.default_rng(6).uniform(-1, 1, (3, *model.input_shape))
    assert_close(reference_forward(back.model, x), reference_forward(model, x), "float32", what=f"{case} imported back")
    assert_close(back.forward(x), reference_forward(model, x), "float32", what=f"{case}: the file")
