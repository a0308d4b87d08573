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
               And the seed's sequence task three ways (bench/seqtask.py: its GRU model, the same with LSTMs, a
               Transformer encoder of the GRU's parameter count), float32, forward in every voice and one Adam step in
               numpy, torch.nn, Keras and Flax, the three architectures in one comparison group (`seq_rows`).
    deepbench  DeepBench's GRU sizes (baidu-research/DeepBench, kernels/rnn_problems.h; input = hidden,
               reset_after, FLOPs by DeepBench's 6*T*B*H^2 convention). On cpu a representative subset
               that runs in minutes on a 2-core machine: (H, B, T) = (512, 32, 1), (512, 1, 1), (512, 4, 1),
               (1536, 1, 187), and (1536, 4, 187) forward only. On cuda the whole training
               set (18 sizes) and a subset of the inference set (batch 1 and 4; T = 750 for hidden 1536-2816,
               T = 1 for 512, T = 1500 for 1024).
Ceilings (matmul per precision, memory copy) and the harness-overhead rows are part of every profile.
Sizes live in bench/sizes.py, precisions in bench/precisions.py, ceilings in bench/ceilings.py; every name is
re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from impls import GRU_VARIANTS, IMPLEMENTATIONS, SHORT
from impls.contract import limits
from impls.contract.models import SEED_GRU_VARIANT
from impls.model import seed as seed_models

from .ceilings import Ceiling, ceilings
from .precisions import CPU_PRECISIONS, CUDA_PRECISIONS, FRAMEWORK, STORAGE, precisions
from .sizes import (
    DEEPBENCH_CPU,
    DEEPBENCH_CPU_FWD_ONLY,
    DEEPBENCH_INFER_GPU,
    DEEPBENCH_TRAIN,
    QUICK_LAYERS,
    SEED_B,
    SEED_CONVS,
    SEED_DENSES,
    SEED_GRUS,
    SEED_POOLS,
    SEQ_TASK,
    SWEEP_GRUS,
    SWEEP_LAYERS,
    Size,
    conv_size,
    deepbench_sizes,
    dense_size,
    gru_size,
    layer_size,
    pool_size,
    seed_cnn_model_size,
    seed_gru_model_size,
    seq_task_size,
)

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
SEQ_WORKS = ("seq_task",)
"""The seed's sequence task three ways (bench/seqtask.py): the row's variant is the architecture (gru, lstm,
transformer), and one comparison group holds all three (Row.group), so architecture against architecture is paired."""
SEQ_ARCHS = ("gru", "lstm", "transformer")
SEQ_PASSES = ("fwd", "train_step")
SEQ_TRAIN_IMPLS = ("numpy", "torch_nn", "keras", "flax")
"""Voices with an optimiser step on any description: numpy_train's Adam (Keras' flavour) on the hand-written
backward, torch.optim.Adam on the torch port, keras.optimizers.Adam on the Keras port, optax.adam on the Flax port
(bench/seqtrain.py). The from-primitives torch, TensorFlow and JAX voices have gradients, not an optimiser."""
SEQ_OPS = ("gru", "lstm", "dense")
"""Contract ops inside the sequence task (impls.contract.limits refuses by op: ONNX Runtime's float64 GRU)."""

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


def devices_for(impl: str, devices: tuple[str, ...]) -> tuple[str, ...]:
    return ("cpu",) if impl == "numpy" else devices


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
        shared = self.work in SEQ_WORKS  # the architectures of the sequence task are timed together
        return "-".join(parts + ([self.variant] if self.variant and not shared else []) + [self.size.token, self.pass_])


def contract_op(work: str, pass_: str) -> str:
    """The contract function a row of (work, pass) exercises, as impls.contract.limits names it."""
    return work if pass_ == "fwd" else f"{work}_vjp"  # a model's gradients: refused wherever gradients are


QUICK_VARIANTS = ("reset_after", "reset_before")
"""The GRU variants quick times at the seed's shapes (the frameworks' two: cuDNN's and Keras' reset_after=False);
chung and the seed's own run in full. Issue 17 moved them there, to make room for the LSTM rows in quick's 5 minutes."""


def _variants(work: str, impl: str, all_variants: bool | tuple[str, ...]) -> tuple[str | None, ...]:
    if work in SEQ_WORKS:
        return SEQ_ARCHS
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
        trains = SEQ_TRAIN_IMPLS if size.work in SEQ_WORKS else TRAIN_IMPLS
        for variant in sorted({v for i in IMPLEMENTATIONS for v in _variants(size.work, i, all_variants)}, key=str):
            for pass_ in passes:
                for device in devices:
                    for prec in precisions_ or ("float64", "float32", "tf32", "bfloat16", "float16"):
                        for impl in impls or IMPLEMENTATIONS:
                            if pass_ == "train_step" and impl not in trains:
                                continue
                            if variant not in _variants(size.work, impl, all_variants):
                                continue
                            if device not in devices_for(impl, devices) or prec not in precisions(impl, device):
                                continue
                            if profile == "quick" and impl in QUICK_FLOAT32_ONLY and prec == "float64":
                                continue
                            inside = (contract_op(size.work, pass_), *seed_models.OPS.get(size.work, ()),
                                      *LAYER_OPS.get(size.work, ()), *(SEQ_OPS if size.work in SEQ_WORKS else ()))
                            if any(limits.refusal(impl, op, STORAGE[prec]) is not None for op in inside):
                                continue  # declared (impls/contract/limits.py): ONNX Runtime's float64 GRU/Conv, its gradients
                            for mode in (modes or {}).get(impl, (DEFAULT_MODE[impl],)):
                                out.append(Row(impl, mode, size.work, size, pass_, prec, device, profile,
                                               variant, convention))  # fmt: skip
    return out


SEED_LAYERS_RNN = [layer_size(w, SEED_B, 100, 64, 128, "seed") for w in LAYER_WORKS]
"""The LSTM and the bidirectional layers at the seed's first GRU's sizes (B32 T100 I64 H128): the FAQ's
GRU-against-LSTM question at one shape, beside the GRU op rows."""


def seq_rows(devices: tuple[str, ...], profile: str, sizes=None) -> list[Row]:
    """The sequence task's rows (bench/seqtask.py): every voice forward, the SEQ_TRAIN_IMPLS one Adam step, float32,
    each architecture a variant of one work (and of one comparison group per pass)."""
    out = []
    for size in sizes or [SEQ_TASK]:
        for pass_ in SEQ_PASSES:
            impls = SEQ_TRAIN_IMPLS if pass_ == "train_step" else None
            for device in devices:
                out += _rows([size], (pass_,), (device,), profile, impls=impls, precisions_=("float32",))
    return out


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
    rows += seq_rows(devices, p)  # the sequence task: GRU, LSTM, Transformer (issue 25)
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


__all__ = [
    "CPU_PRECISIONS", "CUDA_PRECISIONS", "DEEPBENCH_CPU", "DEEPBENCH_CPU_FWD_ONLY", "DEEPBENCH_INFER_GPU",
    "DEEPBENCH_TRAIN", "DEFAULT_MODE", "FRAMEWORK", "LAYER_OPS", "LAYER_WORKS", "MODEL_WORKS", "MODE_TOKEN",
    "OP_WORKS", "PASSES", "PROFILES", "QUICK_FLOAT32_ONLY", "QUICK_LAYERS", "QUICK_VARIANTS", "SEED_B",
    "SEED_CONVS", "SEED_DENSES", "SEED_GRUS", "SEED_LAYERS_RNN", "SEED_POOLS", "SEQ_ARCHS", "SEQ_OPS", "SEQ_PASSES",
    "SEQ_TASK", "SEQ_TRAIN_IMPLS", "SEQ_WORKS", "STORAGE", "SWEEP_GRUS",
    "SWEEP_LAYERS", "TRAIN_IMPLS", "Ceiling", "Row", "Size", "ceilings", "contract_op", "conv_size",
    "deepbench_sizes", "dense_size", "devices_for", "gru_size", "layer_size", "pool_size", "precisions", "rows",
    "seed_cnn_model_size", "seed_gru_model_size", "seq_rows", "seq_task_size",
]  # fmt: skip
