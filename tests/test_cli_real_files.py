"""Real files as users have them (issue 24, part 3).

- An ONNX model whose weights live in an external data file beside it (as large models are saved) certifies and
  ports, and the port computes what ONNX Runtime computes from the original files.
- An external-data reference that points outside the model's folder (or at a file that is not there) is bad input:
  one line `nnparity: <file>: ...` on stderr, exit 2, nothing written, in certify and in port, also through a real
  process (no traceback).
- A user's file.py that raises SystemExit while it runs, or whose callable does, is bad input (exit 2), not a failed
  check (exit 1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import tolerance
from nnparity import cli
from verify.conftest import load_framework


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _bad(argv: list[str], where: Path, capsys, *needles: str) -> str:
    before = _files(where)
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("nnparity: "), err
    for n in needles:
        assert n in err[0], (n, err[0])
    assert _files(where) == before, "something was written"
    return err[0]


def conv_net(path: Path, location: str | None) -> Path:
    """Conv (3 -> 4, 3x3, a bias) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (4 -> 5), seeded weights; with
    `location`, every initializer is stored in that external data file beside the model (size_threshold 0)."""
    onnx = load_framework("onnx")
    helper, numpy_helper, tp = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    g = np.random.default_rng(11)
    inits = [numpy_helper.from_array(g.standard_normal(shape).astype(np.float32) * 0.5, name)
             for name, shape in (("w", (4, 3, 3, 3)), ("b", (4,)), ("fw", (5, 4)), ("fb", (5,)))]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], transB=1)]  # fmt: skip
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", tp.FLOAT, [3, 3, 6, 7])],
                              [helper.make_tensor_value_info("y", tp.FLOAT, [3, 5])], inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    if location is None:
        onnx.save_model(model, str(path))
    else:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=location, size_threshold=0)  # fmt: skip
    return path


def _relocate(model_path: Path, location: str) -> None:
    """Point every external-data reference of the model at `location`, the weights themselves untouched."""
    onnx = load_framework("onnx")
    m = onnx.load(str(model_path), load_external_data=False)
    for t in m.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(m, str(model_path))


def test_weights_in_an_external_data_file_certify_and_port(tmp_path, capsys):
    model = conv_net(tmp_path / "m" / "net.onnx", "net.weights")
    assert (tmp_path / "m" / "net.weights").stat().st_size >= 4 * (108 + 4 + 20 + 5)  # the weights really are outside
    stored = load_framework("onnx").load(str(model), load_external_data=False).graph.initializer
    assert all(t.data_location == 1 and not t.raw_data for t in stored)  # EXTERNAL, nothing inside the model file
    status = cli.main(["certify", str(model), "--no-bench", "-o", str(tmp_path / "cert")])
    cert = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert status == 0, cert["failures"]
    assert cert["verdict"] == "pass"
    assert cli.main(["port", str(model), "--to", "torch", "-o", str(tmp_path / "pt")]) == 0, capsys.readouterr().err
    ort, torch = load_framework("onnxruntime"), load_framework("torch")
    x = np.random.default_rng(5).uniform(-1, 1, (3, 3, 6, 7)).astype(np.float32)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    sys.path.insert(0, str(tmp_path / "pt"))
    try:
        import model as ported  # the port's own model.py

        with torch.no_grad():
            got = ported.load()(torch.from_numpy(x)).numpy()
    finally:
        sys.path.remove(str(tmp_path / "pt"))
        sys.modules.pop("model", None)
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= tolerance("float32")


@pytest.mark.parametrize("command", ["certify", "port"])
def test_an_external_data_reference_outside_the_models_folder_is_refused(tmp_path, capsys, command):
    model = conv_net(tmp_path / "m" / "net.onnx", "net.weights")
    shutil.move(tmp_path / "m" / "net.weights", tmp_path / "elsewhere.weights")  # the file exists, outside the folder
    _relocate(model, "../elsewhere.weights")
    out = ["-o", str(tmp_path / "cert")] if command == "certify" else ["--to", "keras", "-o", str(tmp_path / "o.keras")]
    line = _bad([command, str(model), *out], tmp_path, capsys, str(model), "outside the model's folder",
                "elsewhere.weights")  # fmt: skip
    assert "Traceback" not in line


def test_an_external_data_file_that_is_missing_is_bad_input(tmp_path, capsys):
    model = conv_net(tmp_path / "m" / "net.onnx", "net.weights")
    (tmp_path / "m" / "net.weights").unlink()
    _bad(["port", str(model), "--to", "torch", "-o", str(tmp_path / "pt")], tmp_path, capsys, str(model),
         "external data")  # fmt: skip


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
    return subprocess.run([sys.executable, "-m", "nnparity", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)  # fmt: skip


def test_outside_reference_through_a_real_process_is_one_line_and_exit_2(tmp_path):
    model = conv_net(tmp_path / "m" / "net.onnx", "net.weights")
    shutil.move(tmp_path / "m" / "net.weights", tmp_path / "elsewhere.weights")
    _relocate(model, "../elsewhere.weights")
    before = _files(tmp_path)
    r = _run(["port", str(model), "--to", "torch", "-o", str(tmp_path / "pt")], tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "outside the model's folder" in lines[0], lines
    assert _files(tmp_path) == before


TORCH_NET = """
import torch
from torch import nn

model = nn.Sequential(nn.Linear(4, 3))
"""


@pytest.mark.parametrize("tail, needle", [
    ("raise SystemExit(3)\n", "sys.exit(3)"),
    ("import sys\nsys.exit()\n", "sys.exit()"),
    ("import sys\nsys.exit('no data here')\n", "'no data here'"),
])  # fmt: skip
@pytest.mark.parametrize("command", ["certify", "port"])
def test_a_python_file_that_exits_while_it_runs_is_bad_input(tmp_path, capsys, command, tail, needle):
    f = tmp_path / "net.py"
    f.write_text(TORCH_NET + tail)
    out = ["-o", str(tmp_path / "cert")] if command == "certify" else ["--to", "keras", "-o", str(tmp_path / "o.keras")]
    _bad([command, f"{f}:model", "--input-shape", "3,4", *out], tmp_path, capsys, str(f), "SystemExit", needle)


def test_a_callable_that_exits_is_bad_input(tmp_path, capsys):
    f = tmp_path / "net.py"
    f.write_text(TORCH_NET + "\ndef make():\n    raise SystemExit(4)\n")
    _bad(["certify", f"{f}:make", "--input-shape", "3,4", "-o", str(tmp_path / "c")], tmp_path, capsys, str(f),
         "calling make()", "sys.exit(4)")  # fmt: skip


def test_a_python_file_that_exits_through_a_real_process_is_exit_2(tmp_path):
    f = tmp_path / "net.py"
    f.write_text(TORCH_NET + "raise SystemExit(1)\n")
    before = _files(tmp_path)
    r = _run(["certify", f"{f}:model", "--input-shape", "3,4", "--no-bench", "-o", str(tmp_path / "c")], tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "SystemExit" in lines[0], lines
    assert _files(tmp_path) == before
