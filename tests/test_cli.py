"""The `nnparity` command end to end: its help, `python -m nnparity` and the console script, `certify` on a
description of every image layer kind in every voice (exit 0, every section in the JSON, the default folder), and
`port` to each target (the files written at exactly OUT, nothing left beside it, an existing OUT refused without
--force and replaced with it; the ONNX port run by onnxruntime against the reference)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls.contract.spec import random_array
from impls.contract.tolerance import assert_close
from impls.model import store, voices
from impls.model.compose import reference_forward
from nnparity import cli, source
from tests.test_certify import small_gru, zoo_cnn


def test_help_says_what_each_command_does_with_an_example(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "certify" in out and "port" in out and "examples:" in out and "--input-shape 3,100,64" in out
    for sub in ("certify", "port"):
        assert cli.main([sub, "--help"]) == 0
        text = capsys.readouterr().out
        assert "example:" in text and f"nnparity {sub} " in text.split("example:")[1]
    assert cli.main(["port", "m.keras"]) == 2  # a usage error: --to and -o are required


def test_python_m_and_the_console_script():
    r = subprocess.run([sys.executable, "-m", "nnparity", "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("usage: nnparity")
    script = Path(sys.executable).with_name("nnparity")
    if not script.exists():
        pytest.skip(f"{script} not installed (pip install -e . --no-deps)")
    r = subprocess.run([str(script), "certify", "--help"], check=False, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "certificate.json" in r.stdout


def test_certify_every_voice_passes_into_the_default_folder(tmp_path, monkeypatch, capsys):
    # without its zero_pad2d layer: the ONNX port of a lone zero_pad2d (the isolated check's model) raises in ONNX
    # Runtime (Gather idx 4 out of [-4, 3]), which certify reports as that layer's failure
    model = zoo_cnn(pad=False)
    store.save(model, tmp_path / "zoo")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["certify", "zoo.json", "--no-bench"]) == 0, capsys.readouterr()
    assert "PASS" in capsys.readouterr().out
    folder = tmp_path / "certificate-zoo"
    assert sorted(p.name for p in folder.iterdir()) == ["certificate.json", "certificate.md", "certificate.png"]
    cert = json.loads((folder / "certificate.json").read_text())
    assert cert["verdict"] == "pass" and cert["failures"] == [] and cert["command"] == ["nnparity", "certify", "zoo.json", "--no-bench"]
    assert set(cert["voices"]) == set(voices.VOICES)
    for v, e in cert["voices"].items():
        assert "unavailable" not in e, (v, e)
        assert e["forward"]["float32"]["pass"], v
        assert [r["name"] for r in e["layers"]["float32"]] == [la.name for la in model.layers]
    assert "float64" in cert["voices"]["onnxruntime"]["refused"]  # declared, with its reason
    assert "none" in cert["voices"]["onnxruntime"]["gradients"]
    assert {v for v, r in cert["training"]["voices"].items() if r.get("pass")} == {"keras", "torch_nn", "flax"}
    assert "initial_state" not in cert  # no GRU here: the section is left out (issue 27), the key with it
    assert (folder / "certificate.md").read_text().startswith("# nnparity certificate: zoo_cnn")
    # a second run replaces the three files in place
    (folder / "certificate.md").write_text("old")
    assert cli.main(["certify", "zoo.json", "--no-bench"]) == 0
    assert (folder / "certificate.md").read_text() != "old" and not list(tmp_path.glob(".certificate*"))


TARGETS = {"torch": "gru_torch", "keras": "gru.keras", "onnx": "gru.onnx", "flax": "gru_flax"}


@pytest.mark.parametrize("to", list(TARGETS))
def test_port_writes_each_target_at_exactly_out(tmp_path, capsys, to):
    model = small_gru()
    js, _ = store.save(model, tmp_path / "gru")
    out = tmp_path / TARGETS[to]
    assert cli.main(["port", str(js), "--to", to, "-o", str(out)]) == 0, capsys.readouterr().err
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    if out.is_dir():
        assert (out / "model.py").is_file()
    if to == "onnx":
        ort = pytest.importorskip("onnxruntime")
        s = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        x = random_array((3, *model.input_shape), 7, "float32")
        (y,) = s.run(None, {s.get_inputs()[0].name: x})
        assert_close(y, reference_forward(model.astype("float64"), x.astype("float64")), "float32", what="onnx port")
    # an existing OUT: refused without --force (untouched), replaced with it
    stamp = out.stat().st_mtime_ns
    assert cli.main(["port", str(js), "--to", to, "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.stat().st_mtime_ns == stamp
    assert cli.main(["port", str(js), "--to", to, "-o", str(out), "--force", "--native-layout"]) == 0
    assert out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_port_leaves_nothing_when_the_writer_fails(tmp_path, capsys, monkeypatch):
    js, _ = store.save(small_gru(), tmp_path / "gru")
    module = voices.port_module("flax")

    def half(model, out, native_layout=False):
        Path(out).mkdir()
        (Path(out) / "model.py").write_text("# half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(module, "write", half)
    with pytest.raises(RuntimeError, match="disk full"):
        cli.main(["port", str(js), "--to", "flax", "-o", str(tmp_path / "f")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gru.json", "gru.npz"]
    assert np.all(np.isfinite(small_gru().layers[0].weights["W"]))


TORCH_CNN = """
import torch
from torch import nn

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 3, 2))
"""


def test_a_torch_cnn_takes_its_input_shape_in_its_own_nchw_layout(tmp_path, capsys):
    """--input-shape is the source's inputs, batch first: (B, C, H, W) for a torch module (it was compared with the
    description's NHWC and refused: 'given (3, 2, 6, 5), expected (3, 6, 5, 2)'); the NHWC shape does not fit."""
    pytest.importorskip("impls.importers.torch_import")
    f = tmp_path / "net.py"
    f.write_text(TORCH_CNN)
    out = tmp_path / "port"
    assert cli.main(["port", f"{f}:model", "--input-shape", "3,2,6,5", "--to", "torch", "-o", str(out)]) == 0, \
        capsys.readouterr().err  # fmt: skip
    assert (out / "model.py").is_file()
    assert cli.main(["port", f"{f}:model", "--input-shape", "3,6,5,2", "--to", "torch", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3,6,5,2" in err[0] and "(B, 2, H, W)" in err[0], err
    assert source.source_input_shape(source.load(f"{f}:model", (3, 2, 6, 5))[0]) == (2, 6, 5)
