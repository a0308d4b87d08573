"""FLOP and byte counts of every benchmark row. FLOPs come from impls/contract/formulas.py (the project's one set
of closed forms); bytes moved are counted here. No framework here.

Conventions (the row's `flop_convention` names the one used):
    gemm       2*m*n*k for every matrix product of the pass (a convolution is the matrix product of its
               im2col form); elementwise work (gates, activations, bias adds, softmax) is not counted.
               fwd+bwd = 3 x fwd (formulas.fwd_bwd_flops: the backward pass has two products per forward
               product, dX and dW); one training step = fwd+bwd (the optimiser's update is elementwise).
    deepbench  DeepBench's GRU count, the recurrent GEMMs only: 6*T*B*H^2 forward (x3 for fwd+bwd).
    model      the operation's own count where it has no matrix product: max_pool2d counts one comparison
               per window element beyond the first (B*OH*OW*C*(ph*pw - 1)); its backward only routes
               gradients, so fwd+bwd counts the same comparisons again (x2).

Bytes are a lower bound on memory traffic: every input, weight and output read or written once
(fwd+bwd adds the cotangent dy and one gradient per input and weight). Real traffic is higher.
"""

from __future__ import annotations

from collections.abc import Mapping

from impls.contract import formulas

PASSES = ("fwd", "fwd+bwd", "train_step")


def _check_pass(pass_: str) -> str:
    if pass_ not in PASSES:
        raise ValueError(f"unknown pass {pass_!r}; valid: {', '.join(PASSES)}")
    return pass_


def seed_cnn_conv_shapes(Hin: int, Win: int, Cin: int, F1: int, F2: int) -> list[tuple[int, int, int, int, int]]:
    """(OH, OW, C_in, C_out, pooled side) of the seed CNN's two valid 3x3 convolutions, each followed by
    a 2x2 pool: 28 -> 26 -> 13 -> 11 -> 5."""
    out, h, w, c = [], Hin, Win, Cin
    for f in (F1, F2):
        oh, ow = h - 2, w - 2
        out.append((oh, ow, c, f, oh // 2))
        h, w, c = oh // 2, ow // 2, f
    return out


def gru_params(I: int, H: int) -> int:
    return formulas.gru_param_count(I, H, "canonical")


def _fwd_flops(work: str, s: Mapping[str, int]) -> int:
    if work == "gru":
        return formulas.gru_matmul_flops(s["B"], s["T"], s["I"], s["H"])
    if work in ("lstm", "bilstm"):
        return (2 if work == "bilstm" else 1) * formulas.lstm_matmul_flops(s["B"], s["T"], s["I"], s["H"])
    if work == "bigru":
        return 2 * formulas.gru_matmul_flops(s["B"], s["T"], s["I"], s["H"])
    if work == "conv2d":
        return formulas.conv2d_flops(s["B"], s["OH"], s["OW"], s["KH"], s["KW"], s["C"], s["O"])
    if work == "dense":
        return formulas.dense_flops(s["B"], s["IN"], s["OUT"])
    if work == "seed_gru_model":
        return formulas.seed_gru_model_flops(s["B"], (s["T"], s["I"]), (s["H1"], s["H2"]), s["CL"])
    if work == "seed_cnn_model":
        return formulas.seed_cnn_model_flops(s["B"], image=(s["H"], s["W"], s["C"]), filters=(s["F1"], s["F2"]),
                                             dense_units=s["D"], classes=s["CL"])  # fmt: skip
    raise ValueError(f"no gemm FLOP count for work {work!r}")


def row_flops(work: str, sizes: Mapping[str, int], pass_: str, convention: str = "gemm") -> int:
    """FLOPs of one call of the row's pass under `convention`."""
    s, backward = sizes, _check_pass(pass_) != "fwd"
    if work == "matmul":
        return formulas.MULTIPLY_ADD_FLOPS * s["M"] * s["N"] * s["K"]
    if work in ("copy", "empty"):
        return 0
    if work == "max_pool2d":  # the "model" convention
        n = formulas.max_pool2d_comparisons(s["B"], s["OH"], s["OW"], s["C"], s["P"], s["P"])
        return 2 * n if backward else n
    if convention == "deepbench":
        if work != "gru":
            raise ValueError(f"the deepbench convention counts GRUs only, not {work!r}")
        fwd = formulas.deepbench_gru_flops(s["T"], s["B"], s["H"])
    elif convention == "gemm":
        fwd = _fwd_flops(work, s)
    else:
        raise ValueError(f"unknown FLOP convention {convention!r}; valid: gemm, deepbench")
    return formulas.fwd_bwd_flops(fwd) if backward else fwd


def _elements(work: str, s: Mapping[str, int]) -> tuple[int, int, int]:
    """(input elements, weight elements, output elements) of one forward call."""
    if work == "gru":
        return s["B"] * s["T"] * s["I"], gru_params(s["I"], s["H"]), s["B"] * s["T"] * s["H"] + s["B"] * s["H"]
    if work in ("lstm", "bilstm", "bigru"):
        d = 2 if work.startswith("bi") else 1
        G = 3 if work == "bigru" else 4
        w = d * (G * s["H"] * (s["I"] + s["H"]) + 2 * G * s["H"])
        return s["B"] * s["T"] * s["I"], w, s["B"] * d * s["H"]
    if work == "conv2d":
        return (s["B"] * s["HI"] * s["WI"] * s["C"], s["KH"] * s["KW"] * s["C"] * s["O"] + s["O"],
                s["B"] * s["OH"] * s["OW"] * s["O"])  # fmt: skip
    if work == "dense":
        return s["B"] * s["IN"], s["IN"] * s["OUT"] + s["OUT"], s["B"] * s["OUT"]
    if work == "max_pool2d":
        return s["B"] * s["HI"] * s["WI"] * s["C"], 0, s["B"] * s["OH"] * s["OW"] * s["C"]
    if work == "seed_gru_model":
        w = gru_params(s["I"], s["H1"]) + gru_params(s["H1"], s["H2"]) + s["H2"] * s["CL"] + s["CL"]
        return s["B"] * s["T"] * s["I"], w, s["B"] * s["CL"]
    if work == "seed_cnn_model":
        convs = seed_cnn_conv_shapes(s["H"], s["W"], s["C"], s["F1"], s["F2"])
        w = sum(9 * ci * co + co for _, _, ci, co, _ in convs)
        n_flat = convs[-1][4] ** 2 * s["F2"]
        w += n_flat * s["D"] + s["D"] + s["D"] * s["CL"] + s["CL"]
        return s["B"] * s["H"] * s["W"] * s["C"], w, s["B"] * s["CL"]
    if work == "matmul":
        return s["M"] * s["K"] + s["K"] * s["N"], 0, s["M"] * s["N"]
    if work == "copy":
        return s["N"], 0, s["N"]
    if work == "empty":
        return 0, 0, 0
    raise ValueError(f"no byte count for work {work!r}")


def row_bytes(work: str, sizes: Mapping[str, int], pass_: str, itemsize: int) -> int:
    """Lower bound on bytes moved by one call: inputs + weights + outputs, and for a backward pass also
    dy and one gradient per input and weight. A training step adds the optimiser's read and write of
    the weights and Adam's two moments (4 more weight-sized reads and writes)."""
    n_in, n_w, n_out = _elements(work, sizes)
    n = n_in + n_w + n_out
    if pass_ != "fwd":  # dy, then the gradients; a model's loss takes no gradient for its input
        n += n_out + n_w + (0 if work.startswith("seed_") else n_in)
    if pass_ == "train_step":
        n += 6 * n_w  # read w, m, v; write w, m, v
    return int(n * itemsize)
