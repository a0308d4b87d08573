"""The torch importer's sequence layers (impls/importers/torch_import.py): nn.Embedding, nn.LSTM and nn.GRU stacked
(num_layers > 1) and bidirectional, read as `out`, `out[:, -1]`, `h[-1]`, `h.squeeze(0)` or
`torch.cat((h[-2], h[-1]), dim=1)`; every description checked against the module itself (float32 at the bar, float64
with module.double() within 1e-10, layer by layer both ways), the port written from it loaded by torch alone in
`python -I` agreeing with the module, and every option that changes the math refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from impls.contract.tolerance import assert_close
from impls.importers import UnsupportedLayer
from impls.importers.torch_import import from_module
from impls.model.compose import reference_forward, reference_outputs
from impls.ports import torch_port
from tests.test_port_torch_seq import run_isolated

B, T = 3, 7


class EmbedBiLSTM(nn.Module):
    """The issue's module: Embedding(50, 8) -> LSTM(8, 6, bidirectional, 2 layers) -> out[:, -1] -> Linear(12, 5)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 6, bidirectional=True, num_layers=2, batch_first=True)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.fc(out[:, -1])


class BiGRUFinal(nn.Module):
    """A two-layer bidirectional GRU read by its last layer's final states, concatenated, then a Linear."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 5, num_layers=2, bidirectional=True, batch_first=True, dropout=0.25)
        self.fc = nn.Linear(10, 3)

    def forward(self, x):
        _, h = self.gru(x)
        return torch.tanh(self.fc(torch.cat((h[-2], h[-1]), dim=1)))


class LSTMLastState(nn.Module):
    """`_, (h, c) = lstm(x)`, h[-1]: a stacked one-direction LSTM's last layer's final state; no biases."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 5, num_layers=2, batch_first=True, bias=False)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        _, (h, c) = self.lstm(x)  # noqa: RUF059 - the everyday pattern, as users write it
        return self.fc(h[-1])


class LSTMSqueeze(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 3, batch_first=True)

    def forward(self, x):
        out, (h, _) = self.lstm(x)  # noqa: RUF059 - the everyday pattern, as users write it
        return h.squeeze(0)


class LSTMLastStep(nn.Module):
    """A one-direction out[:, -1] is the final state: it folds into return_sequences False."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 3, batch_first=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        return out[:, -1]


def build(cls):
    torch.manual_seed(3)
    return cls().eval()


def ids(seed: int = 0, vocab: int = 50) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, (B, T))


def floats(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, T, 4))


CASES = {
    "embed_bilstm": (EmbedBiLSTM, ids, ["embedding", "lstm", "lstm", "take_step", "dense"]),
    "bigru_final": (BiGRUFinal, floats, ["gru", "gru", "dense", "activation"]),
    "lstm_last_state": (LSTMLastState, floats, ["lstm", "lstm", "dense"]),
    "lstm_squeeze": (LSTMSqueeze, floats, ["lstm"]),
    "lstm_last_step": (LSTMLastStep, floats, ["lstm"]),
}


def _input_shape(x: np.ndarray) -> tuple:
    return tuple(x.shape)


@pytest.mark.parametrize("name", list(CASES))
def test_imports_and_matches_the_module(name):
    cls, make, kinds = CASES[name]
    net, x = build(cls), make()
    imported = from_module(net, _input_shape(x), f"{name}.py:net")
    model = imported.model
    assert [la.kind for la in model.layers] == kinds
    assert model.input_dtype == ("int64" if make is ids else "float32")
    rec = [la for la in model.layers if la.kind in ("lstm", "gru")]
    opts = [dict(la.options) for la in rec]
    assert all(o["return_sequences"] for o in opts[:-1])
    assert opts[-1]["return_sequences"] == (name == "embed_bilstm")  # only the bidirectional out[:, -1] keeps it
    assert all(o.get("direction", "forward") == ("bidirectional" if name in ("embed_bilstm", "bigru_final") else "forward")
               for o in opts)  # fmt: skip
    ref = reference_outputs(model.astype("float64"), x)
    assert_close(imported.forward(x), ref[-1], "float32", what=f"{name}: the module against its description")
    for i, (y, r) in enumerate(zip(imported.layer_outputs(x), ref, strict=True)):
        assert_close(y, r, "float32", what=f"{name} layer {i} accumulated")
    ins = [x, *ref[:-1]]
    for i, r in enumerate(ref):
        xi = ins[i] if i == 0 else ins[i].astype("float32")
        assert_close(imported.layer_call(i, xi), r, "float32", what=f"{name} layer {i} isolated")
    # float64: the module in double precision against the float64 reference
    imported64 = from_module(build(cls).double(), _input_shape(x), f"{name}.py:net")
    assert imported64.dtype == "float64"
    assert_close(imported64.forward(x), reference_forward(imported64.model, x), "float64", what=f"{name} float64")


def test_notes_say_what_the_import_translated():
    notes = from_module(build(EmbedBiLSTM), (B, T), "e.py:net").notes
    assert any("take_step(-1)" in n and "FIRST step" in n for n in notes)
    assert any("dropout=0.25" in n and "identity at inference" in n for n in from_module(build(BiGRUFinal), (B, T, 4), "g").notes)
    assert any("bias=False" in n for n in from_module(build(LSTMLastState), (B, T, 4), "l").notes)


@pytest.mark.parametrize("name", ["embed_bilstm", "bigru_final"])
def test_the_port_of_the_import_loads_with_torch_alone_and_agrees_with_the_module(name, tmp_path):
    cls, make, _ = CASES[name]
    net, x = build(cls), make(seed=4)
    x = x if make is ids else x.astype("float32")
    model = from_module(net, _input_shape(x), f"{name}.py:net").model
    torch_port.write(model, tmp_path / "port")
    y, _ = run_isolated(tmp_path / "port", x, tmp_path)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    assert_close(y, want, "float32", what=f"{name}: the written port against the module")


class _Refused(nn.Module):
    def __init__(self, layer, read):
        super().__init__()
        self.layer, self.read = layer, read

    def forward(self, x):
        return self.read(self.layer(x))


def _first(t):
    return t[0]


def _h_last(t):
    return t[1][0][-1]


def _cell(t):
    return t[1][1][-1]


REFUSALS = {
    "padding_idx": (nn.Embedding(20, 4, padding_idx=0), lambda t: t, "int", "padding_idx=0: that row gets no gradient"),
    "max_norm": (nn.Embedding(20, 4, max_norm=1.0), lambda t: t, "int", "max_norm=1.0: torch renormalises"),
    "scale_grad": (nn.Embedding(20, 4, scale_grad_by_freq=True), lambda t: t, "int", "scale_grad_by_freq"),
    "proj_size": (nn.LSTM(4, 5, proj_size=2, batch_first=True), _first, "float", "proj_size=2"),
    "batch_first": (nn.LSTM(4, 5), _first, "float", "batch_first=False"),
    "backward_only": (nn.LSTM(4, 5, bidirectional=True, batch_first=True), _h_last, "float",
                      "one direction's final state alone \\(backward\\)"),
    "cell_state": (nn.LSTM(4, 5, batch_first=True), _cell, "float", "cell state c_n"),
    "inner_layer": (nn.GRU(4, 5, num_layers=2, batch_first=True), lambda t: t[1][0], "float", "h\\[0\\] is layer 0's"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(REFUSALS))
def test_what_changes_the_math_is_refused_with_the_reason(name):
    layer, read, inp, why = REFUSALS[name]
    net = _Refused(layer, read).eval()
    shape = (B, T) if inp == "int" else (B, T, 4)
    with pytest.raises(UnsupportedLayer, match=why) as e:
        from_module(net, shape, "r.py:net")
    assert "'layer'" in str(e.value) and "position" in str(e.value)


def test_an_id_outside_the_table_is_named_by_the_port():
    model = from_module(build(EmbedBiLSTM), (B, T), "e.py:net").model
    net, _ = torch_port.load_port(model, "float32")
    x = ids()
    x[2, 1] = 50
    with pytest.raises(ValueError, match=r"token id 50 at position \(2, 1\) is outside the table of 50 rows"):
        net(torch.from_numpy(x))


ISSUE_MODULE = '''
import torch
from torch import nn


class EmbedBiLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 6, bidirectional=True, num_layers=2, batch_first=True)
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.fc(out[:, -1])


torch.manual_seed(0)
model = EmbedBiLSTM()
'''


def test_certify_the_issue_module_end_to_end(tmp_path, capsys):
    """`nnparity certify issue_net.py:model --no-bench --input-shape 3,7`, as a user runs it: exit 0, every voice's
    checks and the source's own layers pass (this builds every voice: about a minute)."""
    import json

    from nnparity import cli

    (tmp_path / "issue_net.py").write_text(ISSUE_MODULE)
    status = cli.main(["certify", f"{tmp_path / 'issue_net.py'}:model", "--no-bench", "--input-shape", "3,7",
                       "-o", str(tmp_path / "cert")])  # fmt: skip
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert cert["verdict"] == "pass" and cert["first_diverging_layer"] is None
    assert [la["kind"] for la in cert["source"]["layers"]] == ["embedding", "lstm", "lstm", "take_step", "dense"]
    assert cert["voices"]["torch_nn"]["forward"]["float32"]["pass"]
    assert "PASS" in capsys.readouterr().out
