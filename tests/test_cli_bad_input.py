"""Bad input to `nnparity certify` and `nnparity port`: exit 2, one line on stderr naming the file and the problem,
and nothing written (no OUT, no DIR, no temporary beside them)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls.model import store
from nnparity import cli
from tests.test_certify import small_gru, zoo_cnn


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _bad(argv: list[str], tmp_path: Path, capsys, *needles: str) -> str:
    before = _files(tmp_path)
    code = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("nnparity: "), err
    for n in needles:
        assert n in err[0], (n, err[0])
    assert _files(tmp_path) == before, "something was written"
    return err[0]


def _description(tmp_path: Path, model=None, name: str = "m") -> Path:
    js, _ = store.save(model or small_gru(), tmp_path / name)
    return js


@pytest.mark.parametrize("command", ["certify", "port"])
@pytest.mark.parametrize("suffix", [".keras", ".onnx", ".json", ".py:model"])
def test_missing_file(tmp_path, capsys, command, suffix):
    spec = str(tmp_path / f"absent{suffix}")
    extra = ["-o", str(tmp_path / "cert")] if command == "certify" else ["--to", "torch", "-o", str(tmp_path / "out")]
    _bad([command, spec, *extra], tmp_path, capsys, str(tmp_path / "absent"), "no such file")


def test_truncated_keras_file(tmp_path, capsys):
    pytest.importorskip("impls.importers.keras_import")
    from impls import frameworks

    keras = frameworks.load("keras")
    net = keras.Sequential([keras.Input((4, 3)), keras.layers.Dense(2)])
    good = tmp_path / "good.keras"
    net.save(good)
    bad = tmp_path / "bad.keras"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    good.unlink()
    _bad(["certify", str(bad), "-o", str(tmp_path / "c")], tmp_path, capsys, str(bad))


def test_corrupt_onnx_file(tmp_path, capsys):
    pytest.importorskip("impls.importers.onnx_import")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07this is not a protobuf of a model\xff\xfe")
    _bad(["port", str(bad), "--to", "keras", "-o", str(tmp_path / "o.keras")], tmp_path, capsys, str(bad))


def test_python_file_with_a_syntax_error(tmp_path, capsys):
    bad = tmp_path / "net.py"
    bad.write_text("def model(:\n    return 1\n")
    _bad(["certify", f"{bad}:model", "-o", str(tmp_path / "c")], tmp_path, capsys, str(bad), "not valid Python")


def test_a_name_the_file_lacks(tmp_path, capsys):
    f = tmp_path / "net.py"
    f.write_text("other = 1\n")
    _bad(["certify", f"{f}:model", "-o", str(tmp_path / "c")], tmp_path, capsys, str(f), "'model'", "other")


def test_corrupt_description(tmp_path, capsys):
    js = _description(tmp_path)
    js.with_suffix(".npz").write_bytes(b"PK\x03\x04 truncated")
    _bad(["certify", str(js), "-o", str(tmp_path / "c")], tmp_path, capsys, "m.npz")


TORCH_NET = """
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(5, 4, batch_first=True)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        out, h = self.gru(x)
        return self.fc(out[:, -1])

model = Net()
bn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.InstanceNorm2d(2))
"""


def test_torch_model_without_input_shape(tmp_path, capsys):
    pytest.importorskip("impls.importers.torch_import")
    f = tmp_path / "net.py"
    f.write_text(TORCH_NET)
    _bad(["certify", f"{f}:model", "-o", str(tmp_path / "c")], tmp_path, capsys, str(f), "--input-shape")


def test_unsupported_torch_layer(tmp_path, capsys):
    pytest.importorskip("impls.importers.torch_import")
    f = tmp_path / "net.py"
    f.write_text(TORCH_NET)
    _bad(["port", f"{f}:bn", "--input-shape", "3,1,8,8", "--to", "onnx", "-o", str(tmp_path / "o.onnx")], tmp_path,
         capsys, str(f), "InstanceNorm2d")  # fmt: skip


def test_unsupported_keras_layer(tmp_path, capsys):
    pytest.importorskip("impls.importers.keras_import")
    from impls import frameworks

    keras = frameworks.load("keras")
    path = tmp_path / "rnn.keras"
    keras.Sequential([keras.Input((6, 5)), keras.layers.SimpleRNN(3, name="the_rnn"), keras.layers.Dense(2)]).save(path)
    _bad(["certify", str(path), "-o", str(tmp_path / "c")], tmp_path, capsys, str(path), "SimpleRNN")


def test_unsupported_kind_in_a_description(tmp_path, capsys):
    js = _description(tmp_path)
    js.write_text(js.read_text().replace('"kind": "gru"', '"kind": "simple_rnn"', 1))
    _bad(["certify", str(js), "-o", str(tmp_path / "c")], tmp_path, capsys, str(js), "'simple_rnn'", "supported")


def test_an_input_shape_that_does_not_fit(tmp_path, capsys):
    js = _description(tmp_path)  # takes (batch, 6, 5)
    line = _bad(["certify", str(js), "--input-shape", "3,6,7", "-o", str(tmp_path / "c")], tmp_path, capsys, str(js))
    assert "(3, 6, 7)" in line and "(3, 6, 5)" in line


def test_a_malformed_input_shape(tmp_path, capsys):
    js = _description(tmp_path)
    _bad(["port", str(js), "--input-shape", "3,x", "--to", "torch", "-o", str(tmp_path / "o")], tmp_path, capsys,
         "--input-shape")  # fmt: skip


def test_non_finite_weights_name_the_tensor(tmp_path, capsys):
    model = zoo_cnn()
    i = model.layer_index("fc")
    k = np.array(model.layers[i].weights["kernel"])
    k[1, 2] = np.nan
    model = model.replace_layer(i, dataclasses.replace(model.layers[i], weights={**model.layers[i].weights, "kernel": k}))
    js = _description(tmp_path, model, "nan")
    line = _bad(["certify", str(js), "-o", str(tmp_path / "c")], tmp_path, capsys, str(js), "'fc'", "'kernel'")
    assert "non-finite" in line


def test_an_existing_out_without_force(tmp_path, capsys):
    js = _description(tmp_path)
    out = tmp_path / "o.onnx"
    out.write_text("keep me")
    _bad(["port", str(js), "--to", "onnx", "-o", str(out)], tmp_path, capsys, str(out), "--force")
    assert out.read_text() == "keep me"


@pytest.mark.parametrize("to, name", [("keras", "o.onnx"), ("onnx", "o.keras"), ("onnx", "o")])
def test_a_wrong_suffix_for_a_one_file_port(tmp_path, capsys, to, name):
    js = _description(tmp_path)
    _bad(["port", str(js), "--to", to, "-o", str(tmp_path / name)], tmp_path, capsys, name)


def test_a_model_the_target_cannot_express(tmp_path, capsys):
    js = _description(tmp_path, small_gru("chung"), "chung")
    _bad(["port", str(js), "--to", "torch", "-o", str(tmp_path / "o")], tmp_path, capsys, str(js), "chung")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nnparity", *args], check=False, cwd=cwd, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_bad_input_through_a_real_process(tmp_path):
    r = _run(["certify", "absent.keras"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "nnparity: absent.keras: no such file"
    js = _description(tmp_path)
    (tmp_path / "out").mkdir()
    r = _run(["port", str(js), "--to", "flax", "-o", "out"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["nnparity: out: already exists; give --force to replace it"]
    assert not any(tmp_path.glob(".out.*")) and not any((tmp_path / "out").iterdir())
    r = _run(["certify", str(js), "--input-shape", "3,6"], tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "certificate-m").exists()


def test_a_float64_model_onnx_runtime_cannot_run_is_refused_before_anything_is_written(tmp_path, capsys):
    """The ONNX port is written in the source's float64 (port_dtype), and ONNX Runtime's CPU GRU is float32 only: the
    refusal is asked for that dtype, not float32 (a traceback from the writer, limits.Refused, came out)."""
    pytest.importorskip("onnx")
    model = dataclasses.replace(small_gru(), input_dtype="float64").astype("float64")
    js = _description(tmp_path, model)
    _bad(["port", str(js), "--to", "onnx", "-o", str(tmp_path / "g.onnx")], tmp_path, capsys, str(js),
         "cannot be ported to onnx", "GRU", "float32 only")  # fmt: skip


def test_a_python_file_that_imports_keras_itself_still_gets_one_line(tmp_path):
    """The user's file imports Keras at its top: TensorFlow starts through impls.frameworks before it runs, quiet, so
    its absl start-up lines on fd 2 do not precede the command's one line (they did: five lines in all)."""
    pytest.importorskip("impls.importers.keras_import")
    (tmp_path / "net.py").write_text("import keras\n\nmodel = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n")
    r = subprocess.run([sys.executable, "-m", "nnparity", "port", "net.py:absent", "--to", "torch", "-o", "out"],
                       check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"})  # fmt: skip
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "nnparity: net.py: has no name 'absent'; it defines ['keras', 'model']"], r.stderr


def test_an_in_process_certify_leaves_the_thread_limit_as_it_found_it(tmp_path, capsys):
    """A timed certify limits every framework to one thread while it runs; called in-process (a test, a notebook) it
    hands the process back as it found it. CI failed when an earlier bad-input certify in the same pytest worker left
    the limit at 1, and the certificates of later tests lost their `speed.pin.why`."""
    from impls import frameworks
    from verify.conftest import load_framework

    torch = load_framework("torch")
    assert frameworks.threads() is None, "an earlier test left a thread limit"
    torch_before = torch.get_num_threads()
    js = _description(tmp_path)
    _bad(["certify", str(js), "--input-shape", "3,6", "-o", str(tmp_path / "c")], tmp_path, capsys, str(js))
    assert frameworks.threads() is None and torch.get_num_threads() == torch_before
    with frameworks.thread_limit(1):  # inside, the limit holds
        assert frameworks.threads() == 1 and torch.get_num_threads() == 1
    assert frameworks.threads() is None and torch.get_num_threads() == torch_before
