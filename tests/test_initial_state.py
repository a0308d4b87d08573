"""Recurrent layers from given initial states (initial_state "weights", docs/DESIGN.md "Recurrent layers"): the
importers against each framework's own layer started from a non-zero state, the ports loaded alone against the
float64 reference (2e-5, float32), and the planted convention bugs (h0 ignored, h and c swapped, the directions of a
bidirectional state swapped) each caught by the same comparison. Every voice's forward and gradients:
verify/test_initial_state_layers.py."""

from __future__ import annotations

import numpy as np
import pytest

from impls.contract.tolerance import assert_close, error_stats
from impls.model import seeded
from impls.model.compose import reference_forward
from impls.model.description import Model

B, T, I, H = 3, 5, 4, 6
IS = {"initial_state": "weights"}


def chain(name: str, specs: list, seed: int = 3) -> Model:
    return seeded.chain(name, (T, I), specs, seed, batch=B)


def floats(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (B, T, I))


MODELS = {
    "lstm-bi-seq": lambda: chain("lstm-bi-seq", [("lstm", "l", {"units": H, "direction": "bidirectional",
                                                                "return_sequences": True, **IS})]),
    "lstm-final": lambda: chain("lstm-final", [("lstm", "l", {"units": H, **IS}), ("dense", "out", {"units": 2})]),
    "gru-bi-final": lambda: chain("gru-bi-final", [("gru", "g", {"units": H, "direction": "bidirectional", **IS})]),
    "gru-seq": lambda: chain("gru-seq", [("gru", "g", {"units": H, "return_sequences": True, **IS})]),
}  # fmt: skip
BUGS = ("h0 ignored", "h and c swapped", "directions swapped")


def _bug_applies(name: str, bug: str) -> bool:
    return not (bug == "h and c swapped" and "lstm" not in name or bug == "directions swapped" and "bi" not in name)


# --------------------------------------------------------------------------- ONNX: the port alone, the importer


def _onnx_bug(monkeypatch, bug: str) -> None:
    from impls.ports.onnx_port import recurrent

    real = recurrent._initial
    if bug == "h0 ignored":
        monkeypatch.setattr(recurrent, "_initial", lambda g, layer, cells: [])
    elif bug == "h and c swapped":
        monkeypatch.setattr(recurrent, "_initial", lambda g, layer, cells: real(g, layer, cells)[::-1])
    else:
        monkeypatch.setattr(recurrent, "_initial", lambda g, layer, cells: real(g, layer, cells[::-1]))


@pytest.mark.parametrize("bug", [None, *BUGS])
def test_onnx_port_alone_agrees_and_planted_bugs_fail(tmp_path, monkeypatch, bug):
    from impls.ports import onnx_port
    from tests.test_port_onnx_seq import run_alone

    names = [n for n in MODELS if bug is None or _bug_applies(n, bug)]
    if bug is not None:
        _onnx_bug(monkeypatch, bug)
    jobs, models = [], []
    for n in names:
        m = MODELS[n]().astype("float32")
        out = tmp_path / f"{n}.onnx"
        onnx_port.write(m, out)
        jobs.append((out, floats().astype(np.float32)))
        models.append(m)
    ys, _ = run_alone(jobs, tmp_path)
    for n, m, y in zip(names, models, ys, strict=True):
        want = reference_forward(m.astype("float64"), floats().astype(np.float32).astype(np.float64))
        if bug is None:
            assert_close(y, want, "float32", what=f"{n}: the ONNX port alone")
            assert error_stats(y, want).rel < 2e-5, n
        else:
            with pytest.raises(AssertionError):
                assert_close(y, want, "float32", what=f"{n}: {bug}")


@pytest.mark.parametrize("name", list(MODELS))
def test_onnx_port_file_imports_back_to_the_same_states(tmp_path, name):
    """The port's initial_h / initial_c (Expand of (D, 1, H) over the batch, folded) import as the same weights;
    ONNX Runtime runs the source."""
    from impls.importers import onnx_import
    from impls.ports import onnx_port

    m = MODELS[name]().astype("float32")
    onnx_port.write(m, tmp_path / "m.onnx")
    imported = onnx_import.load_file(tmp_path / "m.onnx", None)
    rnn = imported.model.layers[0]
    assert rnn.options.get("initial_state") == "weights"
    for k, v in m.layers[0].weights.items():
        if k[:2] in ("h0", "c0"):
            np.testing.assert_allclose(rnn.weights[k], v, rtol=0, atol=0, err_msg=k)
    x = floats(5)
    assert_close(reference_forward(imported.model, x), imported.forward(x).astype(np.float64), "float32", what=name)


# --------------------------------------------------------------------------- torch: the port alone, the importer


def _torch_bug(monkeypatch, bug: str) -> None:
    from impls.ports.torch_port import recurrent

    real = recurrent._started

    def planted(layer, opts, init, state, back):
        init, state, back = real(layer, opts, init, state, back)
        if "h0" not in state:
            return init, state, back
        state = dict(state)
        if bug == "h0 ignored":
            state = state | {k: np.zeros_like(state[k]) for k in ("h0", "c0") if k in state}
        elif bug == "h and c swapped":
            state["h0"], state["c0"] = state["c0"], state["h0"]
        else:
            state = state | {k: state[k][::-1].copy() for k in ("h0", "c0") if k in state}
        return init, state, back

    monkeypatch.setattr(recurrent, "_started", planted)


@pytest.mark.parametrize("bug", [None, *BUGS])
def test_torch_port_alone_agrees_and_planted_bugs_fail(tmp_path, monkeypatch, bug):
    from impls.ports import torch_port
    from tests.test_port_torch_seq import run_isolated

    if bug is not None:
        _torch_bug(monkeypatch, bug)
    for n in [n for n in MODELS if bug is None or _bug_applies(n, bug)]:
        m = MODELS[n]().astype("float32")
        torch_port.write(m, tmp_path / n)
        x = floats().astype(np.float32)
        y, _ = run_isolated(tmp_path / n, x, tmp_path)
        want = reference_forward(m.astype("float64"), x.astype(np.float64))
        if bug is None:
            assert_close(y, want, "float32", what=f"{n}: the torch port alone")
            assert error_stats(y, want).rel < 2e-5, n
        else:
            with pytest.raises(AssertionError):
                assert_close(y, want, "float32", what=f"{n}: {bug}")


# --------------------------------------------------------------------------- the torch importer vs the module itself


def _torch_modules():
    import torch

    nn = torch.nn

    class BiGRUParam(nn.Module):
        """A bidirectional GRU from a trainable h0 (2, 1, H) expanded over the batch, read by its final states."""

        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(I, H, batch_first=True, bidirectional=True)
            self.h0 = nn.Parameter(torch.linspace(-0.6, 0.5, 2 * H).reshape(2, 1, H))
            self.fc = nn.Linear(2 * H, 3)

        def forward(self, x):
            _, h = self.gru(x, self.h0.expand(-1, x.size(0), -1).contiguous())
            return self.fc(torch.cat((h[-2], h[-1]), dim=1))

    class LSTMStackBuffers(nn.Module):
        """A two-layer LSTM from buffers h0, c0 (2, B, H) the same in every row, returning its sequence."""

        def __init__(self, rows: bool = False):
            super().__init__()
            self.lstm = nn.LSTM(I, H, num_layers=2, batch_first=True)
            base = torch.linspace(-0.5, 0.7, 2 * H).reshape(2, 1, H).expand(-1, B, -1).clone()
            self.register_buffer("h0", base + (torch.arange(B * 1.0)[None, :, None] * 0.1 if rows else 0))
            self.register_buffer("c0", base.flip(-1) * 0.8)

        def forward(self, x):
            out, _ = self.lstm(x, (self.h0, self.c0))
            return out

    return BiGRUParam, LSTMStackBuffers


@pytest.mark.parametrize("which", [0, 1])
def test_torch_importer_matches_the_module_from_its_state(which):
    import torch

    from impls.importers.torch_import import from_module

    torch.manual_seed(7)
    net = _torch_modules()[which]().eval()
    imported = from_module(net, (B, T, I), "m.py:net")
    rnns = [la for la in imported.model.layers if la.kind in ("gru", "lstm")]
    assert rnns and all(la.options["initial_state"] == "weights" for la in rnns)
    x = floats(9)
    with torch.no_grad():
        want = net(torch.from_numpy(x).float()).double().numpy()
    assert_close(reference_forward(imported.model, x), want, "float32", what=type(net).__name__)
    with torch.no_grad():  # float64: the description is exact
        want64 = net.double()(torch.from_numpy(x)).numpy()
    imported64 = from_module(net, (B, T, I), "m.py:net")
    np.testing.assert_allclose(reference_forward(imported64.model, x), want64, rtol=0, atol=1e-10)


def test_torch_importer_refuses_a_state_per_row_and_a_computed_state():
    import torch

    from impls.importers import UnsupportedLayer
    from impls.importers.torch_import import from_module

    with pytest.raises(UnsupportedLayer, match="differs between the rows of the batch"):
        from_module(_torch_modules()[1](rows=True).eval(), (B, T, I), "m.py:net")

    class Computed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(I, H, batch_first=True)

        def forward(self, x):
            return self.gru(x, torch.tanh(x[:, :1, :1].transpose(0, 1).expand(-1, -1, H)))[0]

    with pytest.raises(UnsupportedLayer):  # refused where the walk meets it (a state computed from the input)
        from_module(Computed().eval(), (B, T, I), "m.py:net")


# --------------------------------------------------------------------------- Flax: the port alone


def _flax_bug(monkeypatch, bug: str) -> None:
    """Plant the bug in the variables the port writes (weights.params: "<cell>_h0", "<cell>_c0")."""
    from impls.ports.flax_port import weights

    real = weights.params

    def planted(model, names=None):
        tree = dict(real(model, names))
        states = sorted(k for k in tree if k.endswith(("_h0", "_c0")))
        if bug == "h0 ignored":
            return tree | {k: np.zeros_like(tree[k]) for k in states}
        if bug == "h and c swapped":
            return tree | {k: tree[k[:-2] + ("c0" if k.endswith("h0") else "h0")] for k in states}
        fwd = [k for k in states if "backward" not in k]  # the directions swapped
        bwd = [k for k in states if "backward" in k]
        return tree | dict(zip(fwd + bwd, [tree[k] for k in bwd + fwd], strict=True))

    monkeypatch.setattr(weights, "params", planted)


@pytest.mark.parametrize("bug", [None, *BUGS])
def test_flax_port_alone_agrees_and_planted_bugs_fail(tmp_path, monkeypatch, bug):
    import json
    import os
    import subprocess
    import sys

    from impls.ports import flax_port
    from impls.ports.flax_port import emit
    from tests.test_port_flax_seq import LOADER

    names = [n for n in MODELS if bug is None or _bug_applies(n, bug)]
    if bug is not None:
        _flax_bug(monkeypatch, bug)
    runs, models = [], []
    for n in names:
        m = MODELS[n]().astype("float32")
        flax_port.write(m, tmp_path / n)
        np.save(tmp_path / f"{n}.x.npy", floats().astype(np.float32))
        runs.append((str(tmp_path / n), str(tmp_path / f"{n}.x.npy"), str(tmp_path / f"{n}.y.npy")))
        models.append(m)
    assert emit.backward_name("g") != "g"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JAX_"))} | {"JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-I", "-c", LOADER, json.dumps(runs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for n, m in zip(names, models, strict=True):
        y = np.load(tmp_path / f"{n}.y.npy")
        want = reference_forward(m.astype("float64"), floats().astype(np.float32).astype(np.float64))
        if bug is None:
            assert_close(y, want, "float32", what=f"{n}: the Flax port alone")
            assert error_stats(y, want).rel < 2e-5, n
        else:
            with pytest.raises(AssertionError):
                assert_close(y, want, "float32", what=f"{n}: {bug}")


def test_keras_initial_state_from_another_tensor_is_refused_naming_the_layer(tmp_path):
    """Keras' initial_state= makes the layer take two tensors: refused (one input, one path), never ignored."""
    from impls import frameworks
    from impls.importers import UnsupportedLayer
    from impls.importers.keras_import.keras_file import load_file

    keras = frameworks.load("keras")
    x = keras.Input((T, I))
    s = keras.layers.Dense(H)(keras.layers.GlobalAveragePooling1D()(x))
    keras.Model(x, keras.layers.GRU(H, name="gru")(x, initial_state=[s])).save(tmp_path / "k.keras")
    with pytest.raises(UnsupportedLayer, match="'gru' .* takes 2 inputs"):
        load_file(tmp_path / "k.keras", None)
