"""The benchmark matrix's sizes: a Size per work item (GRU, layer, conv, pool, dense, seed model), the seed's own
shapes, the sweeps over hidden size, sequence length and batch, and DeepBench's GRU problems. Re-exported by
bench/cases.py, whose docstring says which profile times which."""

from __future__ import annotations

from dataclasses import dataclass

from impls.contract.models import (
    SEED_CLASSES,
    SEED_CNN_FILTERS,
    SEED_CNN_INPUT,
    SEED_DENSE_UNITS,
    SEED_GRU_INPUT,
    SEED_GRU_UNITS,
)


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


def seq_task_size(B: int = 32, T: int = 100, I: int = 64, H1: int = 128, H2: int = 64, CL: int = 10, D: int = 64,
                  NH: int = 4, L: int = 2, sweep: str = "seq_task") -> Size:
    """The seed's sequence task (bench/seqtask.py): B x T x I in, CL classes; the GRU and LSTM models' units H1, H2, the
    Transformer's d_model D, heads NH and layers L (its FFN width is solved from the GRU's parameter count). Its three
    architectures share one comparison group (the row's variant is the architecture)."""
    dims = (("B", B), ("T", T), ("I", I), ("CL", CL), ("H1", H1), ("H2", H2), ("D", D), ("NH", NH), ("L", L))
    return Size("seq_task", f"B{B} T{T} I{I} C{CL} H{H1}/{H2} D{D}h{NH}x{L}", dims, sweep)


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
SEQ_TASK = seq_task_size()
"""The seed's sequence task at its own sizes (B32 T100 I64, 10 classes; GRU 128/64, Transformer D64 h4 x2): full."""

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
