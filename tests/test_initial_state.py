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
