"""The seed's sequence task three ways (issue 25, item 5): its GRU model, the same model with LSTMs, and a Transformer
encoder of the GRU model's parameter count, as model descriptions every voice builds (no framework here).

The task is the seed's (section 4.1): (B, T, I) = (32, 100, 64) sequences, 10 classes, softmax, categorical
cross-entropy. The three architectures, all from existing kinds:

    gru          GRU(128, return_sequences) -> GRU(64) -> Dense(10, softmax)     the seed's model (reset_after, the
                                                                                 variant cuDNN and Keras' default compute)
    lstm         LSTM(128, return_sequences) -> LSTM(64) -> Dense(10, softmax)   the same units: the FAQ's question (6.1),
                                                                                 4/3 of the GRU's recurrent weights
    transformer  Dense(D) -> L x [multi_head_attention(NH heads, key_dim D / NH) -> add -> layer_norm
                 -> Dense(FFN, gelu) -> Dense(D) -> add -> layer_norm] -> global_avg_pool -> Dense(10, softmax)
                 a post-norm encoder (torch's TransformerEncoderLayer default), D = 64, NH = 4, L = 2 at the seed's
                 sizes, and FFN solved so that its parameter count is the GRU model's (`matched_ffn`)

No position embedding: every voice must compute the model, and when this was built the Keras port refused
`position_embedding` (it ports now, as an EinsumDense of ones_like and an Add: DESIGN.md, "Attention"; the rows are
left as measured). Its cost would be one
(T, D) addition, nothing beside the attention and the FFN; without it the encoder is blind to the order of the steps,
which a timing does not see (the weights are seeded, not trained).

The parameter counts are the descriptions' canonical ones (Model.param_count); a framework's own can differ (torch's
and Keras' attention hold a key bias the description leaves out: softmax ignores it). In the bench matrix the three are
one work, `seq_task`, with the architecture as the row's variant; its comparison group spans the architectures
(cases.Row.group), so every row's blocks are shared and the ratio of one architecture to another in one voice is a
paired ratio (bench.paired.between), as any two implementations of one work item are.
"""

from __future__ import annotations

from functools import lru_cache

from impls.model.description import Model
from impls.model.seeded import chain

from .works import seed_of

WORK = "seq_task"
ARCHS = ("gru", "lstm", "transformer")
PARAM_TOLERANCE = 0.01
"""How far the Transformer's parameter count may be from the GRU model's, relative (tests/test_bench_seq_task.py):
FFN is an integer, so the match is to within one FFN unit's parameters (2 D + 1 per layer)."""
LN_EPSILON = 1e-5  # torch's LayerNorm default (Keras' is 1e-3): either is a fixed option every voice carries


def _dims(dims) -> dict[str, int]:
    return dict(dims)


def _recurrent(arch: str, d: dict[str, int]) -> list[tuple]:
    extra = {"variant": "reset_after"} if arch == "gru" else {}
    return [(arch, f"{arch}1", {"units": d["H1"], "return_sequences": True, **extra}),
            (arch, f"{arch}2", {"units": d["H2"], **extra}),
            ("dense", "classifier", {"units": d["CL"], "activation": "softmax"})]  # fmt: skip


def _transformer(d: dict[str, int], ffn: int) -> list[tuple]:
    D, NH = d["D"], d["NH"]
    if D % NH:
        raise ValueError(f"seq_task transformer: d_model {D} is not a multiple of its {NH} heads")
    specs: list[tuple] = [("dense", "embed", {"units": D})]
    prev = "embed"
    for i in range(1, d["L"] + 1):
        specs += [
            ("multi_head_attention", f"attn{i}", {"num_heads": NH, "key_dim": D // NH}, (prev, prev)),
            ("add", f"attn{i}_add", {}, (prev, f"attn{i}")),
            ("layer_norm", f"attn{i}_norm", {"epsilon": LN_EPSILON}),
            ("dense", f"ffn{i}_in", {"units": ffn, "activation": "gelu"}),
            ("dense", f"ffn{i}_out", {"units": D}),
            ("add", f"ffn{i}_add", {}, (f"attn{i}_norm", f"ffn{i}_out")),
            ("layer_norm", f"ffn{i}_norm", {"epsilon": LN_EPSILON}),
        ]
        prev = f"ffn{i}_norm"
    return specs + [("global_avg_pool", "pool", {}), ("dense", "classifier", {"units": d["CL"], "activation": "softmax"})]


def _chain(arch: str, d: dict[str, int], specs: list[tuple]) -> Model:
    return chain(f"seq_task_{arch}", (d["T"], d["I"]), specs, seed=seed_of(f"seq_task {arch} weights"), batch=d["B"])


@lru_cache(maxsize=32)
def _model(arch: str, sizes: tuple[tuple[str, int], ...], ffn: int | None) -> Model:
    d = _dims(sizes)
    if arch in ("gru", "lstm"):
        return _chain(arch, d, _recurrent(arch, d))
    if arch == "transformer":
        return _chain(arch, d, _transformer(d, matched_ffn(sizes) if ffn is None else ffn))
    raise ValueError(f"seq_task: unknown architecture {arch!r}; architectures: {', '.join(ARCHS)}")


def model(arch: str, sizes: tuple[tuple[str, int], ...], ffn: int | None = None) -> Model:
    """The architecture's description at `sizes` (a Size's `sizes`), float64 seeded weights; the Transformer's FFN
    width is matched_ffn's unless given. Built once per (arch, sizes, ffn)."""
    return _model(arch, tuple(sizes), ffn)


@lru_cache(maxsize=32)
def matched_ffn(sizes: tuple[tuple[str, int], ...]) -> int:
    """The FFN width whose Transformer has the GRU model's parameter count, as near as an integer allows, computed from
    the descriptions: the count is linear in FFN (two Dense layers per encoder layer), so two builds fix the line."""
    target = model("gru", sizes).param_count()
    p1, p2 = (model("transformer", sizes, f).param_count() for f in (1, 2))
    return max(1, round(1 + (target - p1) / (p2 - p1)))


def param_counts(sizes: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """{architecture: canonical parameter count} at `sizes`."""
    return {a: model(a, sizes).param_count() for a in ARCHS}


def row_flops(arch: str, sizes: tuple[tuple[str, int], ...], pass_: str) -> int:
    """The gemm convention (every matrix product, 2mnk), from the description's per-kind counts; a training step is
    3 x forward (flops.row_flops' convention)."""
    d = _dims(sizes)
    fwd = model(arch, sizes).flops(d["B"])
    return 3 * fwd if pass_ != "fwd" else fwd


def row_bytes(arch: str, sizes: tuple[tuple[str, int], ...], pass_: str, itemsize: int) -> int:
    """flops.row_bytes' lower bound for a model: input, weights, output; a step adds dy and the gradients (none for the
    input), and Adam's read and write of the weights and both moments."""
    d = _dims(sizes)
    n_in, n_w, n_out = d["B"] * d["T"] * d["I"], model(arch, sizes).param_count(), d["B"] * d["CL"]
    n = n_in + n_w + n_out
    if pass_ != "fwd":
        n += n_out + n_w
    if pass_ == "train_step":
        n += 6 * n_w
    return int(n * itemsize)


def describe(sizes: tuple[tuple[str, int], ...]) -> dict[str, str]:
    """{architecture: its layers in words} at `sizes` (what the report states beside the counts)."""
    d = _dims(sizes)
    return {
        "gru": f"GRU({d['H1']}, return_sequences) -> GRU({d['H2']}) -> Dense({d['CL']}, softmax), reset_after",
        "lstm": f"LSTM({d['H1']}, return_sequences) -> LSTM({d['H2']}) -> Dense({d['CL']}, softmax)",
        "transformer": (f"Dense({d['D']}) -> {d['L']} post-norm encoder layers (attention "
                        f"{d['NH']} heads of {d['D'] // d['NH']}, FFN {matched_ffn(tuple(sizes))} gelu) -> mean over "
                        f"time -> Dense({d['CL']}, softmax)"),
    }  # fmt: skip


__all__ = ["ARCHS", "PARAM_TOLERANCE", "WORK", "describe", "matched_ffn", "model", "param_counts", "row_bytes",
           "row_flops"]
