"""The Flax port's every-layer outputs, rebinding and in-memory build (issue 27; impls/ports/flax_port/program.py).

Built.outputs runs the recording variant of the generated __call__ once (codegen.source(record=True): every layer's
value but the last appended to `taps`, where Flax holds it, channels last: the canonical layout) and the last layer's
value is the module's own output through the boundary's conversion: (a) each equals the forward of the voice's own
build of the layers up to it (Model.sub(0, i + 1)), and the last equals forward(x), at the float32 bar and in float64
to 1e-12 relative, on seeded non-symmetric models (I != H, batch 4): a residual graph with add and concatenate, CNNs
whose Flatten feeds a Dense (a channels_first source: the Dense's rows permuted at import) or is returned to a
channels_first source (its (c, h, w) order), an image returned NCHW, a channels_first 1-D CNN, masked bidirectional
LSTM and GRU, an embedding; (b) a tap reported for the next layer, or the boundary's conversion dropped, is caught by
the certificate's own comparison; (c) Built.rebind computes what build computes for another model of the same
structure (other weights, other names) without generating, exec'ing, writing or tracing anything again, and
voices.LayerBuilds compiles each distinct layer configuration once; (d) build, outputs, vjp and rebind write no file
and read none, and build computes what the written port loaded by its own load() computes, number for number.
"""

from __future__ import annotations

import builtins
import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

from impls import frameworks
from impls.contract.tolerance import error_stats
from impls.model import seeded, voices
from impls.model.description import INPUT, Model
from nnparity.certify.checks import compare
from verify.conftest import load

flax_port = pytest.importorskip("impls.ports.flax_port")
from impls.ports.flax_port import codegen, program, voice
from impls.ports.flax_port.layout import Boundary
from impls.ports.flax_port.weights import flat

B, T, I, H = 4, 5, 4, 3
VOCAB = 7
DTYPES = ("float32", "float64")


def make(name: str, input_shape: tuple, specs: list, boundary: str = "channels_last", seed: int = 11,
         prefix: str = "") -> Model:  # fmt: skip
    """Seeded non-symmetric weights (each kind's own init); `prefix` renames every layer (and what reads it)."""
    named = [(k, prefix + n, o, *([tuple(s if s == INPUT else prefix + s for s in sp[0])] if sp else []))
             for k, n, o, *sp in specs]
    return seeded.chain(name, input_shape, named, seed, boundary, B)


RESIDUAL = [  # conv-bn-relu-conv, + the input, concatenated with the first block's output, pooled, dense
    ("conv2d", "conv1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "use_bias": False}),
    ("batch_norm", "bn1", {"epsilon": 1e-5}),
    ("activation", "relu1", {"activation": "relu"}),
    ("conv2d", "conv2", {"filters": 4, "kernel_size": [3, 2], "padding": "same"}),
    ("add", "add", {}, ("conv2", INPUT)),
    ("concatenate", "cat", {"axis": -1}, ("add", "relu1")),
    ("activation", "relu2", {"activation": "relu"}),
    ("global_avg_pool", "gap", {}),
    ("dense", "fc", {"units": 3}),
]
CNN = [  # zero padding, strided conv, pools, depthwise, flatten -> dropout -> dense
    ("zero_pad2d", "pad0", {"padding": [[1, 0], [0, 2]]}),
    ("conv2d", "c1", {"filters": 5, "kernel_size": [3, 2], "strides": [1, 2], "activation": "tanh"}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}),
    ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "padding": "same"}),
    ("avg_pool2d", "ap", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[1, 0], [0, 1]],
                          "count_include_pad": True}),
    ("flatten", "flat", {}),
    ("dropout", "drop", {"rate": 0.2}),
    ("dense", "d1", {"units": 6, "activation": "sigmoid"}),
    ("dense", "d2", {"units": 3, "activation": "softmax"}),
]  # fmt: skip
FLAT_OUT = [  # a channels_first source returns the features in its (c, h, w) order; the description in (h, w, c)
    ("conv2d", "c", {"filters": 3, "kernel_size": [2, 2], "activation": "relu"}),
    ("flatten", "flat", {}),
    ("activation", "act", {"activation": "tanh"}),
]
IMAGE_OUT = [  # an image returned: NCHW at a channels_first source's boundary
    ("conv2d", "c", {"filters": 5, "kernel_size": [2, 3], "strides": [1, 2], "activation": "sigmoid"}),
    ("batch_norm", "bn", {"center": False}),
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1], "padding": [[1, 0], [0, 1]]}),
]
CNN1D = [
    ("conv1d", "c1", {"filters": 5, "kernel_size": 3, "padding": "causal", "dilation": 2}),
    ("batch_norm", "bn", {"epsilon": 1e-3}),
    ("conv1d", "c2", {"filters": 3, "kernel_size": 2, "padding": "same", "activation": "tanh"}),
    ("dense", "d", {"units": 4}),  # on the last axis of a (B, L, C) map
    ("layer_norm", "ln", {"epsilon": 1e-5}),
    ("global_max_pool", "gmp", {}),
]
MASKED = [
    ("masking", "m", {"mask_value": 0.25}),
    ("lstm", "bl", {"units": H, "direction": "bidirectional", "merge_mode": "concat", "return_sequences": True}),
    ("dense", "td", {"units": 5, "activation": "tanh"}),
    ("gru", "bg", {"units": H, "direction": "bidirectional", "merge_mode": "sum", "return_sequences": True,
                   "padded_outputs": "hold"}),
    ("gru", "g", {"units": 2}),
    ("dense", "out", {"units": 3, "activation": "softmax"}),
]  # fmt: skip
EMBEDDING = [
    ("embedding", "emb", {"input_dim": VOCAB, "output_dim": I, "mask_zero": True}),
    ("lstm", "bl", {"units": H, "direction": "bidirectional", "merge_mode": "mul", "return_sequences": True}),
    ("take_step", "last", {"index": -1}),
    ("dense", "d", {"units": 2, "activation": "softmax"}),
]
CASES = {  # name -> (input shape, layers, boundary)
    "residual": ((6, 5, 4), RESIDUAL, "channels_last"),
    "residual-channels_first": ((6, 5, 4), RESIDUAL, "channels_first"),
    "cnn": ((7, 8, 3), CNN, "channels_last"),
    "cnn-channels_first": ((7, 8, 3), CNN, "channels_first"),
    "flat_out-channels_first": ((4, 5, 2), FLAT_OUT, "channels_first"),
    "image_out-channels_first": ((6, 7, 3), IMAGE_OUT, "channels_first"),
    "cnn1d-channels_first": ((9, 3), CNN1D, "channels_first"),
    "masked-bilstm-bigru": ((T, I), MASKED, "channels_last"),
    "embedding-bilstm": ((T,), EMBEDDING, "channels_last"),
}


def model_of(case: str, seed: int = 11, prefix: str = "") -> Model:
    shape, specs, boundary = CASES[case]
    return make(case, shape, specs, boundary, seed, prefix)


def x_for(model: Model, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if model.layers[0].kind == "embedding":  # post-padded rows of 4, 2, 0 and 5 valid ids
        ids = rng.integers(1, VOCAB, (B, T))
        for row, n in enumerate((4, 2, 0, 5)):
            ids[row, n:] = 0
        return ids
    x = rng.uniform(-1.0, 1.0, (B, *model.input_shape))
    if model.layers[0].kind == "masking":  # rows of 3, 5, 0 and 1 valid steps
        for row, n in enumerate((3, 5, 0, 1)):
            x[row, n:] = 0.25
    return x


def typed(x: np.ndarray, dtype: str) -> np.ndarray:
    return x if x.dtype.kind == "i" else x.astype(dtype)


def same(a: np.ndarray, b: np.ndarray, dtype: str) -> bool:
    """Equal at the float32 bar (the certificate's comparison), or in float64 to 1e-12 relative."""
    if dtype == "float32":
        return compare(a, b, "float32")["pass"]
    return np.shape(a) == np.shape(b) and error_stats(a, b).rel <= 1e-12


@pytest.fixture(scope="module", autouse=True)
def _flax():
    load("flax")  # skips with the reason where Flax is not installed


# --------------------------------------------------------------------------- (a) every layer from one forward


@functools.cache
def prefix_forwards(case: str, dtype: str) -> list[np.ndarray]:
    """The forward of the voice's own build of layers 0..i, for every i (each a model of its own)."""
    m = model_of(case).astype(dtype)
    return [flax_port.build(m.sub(0, i + 1), dtype).forward(typed(x_for(m), dtype)) for i in range(len(m.layers))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CASES))
def test_outputs_are_the_forwards_of_the_voices_own_prefix_builds(case, dtype):
    m = model_of(case).astype(dtype)
    x = typed(x_for(m), dtype)
    built = flax_port.build(m, dtype)
    outs = built.outputs(x)
    assert len(outs) == len(m.layers)
    assert same(outs[-1], built.forward(x), dtype)
    for i, (out, prefix) in enumerate(zip(outs, prefix_forwards(case, dtype), strict=True)):
        assert out.dtype == prefix.dtype == dtype, (i, out.dtype, prefix.dtype)
        assert same(out, prefix, dtype), f"{case} {dtype}: layer {i} {m.layers[i].name!r}"


# --------------------------------------------------------------------------- (b) planted bookkeeping bugs are caught


def _failures(case: str, dtype: str, outs: list[np.ndarray]) -> list[int]:
    return [i for i, (out, prefix) in enumerate(zip(outs, prefix_forwards(case, dtype), strict=True))
            if not same(out, prefix, dtype)]


@pytest.mark.parametrize("case", ["residual", "cnn-channels_first", "masked-bilstm-bigru"])
def test_a_tap_reported_for_the_next_layer_is_caught(monkeypatch, case):
    m, dtype = model_of(case).astype("float64"), "float64"
    x = x_for(m)
    real = program.canonical_outputs

    def shifted(layout, taps, y):
        outs = real(layout, taps, y)
        return [outs[0], *outs[:-1]]  # layer i's value reported for layer i + 1

    monkeypatch.setattr(program, "canonical_outputs", shifted)
    outs = flax_port.build(m, dtype).outputs(x)
    assert _failures(case, dtype, outs), "a tap off by one layer went unnoticed"


@pytest.mark.parametrize("case", ["flat_out-channels_first", "image_out-channels_first"])
def test_the_boundary_conversion_dropped_is_caught(monkeypatch, case):
    m, dtype = model_of(case).astype("float32"), "float32"
    x = x_for(m).astype(dtype)
    monkeypatch.setattr(program, "canonical_outputs", lambda layout, taps, y: [*map(np.asarray, taps), np.asarray(y)])
    outs = flax_port.build(m, dtype).outputs(x)
    assert _failures(case, dtype, outs) == [len(m.layers) - 1]


# --------------------------------------------------------------------------- (c) rebind: the same program, new weights


class _Counts:
    """Calls of the code generator, exec, the file writer and loader, and every Program made (its traces)."""

    def __init__(self, monkeypatch):
        self.calls: dict[str, int] = {}
        self.programs: list[program.Program] = []
        for owner, name in ((program, "source"), (program, "execute"), (voice, "write"), (voice, "load_port"),
                            (voice, "_import"), (np, "savez"), (np, "load")):  # fmt: skip
            monkeypatch.setattr(owner, name, self._counted(name, getattr(owner, name)))
        init = program.Program.__init__

        def made(p, *args, **kwargs):
            init(p, *args, **kwargs)
            self.programs.append(p)

        monkeypatch.setattr(program.Program, "__init__", made)

    def _counted(self, name, fn):
        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args, **kwargs)

        return counted


@pytest.mark.parametrize("case, dtype", [("residual-channels_first", "float32"), ("residual-channels_first", "float64"),
                                         ("cnn1d-channels_first", "float64"), ("masked-bilstm-bigru", "float64"),
                                         ("embedding-bilstm", "float32")])  # fmt: skip
def test_rebind_computes_what_build_computes_without_generating_or_compiling_again(monkeypatch, case, dtype):
    one, other = model_of(case).astype(dtype), model_of(case, seed=23, prefix="other_").astype(dtype)
    assert [la.name for la in one.layers] != [la.name for la in other.layers]
    assert voices.structure(one) == voices.structure(other)
    x = typed(x_for(one), dtype)
    dy = np.random.default_rng(5).uniform(-1, 1, one.shapes(B)[-1]).astype(dtype)
    fresh = flax_port.build(other, dtype)  # before counting: what a build of `other` computes
    want = fresh.forward(x), fresh.outputs(x), fresh.vjp(x, dy)

    counts = _Counts(monkeypatch)
    first = flax_port.build(one, dtype)
    first.forward(x), first.outputs(x), first.vjp(x, dy)
    assert counts.calls == {"source": 2, "execute": 2}  # the port and its recording variant, nothing written or read
    (made,) = counts.programs
    assert dict(made.traces) == {"apply": 1, "record": 1, "pull": 1}

    rebound = first.rebind(other)
    got = rebound.forward(x), rebound.outputs(x), rebound.vjp(x, dy)
    assert counts.calls == {"source": 2, "execute": 2} and counts.programs == [made]
    assert dict(made.traces) == {"apply": 1, "record": 1, "pull": 1}  # nothing traced, so nothing compiled, again
    assert np.array_equal(got[0], want[0])
    assert all(np.array_equal(a, b) for a, b in zip(got[1], want[1], strict=True))
    (dx, grads), (dx_want, grads_want) = got[2], want[2]
    assert (dx is None) == (dx_want is None) and (dx is None or np.array_equal(dx, dx_want))
    assert grads.keys() == grads_want.keys() == set(other.parameters())
    assert all(np.array_equal(grads[k], grads_want[k]) for k in grads)
    assert not np.array_equal(got[0], first.forward(x))  # other weights: another function of x


def test_rebind_refuses_another_structure():
    a = model_of("flat_out-channels_first")
    b = make("flat_out", (4, 5, 2), FLAT_OUT[:2], "channels_first")
    with pytest.raises(ValueError, match="structure"):
        flax_port.build(a, "float32").rebind(b)


def test_layer_builds_compile_each_layer_configuration_once(monkeypatch):
    """Isolated checks as certify runs them: three dense layers of one configuration and two of another."""
    specs = [*(("dense", f"d{i}", {"units": I, "activation": "tanh"}) for i in range(3)), ("dense", "e", {"units": H}),
             ("layer_norm", "ln", {}), ("layer_norm", "ln2", {})]
    m = make("denses", (T, I), specs)
    counts = _Counts(monkeypatch)
    builds = voices.LayerBuilds("flax", "float32")
    x = x_for(m).astype("float32")
    outs = flax_port.build(m, "float32").outputs(x)
    ins = [x, *outs[:-1]]
    for i in range(len(m.layers)):
        y = builds.get(m.sub(i).astype("float32")).forward(ins[i].astype("float32"))
        assert same(y, outs[i], "float32"), i
    assert (builds.built, builds.rebound) == (3, 3)  # dense 4 -> 4 (x3), dense 4 -> 3, layer_norm (x2)
    assert [dict(p.traces) for p in counts.programs[1:]] == [{"apply": 1}] * 3
    assert counts.calls == {"source": 5, "execute": 5}  # the whole model's two, one per configuration


# --------------------------------------------------------------------------- (d) no file written or read


@pytest.fixture
def no_files(monkeypatch):
    """Every way the port wrote or read its files raises: the writer and loader, NumPy's files, temporary folders,
    and open() of a model.py or an .npz, or for writing (but JAX's compilation cache, where a test run keeps one)."""
    cache = frameworks._JAX_CACHE

    def allowed(path) -> bool:
        return cache is not None and str(Path(path).resolve()).startswith(str(Path(cache).resolve()))

    def refuse(what, real=None):
        def raising(*args, **kwargs):
            if real is not None and allowed(args[0]):
                return real(*args, **kwargs)
            raise AssertionError(f"{what} called by an in-memory build")

        return raising

    for owner, name in ((voice, "write"), (voice, "load_port"), (voice, "_import"), (np, "save"), (np, "savez"),
                        (np, "load"), (tempfile, "TemporaryDirectory"), (tempfile, "mkdtemp")):  # fmt: skip
        monkeypatch.setattr(owner, name, refuse(f"{name}"))
    for name in ("write_text", "write_bytes", "mkdir"):
        monkeypatch.setattr(Path, name, refuse(f"Path.{name}", getattr(Path, name)))
    real_open = builtins.open

    def guarded(file, mode="r", *args, **kwargs):
        name = Path(str(file)).name if isinstance(file, str | Path) else ""
        if name == "model.py" or name.endswith(".npz") or (any(c in mode for c in "wax+") and not allowed(file)):
            raise AssertionError(f"open({file!r}, {mode!r}) by an in-memory build")
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)


@pytest.mark.parametrize("case", ["residual-channels_first", "embedding-bilstm"])
def test_build_outputs_and_rebind_write_no_file(no_files, case):
    m, other = model_of(case), model_of(case, seed=5, prefix="o_")
    x = x_for(m)
    built = flax_port.build(m, "float64")
    y = built.forward(x)
    built.outputs(x)
    dy = np.ones_like(y)
    built.vjp(x, dy)
    rebound = built.rebind(other)
    rebound.forward(x), rebound.outputs(x), rebound.vjp(x, dy)


@pytest.mark.parametrize("case, dtype", [("residual-channels_first", "float32"), ("masked-bilstm-bigru", "float64"),
                                         ("embedding-bilstm", "float32")])  # fmt: skip
def test_build_is_the_written_port_loaded_by_its_own_load_number_for_number(case, dtype):
    m = model_of(case)
    x = typed(x_for(m), dtype)
    module, variables = flax_port.load_port(m, dtype)  # written to a folder, imported, its load()
    built = flax_port.build(m, dtype)
    jax = frameworks.load("jax")  # the written port under jax.jit, as the voice runs it
    want = Boundary(m).dy(np.asarray(jax.jit(module.apply)(variables, built.to_native(x))))
    assert np.array_equal(built.forward(x), want)
    mine = program.Program(m, dtype).variables(m)
    mine, theirs = flat(mine), flat(variables)  # "layer/weight" (params), "batch_stats/layer/mean"
    assert mine.keys() == theirs.keys()
    assert all(np.array_equal(a, theirs[k]) and a.dtype == theirs[k].dtype for k, a in mine.items())


def test_the_written_source_has_no_taps_and_the_recording_variant_differs_only_in_them():
    for case in CASES:
        m = model_of(case)
        written, recording = flax_port.source(m), codegen.source(m, record=True)
        assert "taps" not in written
        kept = [line.replace("return x, taps", "return x") for line in recording.splitlines()
                if line.strip() not in (codegen.TAPS, codegen.TAP)]
        assert kept == written.splitlines()
        assert recording.count(codegen.TAP) == len(m.layers) - 1
