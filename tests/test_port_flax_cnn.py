"""The Flax port (impls/ports/flax_port.py) on the issue-18 kinds and graphs: what `write` writes, loaded by its own
load() in a fresh `python -I` interpreter that has only jax, flax and numpy (no nnparity, no PYTHONPATH), agrees with
the NumPy float64 reference at the float32 bar, at inference and (the BatchNorm stack) in training mode with the
moving statistics it returns; the files say what they hold, and an unbiased variance update (torch's) is stated
forward-exact only, naming the layer.

Models (B = 3, seeded kinds' inits: non-zero biases, moving statistics away from 0 and 1):
- conv1d_a: conv1d same (stride 2, groups 2) -> conv1d causal (dilation 2, tanh);
- conv1d_b: conv1d valid (stride 2, dilation 2, groups 4) -> conv1d explicit [2, 1] without bias;
- bn_stack: (Conv1D -> BatchNorm -> ReLU) x 3 (same, stride 2, causal) -> global_avg_pool -> dense softmax;
- resblock: conv2d -> batch_norm -> relu -> conv2d -> batch_norm(center=False), add with the input, relu,
  global_avg_pool, dense (a graph: the input read twice);
- layer_norm: dense -> layer_norm, and with neither / only scale / only center;
- shapes: reshape (3, -1) -> permute (2, 1) -> dense -> flatten -> dense;
- concat: two conv1d reading the input -> concatenate (channels) -> global_max_pool -> dense (a graph);
- cf_map: a channels_first source's conv1d -> batch_norm -> relu, taking and returning (B, C, L).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from impls.contract.tolerance import assert_close
from impls.model import compose, seeded
from impls.model.description import INPUT, Model

flax_port = pytest.importorskip("impls.ports.flax_port")

ROOT = Path(__file__).resolve().parents[1]
B, L, C = 3, 11, 4


def _conv_bn_relu(i: int, filters: int, K: int, **kw) -> list[tuple]:
    return [("conv1d", f"conv{i}", {"filters": filters, "kernel_size": K, **kw}),
            ("batch_norm", f"bn{i}", {"momentum": 0.9, "epsilon": 1e-3}),
            ("activation", f"relu{i}", {"activation": "relu"})]  # fmt: skip


MODELS: dict[str, Model] = {
    "conv1d_a": seeded.chain("conv1d_a", (L, C), [
        ("conv1d", "same", {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 2}),
        ("conv1d", "causal", {"filters": 5, "kernel_size": 3, "dilation": 2, "padding": "causal",
                              "activation": "tanh"})], 1, batch=B),
    "conv1d_b": seeded.chain("conv1d_b", (L, C), [
        ("conv1d", "valid", {"filters": 8, "kernel_size": 2, "strides": 2, "dilation": 2, "groups": 4}),
        ("conv1d", "explicit", {"filters": 3, "kernel_size": 3, "padding": [2, 1], "use_bias": False})], 2, batch=B),
    "bn_stack": seeded.chain("bn_stack", (L, C), [
        *_conv_bn_relu(1, 6, 3, padding="same"), *_conv_bn_relu(2, 5, 3, strides=2),
        *_conv_bn_relu(3, 4, 2, padding="causal"), ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 3, "activation": "softmax"})], 3, batch=B),
    "resblock": seeded.chain("resblock", (6, 5, C), [
        ("conv2d", "c1", {"filters": C, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "b1", {}), ("activation", "r1", {"activation": "relu"}),
        ("conv2d", "c2", {"filters": C, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "b2", {"center": False}),
        ("add", "res", {}, ("b2", INPUT)), ("activation", "r2", {"activation": "relu"}),
        ("global_avg_pool", "gap", {}), ("dense", "out", {"units": 3})], 4, batch=B),
    "layer_norm": seeded.chain("layer_norm", (5, C), [
        ("dense", "d", {"units": 6}), ("layer_norm", "ln", {"epsilon": 1e-5}),
        ("layer_norm", "ln_plain", {"center": False, "scale": False}), ("layer_norm", "ln_scale", {"center": False}),
        ("layer_norm", "ln_center", {"scale": False})], 5, batch=B),
    "shapes": seeded.chain("shapes", (C, 6), [
        ("reshape", "rs", {"target_shape": [3, -1]}), ("permute", "pm", {"dims": [2, 1]}),
        ("dense", "d", {"units": 2}), ("flatten", "fl", {}), ("dense", "out", {"units": 3})], 6, batch=B),
    "concat": seeded.chain("concat", (L, C), [
        ("conv1d", "a", {"filters": 3, "kernel_size": 3, "padding": "same"}, (INPUT,)),
        ("conv1d", "b", {"filters": 5, "kernel_size": 2, "padding": "causal"}, (INPUT,)),
        ("concatenate", "cat", {}, ("a", "b")), ("global_max_pool", "gmp", {}),
        ("dense", "out", {"units": 2})], 7, batch=B),
    "cf_map": seeded.chain("cf_map", (L, C), [
        ("conv1d", "conv", {"filters": 5, "kernel_size": 3, "padding": [1, 1]}),
        ("batch_norm", "bn", {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "biased"}),
        ("activation", "relu", {"activation": "relu"})], 8, batch=B, boundary="channels_first"),
}  # fmt: skip
UNBIASED = seeded.chain("torchbn", (L, C), [
    ("conv1d", "conv", {"filters": 3, "kernel_size": 2}),
    ("batch_norm", "torch_bn", {"momentum": 0.9, "epsilon": 1e-5, "variance_update": "unbiased"}),
    ("global_avg_pool", "gap", {})], 10, batch=B)  # fmt: skip
TRAINED = "bn_stack"  # also run in training mode inside the fresh interpreter


def data(name: str) -> np.ndarray:
    m = MODELS[name]
    return np.random.default_rng(30 + list(MODELS).index(name)).uniform(-1, 1, (B, *m.input_shape)).astype("float32")


def _ncw(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, -1, 1))


LOADER = textwrap.dedent("""
    import importlib.util, json, sys
    import jax
    import numpy as np
    assert sys.flags.isolated
    for i, (folder, xin, yout, train) in enumerate(json.loads(sys.argv[1])):
        spec = importlib.util.spec_from_file_location(f"port{i}", folder + "/model.py")
        code = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = code  # flax's dataclass transform looks the module up
        spec.loader.exec_module(code)
        module, variables = code.load()
        x = np.load(xin, allow_pickle=False)
        assert x.shape[1:] == code.INPUT_SHAPE, (x.shape, code.INPUT_SHAPE)
        y = np.asarray(jax.jit(module.apply)(variables, x))
        assert y.shape[1:] == code.OUTPUT_SHAPE and y.dtype == np.float32, (y.shape, y.dtype)
        np.save(yout, y)
        if train:  # BatchNorm in training mode: the batch's statistics, and the moving ones updated
            yt, moved = module.apply(variables, x, train=True, mutable=["batch_stats"])
            np.save(yout + ".train.npy", np.asarray(yt))
            np.savez(yout + ".stats.npz", **{f"{k}/{w}": np.asarray(v) for k, d in moved["batch_stats"].items()
                                            for w, v in d.items()})
    bad = sorted(m for m in sys.modules if m.split(".")[0] in ("impls", "nnparity", "verify", "torch", "tensorflow"))
    assert not bad, bad
""")


def test_the_written_ports_load_in_python_I_with_only_flax_and_give_the_reference(tmp_path):
    runs = []
    for name, m in MODELS.items():
        folder = tmp_path / name
        flax_port.write(m, folder)
        x = data(name)
        np.save(tmp_path / f"{name}.x.npy", _ncw(x) if m.boundary == "channels_first" else x)
        runs.append((str(folder), str(tmp_path / f"{name}.x.npy"), str(tmp_path / f"{name}.y"), name == TRAINED))
    # JAX's persistent compilation cache, as verify/ keeps it (.cache/jax): nothing computed changes, a rerun loads
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "JAX_"))} | {
        "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(ROOT / ".cache" / "jax"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    done = subprocess.run([sys.executable, "-I", "-c", LOADER, json.dumps(runs)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=240, check=False, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for name, m in MODELS.items():
        y = np.load(tmp_path / f"{name}.y.npy")
        x = data(name).astype("float64")
        expected = compose.reference_forward(m, x)
        if m.boundary == "channels_first":  # the source's (B, C, L) out
            expected = _ncw(expected)
        assert y.shape == expected.shape, name
        assert_close(y, expected, "float32", what=f"flax port {name}, loaded in python -I")
    # training mode in the file itself: the batch's statistics normalise and the moving ones move as the reference's
    m = MODELS[TRAINED]
    outs, state = compose.reference_train(m, data(TRAINED).astype("float64"))
    assert_close(np.load(tmp_path / f"{TRAINED}.y.train.npy"), outs[-1], "float32", what="train=True output")
    with np.load(tmp_path / f"{TRAINED}.y.stats.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(f"bn{i}/{w}" for i in (1, 2, 3) for w in ("mean", "var"))
        for i in (1, 2, 3):
            for w, canon in (("mean", "moving_mean"), ("var", "moving_var")):
                got, want = z[f"bn{i}/{w}"], state[(f"bn{i}", canon)]
                assert_close(got, want, "float32", what=f"bn{i} {canon} after train=True")
                assert np.max(np.abs(want - m.state()[(f"bn{i}", canon)])) > 1e-3  # it really moved


def test_the_train_mode_really_differs_from_inference():
    """The BatchNorms' moving statistics are not the batch's: the train=True comparison above checks something."""
    m = MODELS[TRAINED]
    x = data(TRAINED).astype("float64")
    assert np.max(np.abs(compose.reference_train(m, x)[0][-1] - compose.reference_forward(m, x))) > 1e-2


# --------------------------------------------------------------------------- what the files hold and say


def _imports(code: str) -> set[str]:
    tree = ast.parse(code)
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


def test_the_resblock_file_names_its_values_and_holds_the_batch_stats(tmp_path):
    m = MODELS["resblock"]
    code_path, npz = flax_port.write(m, tmp_path / "p")
    code = code_path.read_text()
    assert _imports(code) <= {"flax", "jax", "numpy", "pathlib"}
    for line in ("def __call__(self, x, train: bool = False):", "inputs = x", "b2_out = x", "x = b2_out + inputs",
                 ("nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=0.001, use_bias=False, "
                  "use_scale=True"), "jnp.mean(x, axis=(1, 2))"):  # fmt: skip
        assert line in code, line
    doc = ast.get_docstring(ast.parse(code))
    assert "batch_stats" in doc and "biased" in doc and "graph" in doc
    with np.load(npz, allow_pickle=False) as z:
        assert set(z.files) == {"c1/kernel", "c1/bias", "c2/kernel", "c2/bias", "b1/scale", "b1/bias", "b2/scale",
                                "out/kernel", "out/bias", *(f"batch_stats:{b}/{w}" for b in ("b1", "b2")
                                                            for w in ("mean", "var"))}  # fmt: skip
        np.testing.assert_array_equal(z["batch_stats:b2/var"], m.layers[4].weights["moving_var"])
        np.testing.assert_array_equal(z["b1/scale"], m.layers[1].weights["gamma"])
    back = flax_port.canonical(m, flax_port.params(m), gradients=False, stats=flax_port.batch_stats(m))
    assert set(back) == set(m.parameters()) | set(m.state())
    for k, v in {**m.parameters(), **m.state()}.items():
        np.testing.assert_array_equal(back[k], v, err_msg=str(k))
    assert set(flax_port.canonical(m, flax_port.params(m), gradients=False)) == set(m.parameters())


def test_conv1d_paddings_are_written_as_flax_takes_them():
    a, b = flax_port.source(MODELS["conv1d_a"]), flax_port.source(MODELS["conv1d_b"])
    assert 'padding="SAME"' in a and "padding=((4, 0),)" in a and "kernel_dilation=(2,)" in a  # causal: (3-1)*2
    assert "feature_group_count=2" in a and "strides=(2,)" in a
    assert 'padding="VALID"' in b and "padding=((2, 1),)" in b and "feature_group_count=4" in b
    assert "use_bias=False" in b
    assert "train" not in a  # no BatchNorm: the plain __call__


def test_a_chain_writes_no_named_values_and_a_graph_its_merge_inputs():
    assert "_out = x" not in flax_port.source(MODELS["bn_stack"])
    cat = flax_port.source(MODELS["concat"])
    assert "x = inputs" in cat and "jnp.concatenate([a_out, b_out], axis=-1)" in cat
    assert "jnp.argmax" in cat  # global max: the first maximum's gradient


def test_the_channels_first_map_is_transposed_at_the_boundary():
    m = MODELS["cf_map"]
    assert flax_port.feature_maps(m) == [True, True, True, True]
    code = flax_port.source(m)
    assert "INPUT_SHAPE = (4, 11)" in code and "OUTPUT_SHAPE = (5, 11)" in code
    assert code.count("jnp.transpose(x, (0, 2, 1))") == 2
    assert "jnp.transpose" not in flax_port.source(m, native_layout=True)
    # a sequence read by a dense is no map, whatever the boundary
    seq = seeded.chain("seq", (L, C), [("dense", "d", {"units": 2})], 9, batch=B, boundary="channels_first")
    assert flax_port.feature_maps(seq) == [False, False]


def test_an_unbiased_variance_update_is_forward_exact_and_its_training_step_says_so():
    m = UNBIASED
    assert flax_port.refusal(m, "float32") is None  # the forward is exact
    notes = flax_port.batch_norm_notes(m)
    assert len(notes) == 1 and "layer 1 'torch_bn' (batch_norm)" in notes[0] and "biased" in notes[0]
    assert "UNBIASED" in ast.get_docstring(ast.parse(flax_port.source(m)))
    assert flax_port.batch_norm_notes(MODELS["bn_stack"]) == []


def test_every_model_here_is_not_refused():
    for name, m in MODELS.items():
        for dtype in ("float32", "float64"):
            assert flax_port.refusal(m, dtype) is None, (name, dtype)
