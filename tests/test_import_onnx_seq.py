"""The ONNX importer's sequence ops (impls/importers/onnx_import.py): LSTM and bidirectional GRU/LSTM, Gather of a
table as an embedding, out[:, -1] of a bidirectional layer as take_step, torch's h_n heads, and the refusals.

The torch graphs are exported here with the installed torch's TorchScript exporter (dynamo=False) and compared with
the torch module itself; the hand-built graphs with ONNX Runtime running the file; each at the float32 bar.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from impls import convert, frameworks
from impls.contract.tolerance import assert_close
from impls.importers import UnsupportedLayer
from impls.model import seeded
from impls.model.compose import reference_forward

onnx_import = pytest.importorskip("impls.importers.onnx_import", exc_type=ImportError)
onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)
onnx = frameworks.load("onnx")
helper, numpy_helper = onnx.helper, onnx.numpy_helper

B, T, I, H, VOCAB = 3, 5, 4, 3, 7
IDS = np.array([[3, 1, 6, 2, 0], [5, 2, 0, 4, 1], [6, 6, 1, 2, 3]], np.int64)


def _torch():
    try:
        return frameworks.load("torch")
    except Exception as e:  # noqa: BLE001 -- a missing framework is a skip with its reason
        pytest.skip(f"torch unavailable: {e}")


def _torch_net(head: str):
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, I)
            self.lstm = nn.LSTM(I, H, num_layers=2, bidirectional=True, batch_first=True)
            self.fc = nn.Linear(2 * H, 2)

        def forward(self, ids):
            out, (h, _) = self.lstm(self.emb(ids))
            return self.fc(out[:, -1] if head == "last" else torch.cat([h[-2], h[-1]], dim=1))

    torch.manual_seed(3)
    net = Net().eval()
    with torch.no_grad():  # non-zero biases everywhere, both of each cell's
        for name, p in net.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    return torch, net


@pytest.mark.parametrize("head", ["last", "h_n"])
def test_torch_embedding_bilstm_two_layers_imports_and_matches_the_module(tmp_path, head):
    torch, net = _torch_net(head)
    path = tmp_path / f"net_{head}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(B, T, dtype=torch.long),), str(path), dynamo=False, input_names=["ids"],
                          output_names=["y"], dynamic_axes={"ids": {0: "batch"}})  # fmt: skip
    imported = onnx_import.load_file(path, None)
    m = imported.model
    kinds = [la.kind for la in m.layers]
    if head == "last":  # out[:, -1] of a bidirectional layer is NOT its final state: its backward half is a first step
        assert kinds == ["embedding", "lstm", "lstm", "take_step", "dense"], kinds
        assert m.layers[2].options["return_sequences"] and m.layers[3].options["index"] == -1
    else:  # torch.cat([h_n[-2], h_n[-1]], 1): the last layer's final states, forward then backward
        assert kinds == ["embedding", "lstm", "lstm", "dense"], kinds
        assert not m.layers[2].options["return_sequences"]
    assert m.input_dtype == "int64" and m.input_shape == (T,) and imported.dtype == "float32"
    assert all(m.layers[k].options["direction"] == "bidirectional" for k in (1, 2))
    state = {k: v.detach().numpy() for k, v in net.lstm.state_dict().items()}
    for k, layer in ((1, "l0"), (2, "l1")):  # the weights are torch's own, through the converter, exactly
        for suffix, torch_suffix in (("", layer), ("_rev", f"{layer}_reverse")):
            want = convert.lstm_from_torch(state, torch_suffix)
            for name in ("W", "U", "b_x", "b_h"):
                w = getattr(want, name)
                np.testing.assert_array_equal(m.layers[k].weights[name + suffix], w, err_msg=f"layer {k} {name}{suffix}")
    np.testing.assert_array_equal(m.layers[0].weights["embeddings"], net.emb.weight.detach().numpy())
    with torch.no_grad():
        y_torch = net(torch.from_numpy(IDS)).numpy()
    assert_close(reference_forward(m, IDS), y_torch, "float32", what=f"description of the torch net ({head})")
    assert_close(imported.forward(IDS), y_torch, "float32", what="the exported file in ONNX Runtime")


@pytest.mark.parametrize("merge_last", [("concat", True), ("concat", False)], ids=["seq", "state"])
def test_the_ports_own_bidirectional_graph_imports_back(tmp_path, merge_last):
    merge, seq = merge_last
    model = seeded.chain("bi", (T, I), [("lstm", "bl", {"units": H, "direction": "bidirectional", "merge_mode": merge,
                                                        "return_sequences": seq}),
                                        ("gru", "bg", {"units": 2, "direction": "bidirectional", "return_sequences": True}),
                                        ("take_step", "step", {"index": 1}),
                                        ("dense", "d", {"units": 2})] if seq else
                         [("lstm", "bl", {"units": H, "direction": "bidirectional", "return_sequences": False}),
                          ("dense", "d", {"units": 2})], 5)  # fmt: skip
    path = onnx_port.write(model, tmp_path / "bi.onnx")[0]
    back = onnx_import.load_file(path, None).model
    assert [la.kind for la in back.layers] == [la.kind for la in model.layers]
    assert [la.name for la in back.layers] == [la.name for la in model.layers]
    x = np.random.default_rng(0).uniform(-1, 1, (B, T, I))
    for a, b in zip(back.layers, model.layers, strict=True):
        for k, w in b.weights.items():
            np.testing.assert_allclose(a.weights[k], w, rtol=1e-6, atol=1e-7, err_msg=f"{b.name}.{k}")
    assert_close(reference_forward(back, x), reference_forward(model, x), "float32")


# --------------------------------------------------------------------------- hand-built graphs and refusals


def _rnn_graph(path: Path, op: str = "LSTM", D: int = 1, layout: int = 0, extra_inputs: dict | None = None,
               outputs: tuple = ("Y", "Y_h"), used: str = "Y_h", graph_inputs: tuple = (), **attrs) -> Path:  # fmt: skip
    """One LSTM/GRU node; X (T, B, I) or (B, T, I) for layout 1; the graph returns Y or Y_h squeezed / reshaped."""
    G = 4 if op == "LSTM" else 3
    rng = np.random.default_rng(1)
    inits = {"W": rng.uniform(-0.5, 0.5, (D, G * H, I)), "R": rng.uniform(-0.5, 0.5, (D, G * H, H)),
             "B": rng.uniform(-0.5, 0.5, (D, 2 * G * H))}  # fmt: skip
    names = ["X", "W", "R", "B", "", "", "", ""]
    for k, (name, value) in (extra_inputs or {}).items():
        names[k] = name
        if value is not None:
            inits[name] = value
    while names and not names[-1]:
        names.pop()
    node = helper.make_node(op, names, list(outputs), name=f"/rnn/{op}", hidden_size=H, layout=layout,
                            direction="bidirectional" if D == 2 else attrs.pop("direction", "forward"), **attrs)  # fmt: skip
    nodes = [node]
    if used == "Y_h":
        nodes.append(helper.make_node("Squeeze", ["Y_h", "ax"], ["out"], name="/rnn/Squeeze"))
        inits["ax"] = np.array([1 if layout else 0], np.int64)
    elif used == "Y_c":
        nodes.append(helper.make_node("Squeeze", ["Y_c", "ax"], ["out"], name="/rnn/Squeeze"))
        inits["ax"] = np.array([0], np.int64)
    else:
        nodes.append(helper.make_node("Squeeze", ["Y", "ax"], ["out"], name="/rnn/Squeeze"))
        inits["ax"] = np.array([2 if layout else 1], np.int64)
    x_shape = [B, T, I] if layout else [T, B, I]
    ins = [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, x_shape)]
    ins += [helper.make_tensor_value_info(n, onnx.TensorProto.INT32, [B]) for n in graph_inputs]
    g = helper.make_graph(nodes, "rnn", ins, [helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, ["d0", "d1", "d2"][: 3 if used == "Y" else 2])],
                          [numpy_helper.from_array(np.asarray(v, np.int64 if v.dtype.kind == "i" else np.float32), k)
                           for k, v in inits.items()])  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    m.ir_version = 10
    onnx.save(m, str(path))
    return path


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(UnsupportedLayer) as e:
        onnx_import.load_file(path, None)
    msg = str(e.value)
    for w in words:
        assert w in msg, (w, msg)
    return msg


@pytest.mark.parametrize("layout", [0, 1])
@pytest.mark.parametrize("op", ["LSTM", "GRU"])
def test_a_hand_built_node_imports_in_either_layout(tmp_path, op, layout):
    path = _rnn_graph(tmp_path / "r.onnx", op, layout=layout, used="Y", **({"linear_before_reset": 1} if op == "GRU" else {}))
    imported = onnx_import.load_file(path, None)
    (layer,) = imported.model.layers
    assert layer.kind == op.lower() and layer.options["return_sequences"]
    x = np.random.default_rng(2).uniform(-1, 1, (B, T, I))
    if layout == 0:
        source = imported.forward(x)
    else:  # ONNX Runtime 1.31 refuses batchwise RNNs ('layout == 1 ... not supported'): ONNX's reference evaluator
        from onnx.reference import ReferenceEvaluator

        assert any("layout=1" in n for n in imported.notes), imported.notes
        source = ReferenceEvaluator(str(path)).run(None, {"X": x.astype(np.float32)})[0]
    assert_close(reference_forward(imported.model, x), source.astype(np.float64), "float32", what=f"{op} layout {layout}")


@pytest.mark.parametrize("case, words", [
    ("peepholes", ("(LSTM)", "peepholes")),
    ("clip", ("clip=",)),
    ("input_forget", ("input_forget=1",)),
    ("activations", ("activations", "Relu")),
    ("initial_h", ("initial_h that differs between the rows",)),
    ("initial_c", ("initial_c that differs between the rows",)),
    ("reverse", ("direction='reverse'",)),
    ("Y_c", ("cell state Y_c",)),
    ("sequence_lens", ("sequence_lens", "one input")),
    ("sequence_lens-const", ("sequence_lens",)),
])  # fmt: skip
def test_lstm_options_outside_the_contract_are_refused_with_the_reason(tmp_path, case, words):
    path = tmp_path / f"{case}.onnx"
    kw: dict = {}
    if case == "peepholes":
        kw["extra_inputs"] = {7: ("P", np.full((1, 3 * H), 0.3))}
    elif case in ("clip", "input_forget"):
        kw[case] = 3.0 if case == "clip" else 1
    elif case == "activations":
        kw["activations"] = ["Sigmoid", "Relu", "Tanh"]
    elif case in ("initial_h", "initial_c"):
        rows = np.arange(B, dtype=np.float64)[None, :, None] * 0.1  # a state per batch row
        kw["extra_inputs"] = {5: ("h0", np.full((1, B, H), 0.5) + (rows if case == "initial_h" else 0.0)),
                              6: ("c0", np.full((1, B, H), 0.5) + (rows if case == "initial_c" else 0.0))}  # fmt: skip
    elif case == "reverse":
        kw["direction"] = "reverse"
    elif case == "Y_c":
        kw.update(outputs=("Y", "Y_h", "Y_c"), used="Y_c")
    elif case == "sequence_lens":
        kw.update(extra_inputs={4: ("lens", None)}, graph_inputs=("lens",))
    else:
        kw["extra_inputs"] = {4: ("lens", np.array([5, 3, 2], np.int32))}
    _refused(_rnn_graph(path, **kw), *words)


def test_zero_peepholes_and_zero_states_are_the_contracts_lstm(tmp_path):
    path = _rnn_graph(tmp_path / "z.onnx", extra_inputs={5: ("h0", np.zeros((1, B, H))), 6: ("c0", np.zeros((1, B, H))),
                                                          7: ("P", np.zeros((1, 3 * H)))})  # fmt: skip
    imported = onnx_import.load_file(path, None)
    assert any("peephole" in n for n in imported.notes)
    x = np.random.default_rng(3).uniform(-1, 1, (B, T, I))
    assert_close(reference_forward(imported.model, x), imported.forward(x).astype(np.float64), "float32")
