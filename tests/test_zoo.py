"""The zoo in CI (issue 24): `python -m reports zoo --subset --steps ports` as the published report runs it, one model
a source (reports/zoo_models.py SUBSET), each ported by the `nnparity` command to every other framework, each port
loaded by its own framework alone in `python -I` and compared with the source at the float32 bar; each port also run
in float64 (ONNX by onnx's reference evaluator, reports/onnx_float64.py) and compared with the source run in float64.
The numbers are asserted, not only the exit status. Measured on the 2-core VM under a load of 10 (other jobs): the
three took 33-140 s each. Certifying them is left to the published run (reports/ZOO.md): `nnparity certify --no-bench`
of mnasnet0_5 at 64x64 took 9 min of wall time (4 min of CPU) beside other jobs, more than CI can give three models.

The port's interpreter is really without nnparity: a port that imports it fails to load, and says why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reports import zoo, zoo_models, zoo_render

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> tuple[dict, str]:
    d = tmp_path_factory.mktemp("zoo")
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "reports", "zoo", "--subset", "--steps", "ports", "-o", str(d / "ZOO.md"),
                        "--model-timeout", "400"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000,
                       check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((d / "zoo.json").read_text()), (d / "ZOO.md").read_text()


@pytest.mark.parametrize("name", zoo_models.SUBSET)
def test_each_subset_model_ports_to_every_other_framework_and_agrees(subset, name):
    results, _ = subset
    res = results["models"][name]
    assert res["prepare"]["rc"] == 0 and res["prepare"]["finite"], res["prepare"]
    e = zoo_models.by_name(name)
    assert sorted(res["ports"]) == sorted(e.targets)
    for target in e.targets:
        cell = res["ports"][target]
        assert zoo_render.port_status(cell) == "agreed", (target, cell.get("error"), cell.get("load"))
        assert 0 <= cell["load"]["rel"] <= zoo_render.BAR, (target, cell["load"]["rel"])
        loaded = set(cell["load"]["loaded"])
        assert not loaded & {"nnparity", "impls"}, loaded
        assert loaded <= zoo.OWN[target], (target, loaded)  # its own framework, nothing else
        load = cell["load"]
        assert load["float64"] == "saved" and 0 < load["own32"] < zoo_render.BAR, load  # the port's own float32 error
        # run in float64 (ONNX: onnx's reference evaluator), the port computes the source's function
        assert load["rel64"] <= zoo_render.BAR64, (target, load["rel64"])
    assert 0 < res["prepare"]["own_float32_error"] < zoo_render.BAR  # the source's own, ONNX's too


def test_the_subset_report_says_each_number(subset):
    results, md = subset
    for name in zoo_models.SUBSET:
        row = next(line for line in md.splitlines() if line.startswith((f"| `{name}` ", f"| `{name} *` ")))
        for cell in results["models"][name]["ports"].values():
            assert f"{cell['load']['rel']:.1e}" in row, row
    assert "| torchvision | Keras | 1 | 1 | 0 | 0 | 0 | 0 | 0 | 0 |" in md
    assert "| keras.applications | torch | 1 | 1 |" in md and "| ONNX light models | Flax | 1 | 1 |" in md
    assert "| torchvision | 1 | 0 | 0 | 0 | 0 | 1 |" in md  # certify not run in CI
    assert "--subset --steps ports" in md and "matmul ceiling" in md


def test_a_port_that_imports_nnparity_does_not_load(tmp_path):
    """The loader's interpreter cannot import nnparity (the editable install would otherwise let it)."""
    port = tmp_path / "port_torch"
    port.mkdir()
    (port / "model.py").write_text("import impls.frameworks\n\ndef load():\n    return None\n")
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    r = zoo.run(zoo.loader_command("torch", "port_torch"), tmp_path, 120, 0, isolated=True)
    assert r["rc"] != 0 and "not importable" in zoo.one_line(r, tmp_path)
    assert not (tmp_path / "y.npy").exists()


TINY_TORCH_PORT = """import numpy as np
import torch

W = np.random.default_rng(7).standard_normal((3, 5))
B = np.random.default_rng(8).standard_normal(3)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(5, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.from_numpy(W))
            self.lin.bias.copy_(torch.from_numpy(B))

    def forward(self, x):
        return (torch.tanh(self.lin(x)) * 3.7){cast}


def load():
    return Net().eval()
"""


def test_the_loader_runs_a_torch_port_in_float64_too_and_says_when_it_cannot(tmp_path):
    """The port's interpreter runs it in float32 (y) and, with .double(), in float64 (y64): y64 equals the float64
    NumPy computation to 1e-15 while y is a float32 distance away. Planted: a port whose forward hands back float32
    whatever it is given saves no y64, and says so."""
    x = np.random.default_rng(9).uniform(-1, 1, (4, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    w, b = (a.astype(np.float32).astype(np.float64)  # the port holds float32 weights, as a written port does
            for a in (np.random.default_rng(7).standard_normal((3, 5)), np.random.default_rng(8).standard_normal(3)))
    ref = np.tanh(x.astype(np.float64) @ w.T + b) * 3.7
    for name, cast in (("exact", ""), ("planted", ".float()")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.py").write_text(TINY_TORCH_PORT.replace("{cast}", cast))
        r = zoo.run(zoo.loader_command("torch", name, f"y_{name}.npy", f"y64_{name}.npy"), tmp_path, 300, 0,
                    isolated=True)
        assert r["rc"] == 0, r["stderr"][-2000:]
        said = json.loads(r["stdout"].strip().splitlines()[-1])
        assert set(said["loaded"]) <= zoo.OWN["torch"], said
        y = np.load(tmp_path / f"y_{name}.npy")
        assert y.dtype == np.float32 and 0 < zoo.rel_error(y, ref) < 1e-6
        if name == "exact":
            assert said["float64"] == "saved"
            y64 = np.load(tmp_path / "y64_exact.npy")
            assert y64.dtype == np.float64 and zoo.rel_error(y64, ref) < 1e-15
            got = zoo.compare(y, ref.astype(np.float32), y64, ref)
            assert got["rel64"] < 1e-15 and got["own32"] == pytest.approx(zoo.rel_error(y, ref), rel=1e-6)
        else:
            assert said["float64"] == "given float64 it computed float32"
            assert not (tmp_path / "y64_planted.npy").exists()


def test_a_command_over_its_time_is_stopped_and_says_so(tmp_path):
    r = zoo.run([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, 2, 0)
    assert r["stopped"] == "timed out after 2 s" and r["s"] < 30 and r["rc"] != 0
    assert zoo.one_line(r, tmp_path) == "timed out after 2 s"


def test_the_loader_runs_a_keras_port_holding_a_pad_map_in_float64(tmp_path):
    """A Keras port of a padded max pool adds a (H, W, 1) map of -max-float to the zero-padded input (a Rescaling
    offset) so that the pad never wins. The loader's float64 run keeps that map an array (it once broadcast every
    Rescaling value to one per channel, and the float64 run failed on onnx/resnet50's Keras port), and a one-value
    map (1, 1, 1) becomes one value per channel (onnx/inception_v1's Keras port failed on it): y64 equals the float64
    NumPy computation."""
    from impls import BackendUnavailable, frameworks

    try:
        keras = frameworks.load("keras")
    except BackendUnavailable as e:
        pytest.skip(str(e))
    g = np.random.default_rng(17)
    x = g.uniform(-2, -1, (3, 4, 5, 2)).astype(np.float32)  # all negative: a zero pad would win every border max
    pad = np.zeros((6, 7, 1), np.float32)
    pad[0, :], pad[-1, :], pad[:, 0], pad[:, -1] = (np.finfo(np.float32).min,) * 4
    scale = g.uniform(0.5, 1.5, 2).astype(np.float32)
    inp = keras.Input((4, 5, 2))
    h = keras.layers.ZeroPadding2D(1)(inp)
    h = keras.layers.Rescaling(1.0, offset=pad)(h)
    h = keras.layers.MaxPooling2D(3, strides=1)(h)
    h = keras.layers.Rescaling(scale.astype(np.float64) * 1.0)(h)  # one value per channel
    out = keras.layers.Rescaling(np.full((1, 1, 1), 0.75, np.float32))(h)  # one value, as a map (onnx inception_v1)
    keras.Model(inp, out).save(tmp_path / "port.keras")
    np.save(tmp_path / "x.npy", x)
    r = zoo.run(zoo.loader_command("keras", "port.keras"), tmp_path, 300, 0, isolated=True)
    assert r["rc"] == 0, r["stderr"][-2000:]
    said = json.loads(r["stdout"].strip().splitlines()[-1])
    assert said["float64"] == "saved", said
    xp = np.pad(x.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    ref = win.max(axis=(-2, -1)) * scale.astype(np.float64) * 0.75
    assert zoo.rel_error(np.load(tmp_path / "y64.npy"), ref) < 1e-15
