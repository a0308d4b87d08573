"""The benchmark matrix as data: which rows each profile runs, with readable ids (no framework here).

A Row is one (implementation, mode, work, sizes, pass, precision, device); `rows(profile, devices)` lists
them in an order that lets consecutive rows share one NumPy float64 reference. Whether a row can run
(framework installed, mode offered, dtype supported) is decided when it runs, so a missing piece is a
skip with its reason, never a collection error.

Profiles
    quick      (default) the seed's shapes, float64 and float32 (plus tf32/bfloat16/float16 on cuda), every
               implementation in its default mode: NumPy; torch and torch.nn eager; TensorFlow and Keras
               under tf.function. One eager Keras row (seed GRU model forward, float32), labelled so. The GRU
               op at the seed's first GRU layer's sizes (B32 T100 I64 H128) in the reset_after and reset_before
               variants; the LSTM (fwd, fwd+bwd), the bidirectional LSTM and GRU (fwd) at the same sizes,
               float32 (LAYER_WORKS). The second GRU layer's sizes (I128 H64) moved to full in issue 19: two worker
               processes of ~75 s start-up each left no room for them in 5 minutes (bench/costmodel.py).
    full       quick, plus every GRU variant's fwd and fwd+bwd, the LSTM and bidirectional layers in both
               precisions and passes, every layer of the seed CNN, sweeps over hidden
               size, sequence length and batch, and the other modes at the seed's shapes:
               tf.function(jit_compile=True), eager TensorFlow/Keras, torch.compile (forward; the GRU once, the
               seed GRU model not: its compile takes minutes on 2 cores).
    deepbench  DeepBench's GRU sizes (baidu-research/DeepBench, kernels/rnn_problems.h; input = hidden,
               reset_after, FLOPs by DeepBench's 6*T*B*H^2 convention). On cpu a representative subset
               that runs in minutes on a 2-core machine: (H, B, T) = (512, 32, 1), (512, 1, 1), (512, 4, 1),
               (1536, 1, 187), and (1536, 4, 187) forward only. On cuda the whole training
               set (18 sizes) and a subset of the inference set (batch 1 and 4; T = 750 for hidden 1536-2816,
               T = 1 for 512, T = 1500 for 1024).
Ceilings (matmul per precision, memory copy) and the harness-overhead rows are part of every profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from impls import GRU_VARIANTS, IMPLEMENTATIONS, SHORT
from impls.contract import limits
from impls.contract.models import (
    SEED_CLASSES,
    SEED_CNN_FILTERS,
    SEED_CNN_INPUT,
    SEED_DENSE_UNITS,
    SEED_GRU_INPUT,
    SEED_GRU_UNITS,
    SEED_GRU_VARIANT,
)
from impls.model import seed as seed_models

PROFILES = ("quick", "full", "deepbench")
PASSES = ("fwd", "fwd+bwd", "train_step")
OP_WORKS = ("gru", "conv2d", "max_pool2d", "dense")
MODEL_WORKS = ("seed_gru_model", "seed_cnn_model")
LAYER_WORKS = ("lstm", "bilstm", "bigru")
"""Layers timed as one-layer model descriptions through impls.model.voices.build (every voice, the ports
included): an LSTM, a bidirectional LSTM and a bidirectional GRU (merge concat, the final states), at the seed
GRU's first-layer sizes. The GRU itself stays an op row (its op contract has every variant)."""
LAYER_OPS = {"lstm": ("lstm",), "bilstm": ("lstm",), "bigru": ("gru",)}
"""The contract op each layer work runs on (impls.contract.limits refuses by op)."""

FRAMEWORK = {"numpy": "numpy", "torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "torch_nn": "torch",
             "keras": "keras", "flax": "flax", "onnxruntime": "onnxruntime"}  # fmt: skip
DEFAULT_MODE = {"numpy": "numpy", "torch": "eager", "torch_nn": "eager", "tensorflow": "tf.function", "keras": "tf.function",
                "jax": "jit", "flax": "jit", "onnxruntime": "ort"}  # fmt: skip
"""The mode each implementation is benchmarked in by default. TensorFlow and Keras run under tf.function:
eager Keras is ~35x slower and would misrepresent the framework."""
MODE_TOKEN = {
    "numpy": "numpy", "eager": "eager", "tf.function": "tffunc", "tf.function(jit_compile=True)": "xla",
    "torch.compile": "compiled", "cuda_graph": "cudagraph", "jit": "jit", "ort": "ort",
}  # fmt: skip
"""Modes as they appear in test ids (ids stay usable with -k)."""
TRAIN_IMPLS = ("numpy", "torch_nn", "keras")
"""Implementations with an optimiser step on the seed models (numpy_train, torch.optim, keras.optimizers). JAX trains
through numpy_train's Adam on the host (impls/train/jax_train.py), not a jitted step: it has no train_step row."""
QUICK_FLOAT32_ONLY = ("jax", "flax", "onnxruntime")
"""issue 11's voices run float32 only in the quick profile (float64 in full): their rows would otherwise take the
CPU quick profile past its 5-minute bar. float64 agreement is verify/'s, at 1e-10."""

STORAGE = {"float64": "float64", "float32": "float32", "tf32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
"""precision -> storage dtype. tf32 stores float32 and rounds matmul inputs to 10-bit mantissas."""
CUDA_PRECISIONS = {
    "torch": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "tensorflow": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "keras": ("float64", "float32", "tf32", "bfloat16", "float16"),
    "jax": ("float64", "float32", "bfloat16", "float16"),  # float32 matmuls at "highest" (impls.frameworks): no TF32 row
    "flax": ("float64", "float32", "bfloat16", "float16"),
    "onnxruntime": ("float32",),  # CUDAExecutionProvider, where onnxruntime-gpu is installed
}
CPU_PRECISIONS = ("float64", "float32")


def precisions(impl: str, device: str) -> tuple[str, ...]:
    if device == "cpu":
        return CPU_PRECISIONS
    return CUDA_PRECISIONS.get(FRAMEWORK[impl], ())


def devices_for(impl: str, devices: tuple[str, ...]) -> tuple[str, ...]:
    return ("cpu",) if impl == "numpy" else devices


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Size:
    work: str
    label: str  # "B32 T100 I64 H128"
    sizes: tuple[tuple[str, int], ...]
    sweep: str  # seed, hidden, seq_len, batch, deepbench, ceiling

    @property
    def dims(self) -> dict[str, int]:
        return dict(self.sizes)

    @property
    def token(self) -> str:
        return self.label.replace(" ", "").replace("/", "-")


def gru_size(B: int, T: int, I: int, H: int, sweep: str) -> Size:
    return Size("gru", f"B{B} T{T} I{I} H{H}", (("B", B), ("T", T), ("I", I), ("H", H)), sweep)


def layer_size(work: str, B: int, T: int, I: int, H: int, sweep: str) -> Size:
    return Size(work, f"B{B} T{T} I{I} H{H}", (("B", B), ("T", T), ("I", I), ("H", H)), sweep)


def conv_size(B: int, HI: int, C: int, O: int, sweep: str, K: int = 3) -> Size:
    OH = HI - K + 1  # valid, stride 1, square, as in the seed's Conv2D(…, (3, 3))
    dims = (("B", B), ("HI", HI), ("WI", HI), ("C", C), ("KH", K), ("KW", K), ("O", O), ("OH", OH), ("OW", OH))
    return Size("conv2d", f"B{B} H{HI} W{HI} C{C} K{K}x{K} O{O}", dims, sweep)


def pool_size(B: int, HI: int, C: int, sweep: str, P: int = 2) -> Size:
    OH = HI // P  # valid, stride = pool, as the seed's MaxPooling2D((2, 2))
    return Size("max_pool2d", f"B{B} H{HI} W{HI} C{C} P{P}",
                (("B", B), ("HI", HI), ("WI", HI), ("C", C), ("P", P), ("OH", OH), ("OW", OH)), sweep)  # fmt: skip


def dense_size(B: int, n_in: int, n_out: int, sweep: str) -> Size:
    return Size("dense", f"B{B} IN{n_in} OUT{n_out}", (("B", B), ("IN", n_in), ("OUT", n_out)), sweep)


def seed_gru_model_size(B: int, sweep: str) -> Size:
    (T, I), (H1, H2) = SEED_GRU_INPUT, SEED_GRU_UNITS
    dims = (("B", B), ("T", T), ("I", I), ("H1", H1), ("H2", H2), ("CL", SEED_CLASSES))
    return Size("seed_gru_model", f"B{B} T{T} I{I} H{H1}/{H2} C{SEED_CLASSES}", dims, sweep)


def seed_cnn_model_size(B: int, sweep: str) -> Size:
    (H, W, C), (F1, F2) = SEED_CNN_INPUT, SEED_CNN_FILTERS
    dims = (("B", B), ("H", H), ("W", W), ("C", C), ("F1", F1), ("F2", F2), ("D", SEED_DENSE_UNITS), ("CL", SEED_CLASSES))
    return Size("seed_cnn_model", f"B{B} {H}x{W}x{C} F{F1}/{F2} D{SEED_DENSE_UNITS} C{SEED_CLASSES}", dims, sweep)


# The seed's own shapes: its two GRU layers, and the layers of its CNN at batch 32.
SEED_B = 32
SEED_GRUS = [gru_size(SEED_B, 100, 64, 128, "seed"), gru_size(SEED_B, 100, 128, 64, "seed")]
SEED_CONVS = [conv_size(SEED_B, 28, 1, 32, "seed"), conv_size(SEED_B, 13, 32, 64, "seed")]
SEED_POOLS = [pool_size(SEED_B, 26, 32, "seed"), pool_size(SEED_B, 11, 64, "seed")]
SEED_DENSES = [dense_size(SEED_B, 5 * 5 * 64, 128, "seed"), dense_size(SEED_B, 128, 10, "seed")]
QUICK_LAYERS = [SEED_CONVS[1], SEED_POOLS[0], SEED_DENSES[0]]
"""quick times the heaviest layer of each kind in the seed CNN; full times all of them."""

SWEEP_GRUS = (
    [gru_size(32, 100, 64, H, "hidden") for H in (32, 256, 512, 1024)]
    + [gru_size(32, T, 64, 128, "seq_len") for T in (1, 10, 300, 1000)]
    + [gru_size(B, 100, 64, 128, "batch") for B in (1, 8, 128, 512)]
)
SWEEP_LAYERS = [conv_size(B, 13, 32, 64, "batch") for B in (1, 256)] + [
    pool_size(B, 26, 32, "batch") for B in (1, 256)
] + [dense_size(B, 1600, 128, "batch") for B in (1, 256)]

# DeepBench GRU problems (hidden, batch, timesteps), kernels/rnn_problems.h. Input size = hidden.
DEEPBENCH_TRAIN = [
    (2816, 32, 750), (2816, 32, 375), (2816, 32, 187),
    (2048, 32, 1500), (2048, 32, 750), (2048, 32, 375), (2048, 32, 187),
    (1536, 32, 1500), (1536, 32, 750), (1536, 32, 375), (1536, 32, 187),
    (2560, 32, 1500), (2560, 32, 750), (2560, 32, 375), (2560, 32, 187),
    (512, 32, 1), (1024, 32, 1500), (1024, 64, 1500),
]  # fmt: skip
DEEPBENCH_INFER_GPU = [(H, B, 750) for H in (1536, 2048, 2560, 2816) for B in (1, 4)] + [
    (512, 1, 1), (512, 4, 1), (1024, 1, 1500), (1024, 4, 1500)
]
DEEPBENCH_CPU = [(512, 32, 1), (512, 1, 1), (512, 4, 1), (1536, 1, 187)]
DEEPBENCH_CPU_FWD_ONLY = [(1536, 4, 187)]  # batch 32 at T=187 and any fwd+bwd beyond: minutes per row on 2 cores


def deepbench_sizes(device: str, pass_: str = "fwd") -> list[Size]:
    if device == "cpu":
        hbt = DEEPBENCH_CPU + (DEEPBENCH_CPU_FWD_ONLY if pass_ == "fwd" else [])
    else:  # cheapest first (H^2 * B * T), so a run cut short by --bench-deadline loses the costliest rows
        hbt = sorted(DEEPBENCH_TRAIN + DEEPBENCH_INFER_GPU, key=lambda hbt: (hbt[0] ** 2 * hbt[1] * hbt[2], hbt))
    return [gru_size(B, T, H, H, "deepbench") for H, B, T in hbt]


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    impl: str
    mode: str
    work: str
    size: Size
    pass_: str
    precision: str
    device: str
    profile: str
    variant: str | None = None
    convention: str = "gemm"

    @property
    def dtype(self) -> str:
        return STORAGE[self.precision]

    @property
    def framework(self) -> str:
        return FRAMEWORK[self.impl]

    @property
    def id(self) -> str:
        parts = [self.work, SHORT[self.impl], MODE_TOKEN[self.mode], self.device, self.precision]
        return "-".join(parts + ([self.variant] if self.variant else []) + [self.size.token, self.pass_])

    @property
    def group(self) -> str:
        """The comparison group: the id without implementation and mode, i.e. one work item (work, device,
        precision, variant, shape, pass) that every implementation and mode is timed on together."""
        parts = [self.work, self.device, self.precision]
        return "-".join(parts + ([self.variant] if self.variant else []) + [self.size.token, self.pass_])


def contract_op(work: str, pass_: str) -> str:
    """The contract function a row of (work, pass) exercises, as impls.contract.limits names it."""
    return work if pass_ == "fwd" else f"{work}_vjp"  # a model's gradients: refused wherever gradients are


QUICK_VARIANTS = ("reset_after", "reset_before")
"""The GRU variants quick times at the seed's shapes (the frameworks' two: cuDNN's and Keras' reset_after=False);
chung and the seed's own run in full. Issue 17 moved them there, to make room for the LSTM rows in quick's 5 minutes."""


def _variants(work: str, impl: str, all_variants: bool | tuple[str, ...]) -> tuple[str | None, ...]:
    if work not in ("gru", "seed_gru_model"):
        return (None,)
    offered = GRU_VARIANTS[impl]
    if isinstance(all_variants, tuple):
        return tuple(v for v in offered if v in all_variants)
    if all_variants:
        return offered
    return (SEED_GRU_VARIANT,) if SEED_GRU_VARIANT in offered else ()


def _rows(sizes, passes, devices, profile, modes=None, all_variants=False, impls=None,
          precisions_=None, convention="gemm") -> list[Row]:  # fmt: skip
    """Rows ordered size -> variant -> pass -> device -> precision -> impl -> mode, so rows that share a
    reference run one after another."""
    out = []
    for size in sizes:
        for variant in sorted({v for i in IMPLEMENTATIONS for v in _variants(size.work, i, all_variants)}, key=str):
            for pass_ in passes:
                for device in devices:
                    for prec in precisions_ or ("float64", "float32", "tf32", "bfloat16", "float16"):
                        for impl in impls or IMPLEMENTATIONS:
                            if pass_ == "train_step" and impl not in TRAIN_IMPLS:
                                continue
                            if variant not in _variants(size.work, impl, all_variants):
                                continue
                            if device not in devices_for(impl, devices) or prec not in precisions(impl, device):
                                continue
                            if profile == "quick" and impl in QUICK_FLOAT32_ONLY and prec == "float64":
                                continue
                            inside = (contract_op(size.work, pass_), *seed_models.OPS.get(size.work, ()),
                                      *LAYER_OPS.get(size.work, ()))
                            if any(limits.refusal(impl, op, STORAGE[prec]) is not None for op in inside):
                                continue  # declared (impls/contract/limits.py): ONNX Runtime's float64 GRU/Conv, its gradients
                            for mode in (modes or {}).get(impl, (DEFAULT_MODE[impl],)):
                                out.append(Row(impl, mode, size.work, size, pass_, prec, device, profile,
                                               variant, convention))  # fmt: skip
    return out


SEED_LAYERS_RNN = [layer_size(w, SEED_B, 100, 64, 128, "seed") for w in LAYER_WORKS]
"""The LSTM and the bidirectional layers at the seed's first GRU's sizes (B32 T100 I64 H128): the FAQ's
GRU-against-LSTM question at one shape, beside the GRU op rows."""


def _quick(devices: tuple[str, ...], profile: str) -> list[Row]:
    rows = _rows(SEED_GRUS[:1], ("fwd",), devices, profile, all_variants=QUICK_VARIANTS)
    rows += _rows(SEED_LAYERS_RNN[:1], ("fwd", "fwd+bwd"), devices, profile, precisions_=("float32",))
    rows += _rows(SEED_LAYERS_RNN[1:], ("fwd",), devices, profile, precisions_=("float32",))
    rows += _rows(SEED_GRUS[:1], ("fwd+bwd",), devices, profile)
    rows += _rows(QUICK_LAYERS, ("fwd", "fwd+bwd"), devices, profile)
    models = [seed_gru_model_size(SEED_B, "seed"), seed_cnn_model_size(SEED_B, "seed")]
    rows += _rows(models, PASSES, devices, profile)
    # The one eager Keras row: how far eager Keras is from the tf.function rows above.
    rows += _rows(models[:1], ("fwd",), ("cpu",), profile, modes={"keras": ("eager",)}, impls=("keras",),
                  precisions_=("float32",))  # fmt: skip
    return rows


def _full(devices: tuple[str, ...]) -> list[Row]:
    p = "full"
    rows = _rows(SEED_GRUS, ("fwd", "fwd+bwd"), devices, p, all_variants=True)
    layers = SEED_CONVS + SEED_POOLS + SEED_DENSES
    rows += _rows(layers, ("fwd", "fwd+bwd"), devices, p)
    seed_models = [seed_gru_model_size(SEED_B, "seed"), seed_cnn_model_size(SEED_B, "seed")]
    batches = (1, 256) + ((1024,) if "cuda" in devices else ())  # 1024 as in the GPU anchors (cuda only)
    batch_models = [seed_gru_model_size(B, "batch") for B in batches] + [seed_cnn_model_size(B, "batch") for B in batches]
    rows += _rows(seed_models + batch_models, PASSES, devices, p)
    rows += _rows(SWEEP_GRUS, ("fwd", "fwd+bwd"), devices, p)
    rows += _rows(SEED_LAYERS_RNN, ("fwd", "fwd+bwd"), devices, p)
    rows += _rows(SWEEP_LAYERS, ("fwd", "fwd+bwd"), devices, p)
    # Other modes at the seed's shapes.
    xla = {"tensorflow": ("tf.function(jit_compile=True)",), "keras": ("tf.function(jit_compile=True)",)}
    rows += _rows(SEED_GRUS + layers + seed_models, ("fwd", "fwd+bwd"), devices, p, modes=xla,
                  impls=("tensorflow", "keras"))  # fmt: skip
    eager = {"tensorflow": ("eager",), "keras": ("eager",)}
    rows += _rows(SEED_GRUS[:1] + SEED_CONVS[1:] + seed_models, ("fwd",), devices, p, modes=eager,
                  impls=("tensorflow", "keras"), precisions_=("float32",))  # fmt: skip
    # torch.compile, forward only: compiling the 100-step GRU loop takes ~30 s on the 2-core CPU (the seed GRU
    # model, two such loops, ~190 s), so the GRU is compiled once (float32, first seed layer) and the model not.
    compiled = {"torch": ("torch.compile",), "torch_nn": ("torch.compile",)}
    rows += _rows(SEED_GRUS[:1], ("fwd",), devices, p, modes=compiled, impls=("torch", "torch_nn"),
                  precisions_=("float32",))  # fmt: skip
    rows += _rows(SEED_CONVS[1:] + SEED_DENSES[:1] + seed_models[1:], ("fwd",), devices, p, modes=compiled,
                  impls=("torch", "torch_nn"), precisions_=("float32", "float64"))  # fmt: skip
    return rows


def _deepbench(devices: tuple[str, ...]) -> list[Row]:
    rows = []
    for device in devices:
        for pass_ in ("fwd", "fwd+bwd"):
            sizes = deepbench_sizes(device, pass_)
            if device == "cpu":
                rows += _rows(sizes, (pass_,), (device,), "deepbench", convention="deepbench")
                continue
            # cuda: the built-in layers (cuDNN, Flax's, ONNX Runtime's) in float32, TF32 and bfloat16 where each has
            # them; the GRUs from primitives in float32, forward only (jax's one lax.scan beside torch's and TF's
            # loops, as in shared/anchors). float64 and float16 GPU rows are in quick and full. The run stays minutes.
            rows += _rows(sizes, (pass_,), (device,), "deepbench", impls=("torch_nn", "keras", "flax", "onnxruntime"),
                          precisions_=("float32", "tf32", "bfloat16"), convention="deepbench")  # fmt: skip
            if pass_ == "fwd":
                rows += _rows(sizes, (pass_,), (device,), "deepbench", impls=("torch", "tensorflow", "jax"),
                              precisions_=("float32",), convention="deepbench")  # fmt: skip
    return rows


def rows(profile: str, devices: tuple[str, ...]) -> list[Row]:
    """Every row of `profile` on `devices` ("cpu", and "cuda" when a GPU is present)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    if profile == "quick":
        return _quick(devices, profile)
    if profile == "deepbench":
        return _deepbench(devices)
    out = [r for r in _full(devices) if not (r.size.dims["B"] == 1024 and r.device != "cuda")]
    seen, unique = set(), []
    for r in out:  # the same row can come from two lists (seed shapes and a sweep point)
        if r.id not in seen:
            seen.add(r.id)
            unique.append(r)
    return unique


# --------------------------------------------------------------------------- ceilings


@dataclass(frozen=True)
class Ceiling:
    lib: str  # "numpy" or "torch"
    work: str  # "matmul", "copy" or "empty" (the harness's own overhead: an empty callable + synchronize)
    device: str
    precision: str
    size: Size
    profile: str

    @property
    def dtype(self) -> str:
        return STORAGE[self.precision]

    @property
    def id(self) -> str:
        kind = "overhead" if self.work == "empty" else "ceiling"
        return "-".join([kind, self.work, SHORT.get(self.lib, self.lib), self.device, self.precision, self.size.token])

    @property
    def group(self) -> str:
        """A ceiling is timed alone: a group of one."""
        return self.id


def _matmul_size(n: int) -> Size:
    return Size("matmul", f"M{n} N{n} K{n}", (("M", n), ("N", n), ("K", n)), "ceiling")


def _copy_size(mib: int, itemsize: int = 4) -> Size:
    return Size("copy", f"{mib}MiB", (("N", mib * 2**20 // itemsize),), "ceiling")


def ceilings(profile: str, devices: tuple[str, ...]) -> list[Ceiling]:
    """A large matmul per precision per device (NumPy and torch on cpu, torch on cuda), a memory copy
    per device, and the empty-callable overhead row per framework and device."""
    n_cpu = 2048 if profile == "full" else 1024
    out = [Ceiling("numpy", "matmul", "cpu", p, _matmul_size(n_cpu), profile) for p in CPU_PRECISIONS]
    out += [Ceiling("torch", "matmul", "cpu", p, _matmul_size(n_cpu), profile) for p in CPU_PRECISIONS]
    out += [Ceiling(lib, "copy", "cpu", "float32", _copy_size(256 if profile == "full" else 64), profile)
            for lib in ("numpy", "torch")]  # fmt: skip
    empty = Size("empty", "call", (), "ceiling")
    out += [Ceiling(lib, "empty", "cpu", "float32", empty, profile) for lib in ("numpy", "torch", "tensorflow")]
    if "cuda" in devices:
        out += [Ceiling("torch", "matmul", "cuda", p, _matmul_size(8192), profile) for p in CUDA_PRECISIONS["torch"]]
        out += [Ceiling("torch", "copy", "cuda", "float32", _copy_size(1024), profile)]
        out += [Ceiling(lib, "empty", "cuda", "float32", empty, profile) for lib in ("torch", "tensorflow")]
    return out
