"""The ONNX port (impls/ports/onnx_port.py): one graph for any model description, run by ONNX Runtime.

Every check is against the NumPy float64 reference at the tolerance table's bar: the voice's build in process
(canonical layout in and out), and the written .onnx file run by onnxruntime alone in a fresh interpreter that
never imports nnparity, in the source's layout and in ONNX's native one. The refusals are raised with their reasons.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from impls.contract.limits import GRADIENT_REFUSALS, Refused
from impls.contract.tolerance import assert_close, error_stats
from impls.model import seeded, voices
from impls.model.compose import reference_forward
from impls.model.description import Model

onnx_port = pytest.importorskip("impls.ports.onnx_port", exc_type=ImportError)

BATCH = 3


def make(name: str, input_shape: tuple, specs: list, boundary: str = "channels_last", seed: int = 10) -> Model:
    """A description of seeded, non-symmetric weights with non-zero biases (each kind's own init)."""
    return seeded.chain(name, input_shape, specs, seed, boundary, BATCH)


CNN = [
    ("conv2d", "c1", {"filters": 6, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "groups": 2, "activation": "relu"}),
    ("depthwise_conv2d", "dw", {"kernel_size": [2, 2], "depth_multiplier": 2, "padding": "same", "activation": "sigmoid"}),
    ("conv2d", "c2", {"filters": 5, "kernel_size": [3, 2], "dilation": [2, 1], "padding": [[2, 1], [1, 0]], "activation": "tanh"}),
    ("zero_pad2d", "pad", {"padding": [[1, 0], [0, 2]]}),  # zeros after a tanh: they win the next max at the border
    ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same"}),
    ("avg_pool2d", "ap", {"pool_size": [2, 2], "strides": [1, 2], "padding": [[1, 0], [0, 1]], "count_include_pad": False}),
    ("flatten", "flat", {}),
    ("dropout", "drop", {"rate": 0.3}),
    ("dense", "d1", {"units": 7, "activation": "relu"}),
    ("activation", "act", {"activation": "tanh"}),
    ("dense", "d2", {"units": 4, "activation": "softmax"}),
]  # fmt: skip
IMAGE_OUT = [  # a 4-D output: the port transposes back at its boundary
    ("conv2d", "c1", {"filters": 5, "kernel_size": [2, 3], "activation": "tanh"}),
    ("zero_pad2d", "pad", {"padding": [[0, 1], [2, 1]]}),
    ("avg_pool2d", "ap", {"pool_size": [2, 2], "strides": [1, 1], "padding": "same", "count_include_pad": True}),
    ("activation", "soft", {"activation": "softmax"}),  # over the channels: axis 1 of the NCHW graph
]
GRU = [
    ("gru", "g1", {"units": 6, "variant": "reset_after", "return_sequences": True}),
    ("dense", "d_seq", {"units": 4, "activation": "tanh"}),  # Dense on the last axis of (B, T, H)
    ("gru", "g2", {"units": 5, "variant": "reset_before", "return_sequences": False}),
    ("dense", "d_out", {"units": 3, "activation": "softmax"}),
]
SEQ_OUT = [
    ("gru", "g1", {"units": 4, "variant": "reset_before", "return_sequences": True}),
    ("dropout", "drop", {"rate": 0.2}),
    ("dense", "d_seq", {"units": 3, "activation": "sigmoid"}),
]

MODELS = {
    "cnn-channels_last": lambda: make("cnn", (11, 10, 4), CNN),
    "cnn-channels_first": lambda: make("cnn", (11, 10, 4), CNN, boundary="channels_first"),
    "image_out-channels_last": lambda: make("image_out", (6, 7, 3), IMAGE_OUT),
    "image_out-channels_first": lambda: make("image_out", (6, 7, 3), IMAGE_OUT, boundary="channels_first"),
    "gru": lambda: make("gru", (7, 5), GRU),
    "seq_out": lambda: make("seq_out", (6, 5), SEQ_OUT),
}


def x_for(model: Model, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (BATCH, *model.input_shape))


@pytest.mark.parametrize("case", MODELS)
def test_build_forward_matches_the_reference_float32(case):
    model = MODELS[case]()
    x = x_for(model)
    built = voices.build("onnxruntime", model, "float32")
    assert built.mode == "ort" and built.vjp is None and built.step is None
    got = built.forward(x)
    assert got.dtype == np.float32
    assert_close(got, reference_forward(model, x), "float32", what=f"onnx port {case}")


def test_the_flatten_permutation_and_dropout_are_noted():
    notes = onnx_port.build(MODELS["cnn-channels_first"](), "float32").notes
    assert any(n.startswith("d1:") and "flatten_rows_nhwc_to_nchw" in n for n in notes), notes
    assert any(n.startswith("drop:") and "dropout" in n for n in notes), notes
    assert any(GRADIENT_REFUSALS["onnxruntime"] in n for n in notes), notes


def test_float64_where_onnx_runtime_has_the_kernels():
    """Pad, MaxPool, Flatten, Gemm and the activations run in float64: the float64 bar, not the float32 one."""
    model = make("pool_dense", (6, 5, 3), [
        ("zero_pad2d", "pad", {"padding": [[1, 1], [0, 1]]}),
        ("max_pool2d", "mp", {"pool_size": [2, 2], "strides": [2, 1], "padding": "valid"}),
        ("flatten", "flat", {}),
        ("dense", "d1", {"units": 6, "activation": "sigmoid"}),
        ("dense", "d2", {"units": 4, "activation": "softmax"}),
    ])  # fmt: skip
    assert onnx_port.refusal(model, "float64") is None
    x = x_for(model)
    got = onnx_port.build(model, "float64").forward(x)
    assert got.dtype == np.float64
    assert_close(got, reference_forward(model, x), "float64", what="onnx port float64")


@pytest.mark.parametrize("kind, op", [("gru", "GRU"), ("conv2d", "Conv"), ("depthwise_conv2d", "Conv"), ("avg_pool2d", "AveragePool")])
def test_float64_is_refused_where_the_cpu_kernel_is_float32_only(kind, op):
    specs = {"gru": ("gru", "the_gru", {"units": 3}), "conv2d": ("conv2d", "the_conv", {"filters": 2, "kernel_size": [2, 2]}),
             "depthwise_conv2d": ("depthwise_conv2d", "the_dw", {"kernel_size": [2, 2]}),
             "avg_pool2d": ("avg_pool2d", "the_pool", {"pool_size": [2, 2]})}  # fmt: skip
    shape = (5, 4) if kind == "gru" else (5, 4, 2)
    model = make(kind, shape, [specs[kind]])
    why = onnx_port.refusal(model, "float64")
    assert why is not None and specs[kind][1] in why and f"CPU kernel for {op}" in why and "float32 only" in why
    assert onnx_port.refusal(model, "float32") is None
    with pytest.raises(Refused, match=specs[kind][1]):
        voices.build("onnxruntime", model, "float64")
    with pytest.raises(Refused, match="float32 only"):  # a float64 source is not written as a float32 port
        onnx_port.write(Model(model.name, model.input_shape, model.layers, input_dtype="float64"), Path("unused.onnx"))


@pytest.mark.parametrize("variant", ["seed", "chung"])
def test_gru_variants_the_operator_lacks_are_refused(variant):
    model = make("g", (5, 4), [("gru", "odd_gru", {"units": 3, "variant": variant})])
    why = onnx_port.refusal(model, "float32")
    assert "'odd_gru'" in why and variant in why and "linear_before_reset" in why
    with pytest.raises(Refused, match="odd_gru"):
        onnx_port.build(model, "float32")


def test_other_dtypes_are_refused():
    assert "float16" in onnx_port.refusal(MODELS["gru"](), "float16")


def test_the_pad_before_a_max_pool_keeps_its_axes_input():
    """ONNX Runtime's PadFusion folds a three-input Pad into the next MaxPool, whose pads never win: a port without
    the axes input computes another function. The written graph keeps it, and the planted variant is caught."""
    model = make("pad_max", (5, 4, 2), [("conv2d", "c", {"filters": 2, "kernel_size": [1, 1], "activation": "tanh"}),
                                        ("zero_pad2d", "pad", {"padding": [[1, 1], [1, 1]]}),
                                        ("max_pool2d", "mp", {"pool_size": [2, 2]})])  # fmt: skip
    x = x_for(model) - 2.0  # mostly negative: the padded zeros must win at the border
    expected = reference_forward(model, x)
    proto = onnx_port.graph(model, "float32")
    assert_close(onnx_port.build(model, "float32").forward(x), expected, "float32")
    (pad,) = [n for n in proto.graph.node if n.op_type == "Pad"]
    assert len(pad.input) == 4
    del pad.input[2:]  # the planted port: pads only, on all four NCHW axes
    names = {i.name: i for i in proto.graph.initializer}
    names[pad.input[1]].CopyFrom(onnx_port.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), pad.input[1]))
    from impls.runtime import ort_impl

    sess = ort_impl.session(proto)
    wrong = sess.run(None, {"input": x.astype(np.float32)})[0]
    assert error_stats(wrong, expected).max_abs > 1e-2


@pytest.mark.parametrize("before", [[], [("conv2d", "c", {"filters": 3, "kernel_size": [2, 2]})]], ids=["first", "after-conv"])
@pytest.mark.parametrize("after", [None, "max_pool2d", "avg_pool2d", "flatten"])
@pytest.mark.parametrize("boundary", ["channels_last", "channels_first"])
def test_zero_padding_next_to_a_transpose_or_a_pool(before, after, boundary):
    """A Pad that names its axes beside a Transpose makes ONNX Runtime 1.31's transpose optimizer fail ('idx=4 must
    be within [-4,3]'), and a plain one before a pool is fused wrongly (above): the port picks the form that computes
    the description's function in every neighbourhood, including a model of the padding alone (the certificate's
    isolated check builds exactly that)."""
    tail = {None: [], "max_pool2d": [("max_pool2d", "p", {"pool_size": [2, 2], "strides": [1, 1]})],
            "avg_pool2d": [("avg_pool2d", "p", {"pool_size": [2, 2], "strides": [1, 1]})],
            "flatten": [("flatten", "f", {})]}[after]  # fmt: skip
    model = make("pad", (5, 6, 3), [*before, ("zero_pad2d", "pad", {"padding": [[1, 2], [0, 1]]}), *tail], boundary)
    x = x_for(model) - 2.0  # mostly negative: the padded zeros win a max at the border
    assert_close(onnx_port.build(model, "float32").forward(x), reference_forward(model, x), "float32")


# --------------------------------------------------------------------------- the written port, alone

_LOADER = """
import sys
import numpy as np
import onnxruntime as ort
for path, x_path, y_path in zip(*[iter(sys.argv[1:])] * 3):
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.load(x_path, allow_pickle=False)
    np.save(y_path, s.run(None, {s.get_inputs()[0].name: x})[0], allow_pickle=False)
    print(s.get_inputs()[0].shape, "|", s.get_modelmeta().description)
assert "impls" not in sys.modules and "nnparity" not in sys.modules, sorted(sys.modules)
"""


def run_alone(jobs: list[tuple[Path, np.ndarray]], tmp: Path) -> tuple[list[np.ndarray], list[str]]:
    """Each (port file, input) run by onnxruntime in a fresh interpreter: PYTHONPATH the port's folder only, cwd
    elsewhere, nnparity never imported. Returns the outputs and each session's (input shape | doc_string) line."""
    argv = []
    for k, (path, x) in enumerate(jobs):
        np.save(tmp / f"x{k}.npy", x, allow_pickle=False)
        argv += [str(path), str(tmp / f"x{k}.npy"), str(tmp / f"y{k}.npy")]
    cwd = tmp / "elsewhere"
    cwd.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(jobs[0][0].parent)}
    done = subprocess.run([sys.executable, "-c", _LOADER, *argv], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return [np.load(tmp / f"y{k}.npy", allow_pickle=False) for k in range(len(jobs))], done.stdout.strip().splitlines()


def native(a: np.ndarray) -> np.ndarray:
    """Canonical -> ONNX's own layout: NHWC -> NCHW, (B, T, F) -> (T, B, F); 2-D unchanged."""
    return {4: lambda: a.transpose(0, 3, 1, 2), 3: lambda: a.transpose(1, 0, 2)}.get(a.ndim, lambda: a)()


def boundary(native_layout: bool, channels_first: bool):
    """Canonical -> the written port's layout: native, or the source's (NCHW images for a channels_first source)."""
    return native if native_layout else (lambda a: native(a) if a.ndim == 4 and channels_first else a)


def test_written_ports_load_in_onnxruntime_alone_in_both_layouts(tmp_path):
    jobs, expected, layouts = [], [], []
    port_dir = tmp_path / "ports"
    for case, factory in MODELS.items():
        model = factory()
        x = x_for(model, seed=7).astype(np.float32)
        ref = reference_forward(model, x.astype(np.float64))
        for native_layout in (False, True):
            out = port_dir / f"{case}-{'native' if native_layout else 'source'}.onnx"
            assert onnx_port.write(model, out, native_layout=native_layout) == [out] and out.is_file()
            into = boundary(native_layout, model.boundary == "channels_first")
            jobs.append((out, np.ascontiguousarray(into(x))))
            expected.append(into(ref))
            layouts.append((case, native_layout))
    outs, lines = run_alone(jobs, tmp_path)
    for (case, native_layout), got, want, line in zip(layouts, outs, expected, lines, strict=True):
        assert_close(got, want, "float32", what=f"{case} port (native_layout={native_layout}) in onnxruntime alone")
        assert ("native layout" in line) == native_layout, line
        assert "'batch'" in line.split("|")[0], line  # the batch dimension is symbolic
