"""The seed audit's GRU claims (sections 1.1, 2.1, 6.1): gate names and equations, the (+) update, tanh,
and parameter counts against the RNN and the LSTM. Each check returns Evidence computed from the
project's own code; verify/claims.py registers them."""

from __future__ import annotations

import math

import numpy as np

from impls.contract import formulas as F
from impls.contract.models import SEED_GRU_INPUT, SEED_GRU_UNITS
from impls.contract.reparam import flip_update_gate
from impls.contract.spec import GRUWeights
from impls.primitives import numpy_impl

# --------------------------------------------------------------------------- section 2.1: the GRU
from .claim_kit import (
    FAILS,
    GRU_B,
    GRU_H,
    GRU_I,
    GRU_T,
    HOLDS,
    NOT_MEASURED,
    READING,
    Evidence,
    Number,
    gru_data,
    impl_or_none,
    maxabs,
    run_gru,
    seed_layer_sizes,
)


def check_gru_gate_names() -> Evidence:
    """Frameworks hold 3 blocks per GRU weight (update z, reset r, candidate); an LSTM holds 4 (input,
    forget, cell candidate, output). The seed's "update gate" output is its tanh candidate, which
    takes negative values: no gate (a sigmoid, in (0, 1)) can."""
    I, H = SEED_GRU_INPUT[1], SEED_GRU_UNITS[0]
    nums: list[tuple[str, str, Number]] = []
    per_block = {"torch": I * H + H * H + 2 * H, "keras": I * H + H * H + 2 * H}  # reset_after: 2 biases
    per_lstm_block = {"torch": I * H + H * H + 2 * H, "keras": I * H + H * H + H}
    gru_blocks, lstm_blocks = set(), set()
    for impl, fw, label in (("torch_nn", "torch", "torch nn.GRU / nn.LSTM"), ("keras", "keras", "Keras GRU / LSTM")):
        mod = impl_or_none(impl)
        if mod is None:
            nums.append((f"blocks_{fw}", f"weight blocks, {label}", NOT_MEASURED))
            continue
        g = mod.gru_param_count(I, H, "reset_after") / per_block[fw]
        lstm = mod.lstm_param_count(I, H) / per_lstm_block[fw]
        gru_blocks.add(g)
        lstm_blocks.add(lstm)
        nums.append((f"blocks_{fw}", f"weight blocks (count / (IH + H^2 + biases)), {label}, I={I} H={H}",
                     f"GRU {g:g}, LSTM {lstm:g}"))  # fmt: skip
    if not gru_blocks:  # no framework here: the closed forms
        gru_blocks.add(F.gru_param_count(I, H, "torch") / per_block["torch"])
        lstm_blocks.add(F.lstm_param_count(I, H, "torch") / per_lstm_block["torch"])
    x, w, h0 = gru_data()
    tape = numpy_impl.gru_forward(x, w, "seed", h0)
    nums += [
        ("gru_blocks", "GRU weight blocks (all frameworks measured)", ", ".join(f"{b:g}" for b in sorted(gru_blocks))),
        ("lstm_blocks", "LSTM weight blocks", ", ".join(f"{b:g}" for b in sorted(lstm_blocks))),
        ("z_min", "min of z_t, the seed's 'input gate' (seeded data)", float(tape.z.min())),
        ("r_max", "max of r_t, the seed's 'forget gate'", float(tape.r.max())),
        ("htilde_min", "min of h~_t, the seed's 'update gate'", float(tape.h_tilde.min())),
        ("htilde_max", "max of h~_t", float(tape.h_tilde.max())),
    ]
    fails = gru_blocks == {3.0} and lstm_blocks == {4.0} and tape.h_tilde.min() < 0
    return Evidence(
        FAILS if fails else HOLDS,
        "The frameworks' GRU weights hold 3 blocks: update gate z, reset gate r and the candidate (torch names "
        "them reset, update, new); the input and forget gates are the LSTM's, whose weights hold 4 blocks. "
        "The seed's 'update gate' h~ is the tanh candidate: it goes negative, which no gate can.",
        tuple(nums),
    )


def check_gru_concatenated_gates() -> Evidence:
    """z = sigma(W_z [h, x] + b_z) is the frameworks' sigma(x W_iz + b_iz + h W_hz + b_hz) with W_z the
    two kernels stacked and b_z = b_iz + b_hz."""
    x, w, h0 = gru_data()
    H, x0 = GRU_H, x[:, 0, :]
    nums: list[tuple[str, str, Number]] = []
    worst = 0.0
    for gate, g in (("z", 0), ("r", 1)):
        cols = slice(g * H, (g + 1) * H)
        seed = numpy_impl.sigmoid(np.concatenate([h0, x0], axis=1) @ np.vstack([w.U[:, cols], w.W[:, cols]])
                                  + (w.b_x[cols] + w.b_h[cols]))  # fmt: skip
        frame = numpy_impl.sigmoid(x0 @ w.W[:, cols] + w.b_x[cols] + h0 @ w.U[:, cols] + w.b_h[cols])
        worst = max(worst, maxabs(seed, frame))
        nums.append((f"diff_{gate}", f"max |seed {gate}_t - framework {gate}_t|, W_{gate} = [U_{gate}; W_{gate}]", maxabs(seed, frame)))
    return Evidence(
        HOLDS if worst < 1e-14 else FAILS,
        "The concatenated form is the frameworks' split form: stack the recurrent and input kernels, add the "
        "two biases. Equal to rounding.",
        tuple(nums),
    )


def check_gru_candidate() -> Evidence:
    """The seed's candidate, tanh(W_h [r * h, x] + b_h), applies r before the recurrent product: Keras
    GRU(reset_after=False), ONNX linear_before_reset=0. The seed's own code (section 4.1) builds Keras' default
    GRU, reset_after=True, which applies r after it, as torch.nn.GRU does."""
    x, w, h0 = gru_data()
    rb, ra = numpy_impl.gru(x, w, "reset_before", h0)[0], numpy_impl.gru(x, w, "reset_after", h0)[0]
    nums: list[tuple[str, str, Number]] = [
        ("ra_vs_rb", "max |reset_after - reset_before| (NumPy, seeded data)", maxabs(ra, rb)),
    ]
    keras, torch_nn = impl_or_none("keras"), impl_or_none("torch_nn")
    nums.append(("keras_rb", "max |NumPy reset_before - Keras GRU(reset_after=False)|",
                 maxabs(run_gru(keras, x, w, "reset_before", h0), rb) if keras else NOT_MEASURED))  # fmt: skip
    nums.append(("keras_default", "max |NumPy reset_before - Keras GRU() default (section 4.1)|",
                 maxabs(run_gru(keras, x, w, "reset_after", h0), rb) if keras else NOT_MEASURED))  # fmt: skip
    nums.append(("torch", "max |NumPy reset_before - torch nn.GRU|",
                 maxabs(run_gru(torch_nn, x, w, "reset_after", h0), rb) if torch_nn else NOT_MEASURED))  # fmt: skip
    ok = maxabs(ra, rb) > 1e-3 and (keras is None or nums[1][2] < 1e-12)
    return Evidence(
        READING if ok else FAILS,
        "The candidate as written is Keras GRU(reset_after=False)'s; the seed's own Keras code builds GRU() whose "
        "default reset_after=True computes a different candidate, r * (h U_h + b_hh), as torch.nn.GRU does.",
        tuple(nums),
        reading="the candidate equation describes Keras GRU(reset_after=False) / ONNX linear_before_reset=0, not "
        "the default GRU() of the seed's section 4.1 nor torch.nn.GRU",
    )


def _memory_run(variant: str, w: GRUWeights, h0: np.ndarray, T: int) -> np.ndarray:
    x = np.zeros((1, T, w.input_size))
    return numpy_impl.gru(x, w, variant, h0)[1]


def _gate_bias_weights(I: int, H: int, bz: float, br: float, c: float) -> GRUWeights:
    """No input path; z and r pinned by their biases; candidate tanh(c * r * h)."""
    W, U = np.zeros((I, 3 * H)), np.zeros((H, 3 * H))
    U[:, 2 * H :] = c * np.eye(H)
    b = np.concatenate([np.full(H, bz), np.full(H, br), np.zeros(H)])
    return GRUWeights(W, U, b, np.zeros(3 * H))


def check_gru_update_oplus() -> Evidence:
    """h_t = (1 - z) * h_{t-1} (+) r * h~ with a (+) b = (a + b) / 2, against the frameworks'
    h_t = z * h_{t-1} + (1 - z) * h~."""
    x, w, h0 = gru_data()
    y = {v: numpy_impl.gru(x, w, v, h0)[0] for v in ("seed", "reset_before", "reset_after")}
    nums: list[tuple[str, str, Number]] = [
        ("seed_vs_rb", f"max |seed - reset_before|, NumPy, B{GRU_B} T{GRU_T} I{GRU_I} H{GRU_H}", maxabs(y["seed"], y["reset_before"])),
        ("seed_vs_ra", "max |seed - reset_after|, NumPy", maxabs(y["seed"], y["reset_after"])),
    ]
    for impl, variant, label in (("keras", "reset_before", "Keras GRU(reset_after=False)"),
                                 ("keras", "reset_after", "Keras GRU() default"),
                                 ("torch_nn", "reset_after", "torch nn.GRU")):  # fmt: skip
        mod = impl_or_none(impl)
        key = f"{impl}_{variant}"
        if mod is None:
            nums.append((key, f"max |seed - {label}|", NOT_MEASURED))
            continue
        out = run_gru(mod, x, w, variant, h0)
        nums.append((key, f"max |seed - {label}|", maxabs(y["seed"], out)))
        nums.append((key + "_ref", f"max |NumPy {variant} - {label}| (the frameworks agree with the reference)",
                     maxabs(y[variant], out)))  # fmt: skip
    seed_tape = numpy_impl.gru_forward(x, w, "seed", h0)
    frame_tape = numpy_impl.gru_forward(x, w, "reset_before", h0)
    coef_sum = (1.0 - seed_tape.z + seed_tape.r) / 2.0
    nums += [
        ("seed_keep_max", "seed: largest weight on h_{t-1}, (1 - z)/2 (bound: < 1/2)", float(((1.0 - seed_tape.z) / 2.0).max())),
        ("frame_keep_max", "frameworks: largest weight on h_{t-1}, z (bound: < 1)", float(frame_tape.z.max())),
        ("seed_sum_min", "seed: weights on h_{t-1} and h~ sum to at least", float(coef_sum.min())),
        ("seed_sum_max", "seed: ... and at most (frameworks: exactly 1)", float(coef_sum.max())),
    ]
    # Memory: zero input for T steps. A framework GRU with z pinned to 1 keeps any h0; the seed's update
    # gives h_{t-1} at most half, so it must rebuild the state through tanh(c * r * h): try c on a grid.
    T, H, I = 50, GRU_H, GRU_I
    h_start = np.linspace(-0.9, 0.9, H)[None, :]
    frame_err = maxabs(_memory_run("reset_before", _gate_bias_weights(I, H, 20.0, 0.0, 0.0), h_start, T), h_start)
    grid = np.linspace(0.0, 3.0, 61)
    seed_errs = [maxabs(_memory_run("seed", _gate_bias_weights(I, H, -20.0, 20.0, c), h_start, T), h_start) for c in grid]
    best = int(np.argmin(seed_errs))
    halving = maxabs(_memory_run("seed", _gate_bias_weights(I, H, -20.0, 20.0, 0.0), h_start, 10), 0.0)
    nums += [
        ("frame_memory_err", f"hold h0 = linspace(-0.9, 0.9) for {T} zero-input steps: framework max |h_T - h0| (z bias +20)", frame_err),
        ("seed_memory_err", "seed, best over candidate gain c in [0, 3] (z bias -20, r bias +20, U_h = c I): max |h_T - h0|", seed_errs[best]),
        ("seed_memory_c", "seed: the best gain c", float(grid[best])),
        ("seed_halving", "seed with c = 0: max |h_10| (the update halves the state: 0.9 / 2^10 = 8.79e-04)", halving),
        ("chung_flip", "chung with z's weights negated vs reset_before (a re-parameterisation that works)",
         maxabs(numpy_impl.gru(x, flip_update_gate(w), "chung", h0)[0], y["reset_before"])),
        ("seed_flip", "the same negation applied to seed vs reset_before",
         maxabs(numpy_impl.gru(x, flip_update_gate(w), "seed", h0)[0], y["reset_before"])),
    ]  # fmt: skip
    fails = min(nums[0][2], nums[1][2]) > 1e-2 and seed_errs[best] > 1e3 * max(frame_err, 1e-12)
    return Evidence(
        FAILS if fails else HOLDS,
        "The (+) update is a different recurrence: its weights on h_{t-1} and h~ do not sum to 1 and the old "
        "state gets at most half, so the state halves every step unless the candidate rebuilds it. No weight "
        "re-parameterisation maps it onto a framework's: frameworks hold any state with z -> 1, the seed's "
        "best attempt in the family tried stays far off, and the sign flip that maps chung onto reset_before "
        "does nothing for it.",
        tuple(nums),
    )


def check_tanh_is_sinh() -> Evidence:
    xs = np.linspace(-3.0, 3.0, 601)
    return Evidence(
        FAILS if maxabs(np.tanh(xs), np.sinh(xs)) > 1.0 else HOLDS,
        "tanh is the hyperbolic tangent, sinh / cosh, bounded in (-1, 1); the hyperbolic sine is unbounded. "
        "They agree only near 0 (tanh x = x - x^3/3 + ..., sinh x = x + x^3/6 + ...). Every framework's GRU "
        "uses tanh for the candidate.",
        (
            ("tanh_1", "tanh(1)", math.tanh(1.0)),
            ("sinh_1", "sinh(1)", math.sinh(1.0)),
            ("max_diff", "max |tanh x - sinh x| on [-3, 3]", maxabs(np.tanh(xs), np.sinh(xs))),
            ("tanh_max", "max |tanh x| on [-3, 3]", float(np.abs(np.tanh(xs)).max())),
            ("identity", "max |tanh x - sinh x / cosh x| on [-3, 3]", maxabs(np.tanh(xs), np.sinh(xs) / np.cosh(xs))),
            ("near_zero", "|tanh 0.1 - sinh 0.1|", abs(math.tanh(0.1) - math.sinh(0.1))),
        ),
    )


# --------------------------------------------------------------------------- sections 1.1, 6.1: GRU vs LSTM vs RNN




def check_gru_fewer_than_rnn() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    torch_nn = impl_or_none("torch_nn")
    for n, (I, H) in enumerate(seed_layer_sizes(), start=1):
        gru = torch_nn.gru_param_count(I, H, "reset_after") if torch_nn else F.gru_param_count(I, H, "torch")
        lstm = torch_nn.lstm_param_count(I, H) if torch_nn else F.lstm_param_count(I, H, "torch")
        rnn = F.rnn_param_count(I, H, "torch")
        nums += [
            (f"rnn_{n}", f"seed layer {n} (I={I}, H={H}): vanilla RNN, IH + H^2 + 2H", rnn),
            (f"gru_{n}", f"GRU ({'torch nn.GRU' if torch_nn else 'closed form'})", gru),
            (f"lstm_{n}", f"LSTM ({'torch nn.LSTM' if torch_nn else 'closed form'})", lstm),
            (f"gru_over_rnn_{n}", "GRU / RNN", gru / rnn),
        ]
    ok = all(nums[i + 1][2] > nums[i][2] and nums[i + 1][2] < nums[i + 2][2] for i in (0, 4))
    return Evidence(
        READING if ok else FAILS,
        "Against a traditional (vanilla) RNN of the same size a GRU has exactly 3 times the parameters (3 blocks "
        "to its 1) and 3 times the products; it has fewer only against an LSTM.",
        tuple(nums),
        reading="'traditional RNN' read as the LSTM; against a vanilla RNN the claim fails (3x the parameters)",
    )


def _described_gru_and_lstm(B: int, T: int, I: int, H: int) -> list[tuple[str, str, Number]]:
    """The same layer as model descriptions (impls/model/layers: what every voice and port builds): canonical
    parameters (two biases each) and Model.flops, one direction and bidirectional."""
    from impls.model.seeded import chain

    out: list[tuple[str, str, Number]] = []
    for direction in ("forward", "bidirectional"):
        m = {k: chain(k, (T, I), [(k, k, {"units": H, "direction": direction})], batch=B) for k in ("gru", "lstm")}
        out += [(f"described_{direction}_params", f"described {direction} layer (I={I}, H={H}), canonical two biases: GRU vs LSTM",
                 f"{m['gru'].param_count():,} vs {m['lstm'].param_count():,}"),
                (f"described_{direction}_flops_ratio", f"described {direction} layer, Model.flops(B={B}) GRU / LSTM",
                 m["gru"].flops(B) / m["lstm"].flops(B))]  # fmt: skip
    return out


def check_gru_fewer_than_lstm() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    ok = True
    for impl, gconv, lconv in (("torch_nn", "torch", "torch"), ("keras", "keras_reset_after", "keras")):
        mod = impl_or_none(impl)
        for n, (I, H) in enumerate(seed_layer_sizes(), start=1):
            gru = mod.gru_param_count(I, H, "reset_after") if mod else F.gru_param_count(I, H, gconv)
            lstm = mod.lstm_param_count(I, H) if mod else F.lstm_param_count(I, H, lconv)
            src = {"torch_nn": "torch", "keras": "Keras defaults"}[impl] + ("" if mod else ", closed form")
            nums.append((f"{impl}_{n}", f"seed layer {n} (I={I}, H={H}), {src}: GRU vs LSTM", f"{gru:,} vs {lstm:,}"))
            nums.append((f"{impl}_{n}_saved", "LSTM - GRU", lstm - gru))
            ok &= gru < lstm
    B, T = 32, SEED_GRU_INPUT[0]
    I, H = seed_layer_sizes()[0]
    nums += [
        ("matched_ratio", "GRU / LSTM with matched bias conventions (torch, or Keras reset_after=False): 3(IH+H^2+bH) / 4(IH+H^2+bH)",
         F.gru_param_count(I, H, "keras_reset_before") / F.lstm_param_count(I, H, "keras")),
        ("tiny_keras", "Keras defaults at I = H = 1: GRU vs LSTM (H(I + H - 2) = 0)",
         f"{F.gru_param_count(1, 1, 'keras_reset_after')} vs {F.lstm_param_count(1, 1, 'keras')}"),
        ("flops_ratio", f"forward products, GRU / LSTM (B={B}, T={T}, layer 1): 3H / 4H",
         F.gru_matmul_flops(B, T, I, H) / F.lstm_matmul_flops(B, T, I, H)),
    ]  # fmt: skip
    nums += _described_gru_and_lstm(B, T, I, H)
    return Evidence(
        HOLDS if ok else FAILS,
        "A GRU has 3 weight blocks to the LSTM's 4: exactly 1/4 fewer parameters and products when both count "
        "biases alike (LSTM - GRU = IH + H^2 + bH); with Keras' defaults (GRU reset_after=True keeps 6H biases, "
        "LSTM 4H) the saving is H(I + H - 2), which vanishes only at I = H = 1.",
        tuple(nums),
    )
