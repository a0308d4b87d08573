"""The seed audit's registry: every claim in the seed article that a computation can settle.

Each Claim holds the original sentence (Chinese), an English rendering, the verdict it must reach and a
check that computes the evidence from the project's own code: the NumPy reference (always), the
formulas of impls/formulas.py, and the frameworks' built-in layers (torch.nn, Keras) where they load.
verify/test_claims.py runs every check and asserts its verdict and key numbers; reports/audit.py turns
the same evidence into reports/SEED-AUDIT.md. Claims no computation can settle are listed in
NOT_COMPUTABLE, with the reason.

Verdicts: "holds", "fails", or "holds only under a stated reading" (the reading is in the evidence).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

from impls import BackendUnavailable, backend, numpy_impl
from impls import formulas as F
from impls.models import SEED_CNN_INPUT, SEED_GRU_INPUT, SEED_GRU_UNITS, init_seed_cnn
from impls.reparam import flip_update_gate
from impls.spec import GRUWeights, init_conv, init_gru, random_array

HOLDS, FAILS, READING = "holds", "fails", "holds only under a stated reading"
VERDICTS = (HOLDS, FAILS, READING)

Number = int | float | str


@dataclass(frozen=True)
class Evidence:
    verdict: str
    summary: str  # one or two English sentences: what the numbers show
    numbers: tuple[tuple[str, str, Number], ...]  # (key, label, value), in reading order
    reading: str | None = None  # the reading under which the claim holds, for READING verdicts

    def __getitem__(self, key: str) -> Number:
        for k, _, v in self.numbers:
            if k == key:
                return v
        raise KeyError(f"no evidence number {key!r}; have {', '.join(k for k, _, _ in self.numbers)}")

    def has(self, key: str) -> bool:
        return any(k == key for k, _, _ in self.numbers)


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    chinese: str
    english: str
    verdict: str  # the verdict the check must reach (test_claims asserts it)
    check: Callable[[], Evidence]

    @property
    def test(self) -> str:
        return f"verify/test_claims.py::test_claim[{self.id}]"


# --------------------------------------------------------------------------- helpers

NOT_MEASURED = "not measured"


def _impl(name: str):
    """A built-in implementation, or None where its framework does not load here."""
    try:
        return backend(name)
    except BackendUnavailable:
        return None


def _maxabs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def _run_gru(mod, x, w: GRUWeights, variant: str, h0=None) -> np.ndarray:
    native = lambda a: mod.asarray(a, "float64")
    y, _ = mod.gru(native(x), w.map(native), variant, h0=None if h0 is None else native(h0))
    return mod.to_numpy(y)


def _shape(a) -> str:
    return "(" + ", ".join(str(int(d)) for d in np.shape(a)) + ")"


# The seeded GRU data every GRU claim uses: I != H, non-zero h0, T long enough for the update to matter.
GRU_B, GRU_T, GRU_I, GRU_H = 3, 20, 5, 4


def _gru_data():
    x = random_array((GRU_B, GRU_T, GRU_I), 901)
    w = init_gru(GRU_I, GRU_H, seed=902)
    h0 = random_array((GRU_B, GRU_H), 903, low=-0.5, high=0.5)
    return x, w, h0


# --------------------------------------------------------------------------- section 2.1: the GRU


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
        mod = _impl(impl)
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
    x, w, h0 = _gru_data()
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
    x, w, h0 = _gru_data()
    H, x0 = GRU_H, x[:, 0, :]
    nums: list[tuple[str, str, Number]] = []
    worst = 0.0
    for gate, g in (("z", 0), ("r", 1)):
        cols = slice(g * H, (g + 1) * H)
        seed = numpy_impl.sigmoid(np.concatenate([h0, x0], axis=1) @ np.vstack([w.U[:, cols], w.W[:, cols]])
                                  + (w.b_x[cols] + w.b_h[cols]))  # fmt: skip
        frame = numpy_impl.sigmoid(x0 @ w.W[:, cols] + w.b_x[cols] + h0 @ w.U[:, cols] + w.b_h[cols])
        worst = max(worst, _maxabs(seed, frame))
        nums.append((f"diff_{gate}", f"max |seed {gate}_t - framework {gate}_t|, W_{gate} = [U_{gate}; W_{gate}]", _maxabs(seed, frame)))
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
    x, w, h0 = _gru_data()
    rb, ra = numpy_impl.gru(x, w, "reset_before", h0)[0], numpy_impl.gru(x, w, "reset_after", h0)[0]
    nums: list[tuple[str, str, Number]] = [
        ("ra_vs_rb", "max |reset_after - reset_before| (NumPy, seeded data)", _maxabs(ra, rb)),
    ]
    keras, torch_nn = _impl("keras"), _impl("torch_nn")
    nums.append(("keras_rb", "max |NumPy reset_before - Keras GRU(reset_after=False)|",
                 _maxabs(_run_gru(keras, x, w, "reset_before", h0), rb) if keras else NOT_MEASURED))  # fmt: skip
    nums.append(("keras_default", "max |NumPy reset_before - Keras GRU() default (section 4.1)|",
                 _maxabs(_run_gru(keras, x, w, "reset_after", h0), rb) if keras else NOT_MEASURED))  # fmt: skip
    nums.append(("torch", "max |NumPy reset_before - torch nn.GRU|",
                 _maxabs(_run_gru(torch_nn, x, w, "reset_after", h0), rb) if torch_nn else NOT_MEASURED))  # fmt: skip
    ok = _maxabs(ra, rb) > 1e-3 and (keras is None or nums[1][2] < 1e-12)
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
    x, w, h0 = _gru_data()
    y = {v: numpy_impl.gru(x, w, v, h0)[0] for v in ("seed", "reset_before", "reset_after")}
    nums: list[tuple[str, str, Number]] = [
        ("seed_vs_rb", f"max |seed - reset_before|, NumPy, B{GRU_B} T{GRU_T} I{GRU_I} H{GRU_H}", _maxabs(y["seed"], y["reset_before"])),
        ("seed_vs_ra", "max |seed - reset_after|, NumPy", _maxabs(y["seed"], y["reset_after"])),
    ]
    for impl, variant, label in (("keras", "reset_before", "Keras GRU(reset_after=False)"),
                                 ("keras", "reset_after", "Keras GRU() default"),
                                 ("torch_nn", "reset_after", "torch nn.GRU")):  # fmt: skip
        mod = _impl(impl)
        key = f"{impl}_{variant}"
        if mod is None:
            nums.append((key, f"max |seed - {label}|", NOT_MEASURED))
            continue
        out = _run_gru(mod, x, w, variant, h0)
        nums.append((key, f"max |seed - {label}|", _maxabs(y["seed"], out)))
        nums.append((key + "_ref", f"max |NumPy {variant} - {label}| (the frameworks agree with the reference)",
                     _maxabs(y[variant], out)))  # fmt: skip
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
    frame_err = _maxabs(_memory_run("reset_before", _gate_bias_weights(I, H, 20.0, 0.0, 0.0), h_start, T), h_start)
    grid = np.linspace(0.0, 3.0, 61)
    seed_errs = [_maxabs(_memory_run("seed", _gate_bias_weights(I, H, -20.0, 20.0, c), h_start, T), h_start) for c in grid]
    best = int(np.argmin(seed_errs))
    halving = _maxabs(_memory_run("seed", _gate_bias_weights(I, H, -20.0, 20.0, 0.0), h_start, 10), 0.0)
    nums += [
        ("frame_memory_err", f"hold h0 = linspace(-0.9, 0.9) for {T} zero-input steps: framework max |h_T - h0| (z bias +20)", frame_err),
        ("seed_memory_err", "seed, best over candidate gain c in [0, 3] (z bias -20, r bias +20, U_h = c I): max |h_T - h0|", seed_errs[best]),
        ("seed_memory_c", "seed: the best gain c", float(grid[best])),
        ("seed_halving", "seed with c = 0: max |h_10| (the update halves the state: 0.9 / 2^10 = 8.79e-04)", halving),
        ("chung_flip", "chung with z's weights negated vs reset_before (a re-parameterisation that works)",
         _maxabs(numpy_impl.gru(x, flip_update_gate(w), "chung", h0)[0], y["reset_before"])),
        ("seed_flip", "the same negation applied to seed vs reset_before",
         _maxabs(numpy_impl.gru(x, flip_update_gate(w), "seed", h0)[0], y["reset_before"])),
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
        FAILS if _maxabs(np.tanh(xs), np.sinh(xs)) > 1.0 else HOLDS,
        "tanh is the hyperbolic tangent, sinh / cosh, bounded in (-1, 1); the hyperbolic sine is unbounded. "
        "They agree only near 0 (tanh x = x - x^3/3 + ..., sinh x = x + x^3/6 + ...). Every framework's GRU "
        "uses tanh for the candidate.",
        (
            ("tanh_1", "tanh(1)", math.tanh(1.0)),
            ("sinh_1", "sinh(1)", math.sinh(1.0)),
            ("max_diff", "max |tanh x - sinh x| on [-3, 3]", _maxabs(np.tanh(xs), np.sinh(xs))),
            ("tanh_max", "max |tanh x| on [-3, 3]", float(np.abs(np.tanh(xs)).max())),
            ("identity", "max |tanh x - sinh x / cosh x| on [-3, 3]", _maxabs(np.tanh(xs), np.sinh(xs) / np.cosh(xs))),
            ("near_zero", "|tanh 0.1 - sinh 0.1|", abs(math.tanh(0.1) - math.sinh(0.1))),
        ),
    )


# --------------------------------------------------------------------------- sections 1.1, 6.1: GRU vs LSTM vs RNN


def _seed_layer_sizes() -> list[tuple[int, int]]:
    I, (h1, h2) = SEED_GRU_INPUT[1], SEED_GRU_UNITS
    return [(I, h1), (h1, h2)]


def check_gru_fewer_than_rnn() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    torch_nn = _impl("torch_nn")
    for n, (I, H) in enumerate(_seed_layer_sizes(), start=1):
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


def check_gru_fewer_than_lstm() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    ok = True
    for impl, gconv, lconv in (("torch_nn", "torch", "torch"), ("keras", "keras_reset_after", "keras")):
        mod = _impl(impl)
        for n, (I, H) in enumerate(_seed_layer_sizes(), start=1):
            gru = mod.gru_param_count(I, H, "reset_after") if mod else F.gru_param_count(I, H, gconv)
            lstm = mod.lstm_param_count(I, H) if mod else F.lstm_param_count(I, H, lconv)
            src = {"torch_nn": "torch", "keras": "Keras defaults"}[impl] + ("" if mod else ", closed form")
            nums.append((f"{impl}_{n}", f"seed layer {n} (I={I}, H={H}), {src}: GRU vs LSTM", f"{gru:,} vs {lstm:,}"))
            nums.append((f"{impl}_{n}_saved", "LSTM - GRU", lstm - gru))
            ok &= gru < lstm
    B, T = 32, SEED_GRU_INPUT[0]
    I, H = _seed_layer_sizes()[0]
    nums += [
        ("matched_ratio", "GRU / LSTM with matched bias conventions (torch, or Keras reset_after=False): 3(IH+H^2+bH) / 4(IH+H^2+bH)",
         F.gru_param_count(I, H, "keras_reset_before") / F.lstm_param_count(I, H, "keras")),
        ("tiny_keras", "Keras defaults at I = H = 1: GRU vs LSTM (H(I + H - 2) = 0)",
         f"{F.gru_param_count(1, 1, 'keras_reset_after')} vs {F.lstm_param_count(1, 1, 'keras')}"),
        ("flops_ratio", f"forward products, GRU / LSTM (B={B}, T={T}, layer 1): 3H / 4H",
         F.gru_matmul_flops(B, T, I, H) / (F.MULTIPLY_ADD_FLOPS * B * T * 4 * H * (I + H))),
    ]  # fmt: skip
    return Evidence(
        HOLDS if ok else FAILS,
        "A GRU has 3 weight blocks to the LSTM's 4: exactly 1/4 fewer parameters and products when both count "
        "biases alike (LSTM - GRU = IH + H^2 + bH); with Keras' defaults (GRU reset_after=True keeps 6H biases, "
        "LSTM 4H) the saving is H(I + H - 2), which vanishes only at I = H = 1.",
        tuple(nums),
    )


# --------------------------------------------------------------------------- section 2.2 vs 4.2: the CNN


def check_cnn_conv_equation() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    # The seed's own first layer on its own input: Conv2D(32, (3, 3)) on (1, 28, 28, 1)
    img = random_array((1, *SEED_CNN_INPUT), 911, low=0.0, high=1.0)
    conv1 = init_seed_cnn(912).conv1
    y2d = numpy_impl.conv2d(img, conv1.kernel, conv1.bias)
    # The 2.2 equation is 1-D and per channel: the best it can do on the image is row by row, channel by channel
    w_mid, b0 = conv1.kernel[1, :, :, 0], conv1.bias[:1]  # (3, 1): the middle row of the first kernel
    y1d = numpy_impl.seed_conv1d(img[0], w_mid, b0)  # rows as the batch: (28, 26, 1)
    nums += [
        ("conv2d_shape", "Conv2D(32, (3, 3)) on the seed's (1, 28, 28, 1) input: output", _shape(y2d)),
        ("seed_shape", "section 2.2 equation, K = 3, along each row of the same image: output", _shape(y1d)),
        ("conv2d_params", "parameters: Conv2D(32, (3, 3)) on 1 channel", F.conv2d_param_count(3, 3, 1, 32)),
        ("seed_params", "parameters: the equation, K taps + 1 bias per channel (K = 3, 1 channel)", 3 * 1 + 1),
    ]
    # Same input, same taps: as a depthwise 1 x K Conv2D the equation is exact; a real Conv2D also sums over channels.
    B, L, C, K = 2, 12, 3, 3
    x = random_array((B, L, C), 913)
    w, b = random_array((K, C), 914), random_array((C,), 915)
    full = init_conv(1, K, C, C, seed=916).kernel
    depthwise = np.zeros((1, K, C, C))
    for c in range(C):
        depthwise[0, :, c, c] = w[:, c]
        full[0, :, c, c] = w[:, c]
    seed = numpy_impl.seed_conv1d(x, w, b)
    nums += [
        ("depthwise", f"max |equation - Conv2D with a diagonal (depthwise) 1x{K} kernel| on (B={B}, L={L}, C={C}), NumPy",
         _maxabs(numpy_impl.conv2d(x[:, None], depthwise, b)[:, 0], seed)),
        ("full", "max |equation - Conv2D with the same diagonal plus cross-channel taps|, NumPy",
         _maxabs(numpy_impl.conv2d(x[:, None], full, b)[:, 0], seed)),
    ]  # fmt: skip
    keras = _impl("keras")
    nums.append(("keras_full", "max |equation - Keras Conv2D, cross-channel kernel|",
                 _maxabs(keras.to_numpy(keras.conv2d(keras.asarray(x[:, None], "float64"), keras.asarray(full, "float64"),
                                                     keras.asarray(b, "float64")))[:, 0], seed) if keras else NOT_MEASURED))  # fmt: skip
    fails = nums[-2][2] > 1e-2 and nums[-3][2] < 1e-12 and y2d.shape[-1] != y1d.shape[-1]
    return Evidence(
        FAILS if fails else HOLDS,
        "The equation is a 1-D, per-channel filter: one spatial axis, no sum over input channels, as many "
        "outputs as inputs. The seed's Conv2D slides a 3x3 window over 2 axes and sums over all input channels "
        "into 32 outputs. The equation is exactly the depthwise 1xK special case; with cross-channel taps they differ.",
        tuple(nums),
    )


def check_cnn_pool_equation() -> Evidence:
    y = random_array((1, 26, 26, 32), 921)  # conv1's output shape in the seed CNN
    row = y[:, 0]  # (1, 26, 32): one row, as the 1-D equation sees it
    seed = numpy_impl.seed_pool1d(row)
    pool2d = numpy_impl.max_pool2d(y, 2)  # MaxPooling2D((2, 2)): strides default to the pool size
    special = numpy_impl.max_pool2d(row[:, None], (1, 2), 1)[:, 0]
    nums: list[tuple[str, str, Number]] = [
        ("seed_shape", "x_ij = max(y_ij, y_i,j+1) on a 26-long row of 32 channels: output", _shape(seed)),
        ("pool2d_shape", "MaxPooling2D((2, 2)) on conv1's (1, 26, 26, 32): output", _shape(pool2d)),
        ("seed_kept", "values kept: equation (window 2, stride 1, overlapping)", f"{seed.size / row.size:.4f}"),
        ("pool2d_kept", "values kept: MaxPooling2D (2x2 window, stride 2)", f"{pool2d.size / y.size:.4f}"),
        ("special", "max |equation - max_pool2d(pool (1, 2), stride 1)|, NumPy", _maxabs(seed, special)),
        ("first_row", "max |equation's first 13 outputs, every other one - MaxPooling2D's first row|",
         _maxabs(seed[:, ::2], pool2d[:, 0])),
    ]  # fmt: skip
    keras = _impl("keras")
    nums.append(("keras_shape", "Keras MaxPooling2D((2, 2)) output",
                 _shape(keras.to_numpy(keras.max_pool2d(keras.asarray(y, "float64"), 2))) if keras else NOT_MEASURED))  # fmt: skip
    fails = seed.shape != pool2d.shape[:1] + pool2d.shape[2:] and nums[4][2] == 0.0 and nums[5][2] > 1e-2
    return Evidence(
        FAILS if fails else HOLDS,
        "The equation is a 1-D max over 2 neighbours with stride 1 (overlapping: 25 of 26 values survive); "
        "MaxPooling2D((2, 2)) takes 2x2 windows with stride 2 (a quarter survive) and also maxes across rows, "
        "so even its sub-sampled outputs differ. The equation equals max_pool2d with a (1, 2) window and stride 1.",
        tuple(nums),
    )


def check_pooling_reduces_params() -> Evidence:
    nums: list[tuple[str, str, Number]] = []
    with_pools, without = F.seed_cnn_model_table(True), F.seed_cnn_model_table(False)
    for impl, label in (("keras", "Keras"), ("torch_nn", "torch")):
        mod = _impl(impl)
        nums.append((f"{impl}_with", f"seed CNN parameters, with its pools ({label} model)",
                     mod.seed_cnn_model_param_count(pools=True) if mod else NOT_MEASURED))  # fmt: skip
        nums.append((f"{impl}_without", f"... without its two MaxPooling2D ({label} model)",
                     mod.seed_cnn_model_param_count(pools=False) if mod else NOT_MEASURED))  # fmt: skip
    rows = {r.name: r for r in with_pools}
    rows_np = {r.name: r for r in without}
    nums += [
        ("pool_params", "parameters in each MaxPooling2D", rows["pool1"].params + rows["pool2"].params),
        ("conv_params", "conv1 + conv2 parameters, with / without pools",
         f"{rows['conv1'].params + rows['conv2'].params:,} / {rows_np['conv1'].params + rows_np['conv2'].params:,}"),
        ("flatten", "Flatten size, with / without pools", f"{rows['flatten'].output_shape[0]:,} / {rows_np['flatten'].output_shape[0]:,}"),
        ("dense1", "Dense(128) parameters, with / without pools", f"{rows['dense1'].params:,} / {rows_np['dense1'].params:,}"),
        ("total_with", "total with pools (closed form)", F.seed_cnn_model_param_count(True)),
        ("total_without", "total without pools (closed form)", F.seed_cnn_model_param_count(False)),
        ("flops_with", "forward FLOPs per image, with pools", F.seed_cnn_model_flops(1, True)),
        ("flops_without", "forward FLOPs per image, without pools", F.seed_cnn_model_flops(1, False)),
    ]  # fmt: skip
    ok = (rows["pool1"].params == 0 and rows["conv2"].params == rows_np["conv2"].params
          and F.seed_cnn_model_param_count(True) < F.seed_cnn_model_param_count(False))  # fmt: skip
    flat = rows_np["flatten"].output_shape[0] / rows["flatten"].output_shape[0]
    total = F.seed_cnn_model_param_count(False) / F.seed_cnn_model_param_count(True)
    return Evidence(
        READING if ok else FAILS,
        "A pooling layer holds no parameters and leaves the convolutions' counts as they are; what it shrinks is "
        f"the feature map, so the Dense layer after Flatten gets {flat:.0f}x fewer inputs and the model {total:.0f}x "
        "fewer parameters. It also cuts the later layers' products.",
        tuple(nums),
        reading="pooling reduces the parameters of the fully connected layer that follows it (through a smaller "
        "Flatten), not its own (it has none) nor the convolutions'",
    )


# --------------------------------------------------------------------------- section 6: the parameter formulas


def check_seed_gru_formula() -> Evidence:
    keras = _impl("keras")
    truth = keras.seed_gru_model_param_count() if keras else F.seed_gru_model_param_count("keras_reset_after")
    layers = F.seed_gru_model_param_count("keras_reset_after") - F.dense_param_count(SEED_GRU_UNITS[1], 10)
    readings = F.seed_gru_model_readings()
    own_eq = sum(F.gru_param_count(i, h, "seed_equations") for i, h in _seed_layer_sizes())
    nums: list[tuple[str, str, Number]] = [
        ("truth", "true count, seed GRU model (Keras default GRU, reset_after=True)" + ("" if keras else ", closed form"), truth),
        ("truth_gru_layers", "of which the two GRU layers", layers),
        ("own_equations", "the two GRU layers counted from the seed's own section 2.1 equations (3 biases each)", own_eq),
    ]
    nums += [(f"reading_{k[0]}{k[1] if k[1].isdigit() else ''}", f"reading {k}", v) for k, v in readings.items()]
    best = readings["A: per layer, output layer = own units"]
    nums += [
        ("best_short", "reading A short of the GRU layers by (6H per layer: the biases)", layers - best),
        ("per_layer", "per layer, reading A minus Keras / torch: closed form", "-6H (Keras reset_after=False: -3H)"),
    ]
    fails = truth not in readings.values() and layers not in readings.values()
    return Evidence(
        FAILS if fails else HOLDS,
        "No reading of '(3 x inputs + 3 x outputs) x hidden' gives the model's 112,394 or its GRU layers' 111,744. "
        "The closest (output layer = the layer's own units) is 3H(I + H): the weight matrices without any bias, "
        "short by 6H per layer (3H against the seed's own equations).",
        tuple(nums),
    )


def check_seed_cnn_formula() -> Evidence:
    keras = _impl("keras")
    truth = keras.seed_cnn_model_param_count() if keras else F.seed_cnn_model_param_count()
    table = {r.name: r for r in F.seed_cnn_model_table()}
    convs = table["conv1"].params + table["conv2"].params
    readings = F.seed_cnn_model_readings()
    nums: list[tuple[str, str, Number]] = [
        ("truth", "true count, seed CNN" + ("" if keras else " (closed form)"), truth),
        ("truth_convs", "of which the two Conv2D layers", convs),
    ]
    nums += [(f"reading_{k[0]}", f"reading {k} (both Conv2D layers)", v) for k, v in readings.items()]
    nums += [
        ("ratio_best", "smallest reading / true Conv2D count", f"{min(readings.values()) / convs:.1f}"),
        ("closed_form", "per layer, formula - true: closed form (h x w the map the reading uses)",
         "c_out (c_in k^2 (hw - 1) + c_out hw - 1): zero only for a 1x1 map with c_out = 1"),
        ("conv1_macs", "reading C minus multiply-adds, conv1 (= c_out^2 OH OW = 32^2 x 26^2)",
         F.seed_cnn_formula_layer(1, 32, 3, 26, 26) - F.conv2d_flops(1, 26, 26, 3, 3, 1, 32) // 2),
    ]  # fmt: skip
    fails = truth not in readings.values() and convs not in readings.values()
    return Evidence(
        FAILS if fails else HOLDS,
        "Every reading is off by orders of magnitude: the height x width factor makes it grow with the image, "
        "which a convolution's parameters never do, and '+ out_channels' stands where one bias per kernel "
        "belongs. Read on the output map it is the multiply-adds plus c_out^2 OH OW: a muddled compute count.",
        tuple(nums),
    )


# --------------------------------------------------------------------------- the registry

CLAIMS: tuple[Claim, ...] = (
    Claim("gru-gate-names", "2.1",
          "GRU的核心概念是门（Gate）机制，包括输入门（Input Gate）、遗忘门（Forget Gate）和更新门（Update Gate）。"
          "……其中，$z_t$、$r_t$和$\\tilde{h_t}$分别表示输入门、遗忘门和更新门的输出",
          "The GRU's gates are an input gate, a forget gate and an update gate; z_t, r_t and h~_t are their outputs.",
          FAILS, check_gru_gate_names),
    Claim("gru-gates-concatenated", "2.1",
          "$z_t = \\sigma(W_z \\cdot [h_{t-1}, x_t] + b_z)$，$r_t = \\sigma(W_r \\cdot [h_{t-1}, x_t] + b_r)$",
          "The gates are a sigmoid of one weight matrix applied to the concatenation [h_{t-1}, x_t], plus one bias.",
          HOLDS, check_gru_concatenated_gates),
    Claim("gru-candidate-reset", "2.1 vs 4.1",
          "$\\tilde{h_t} = \\tanh(W_h \\cdot [r_t \\cdot h_{t-1}, x_t] + b_h)$",
          "The candidate state is tanh of W_h applied to [r_t * h_{t-1}, x_t] (the reset gate acts before the "
          "recurrent product); section 4.1 then builds 'a GRU network' with keras.layers.GRU, implying this GRU.",
          READING, check_gru_candidate),
    Claim("gru-update-oplus", "2.1",
          "$h_t = (1 - z_t) \\cdot h_{t-1} \\oplus r_t \\cdot \\tilde{h_t}$ ……$\\oplus$表示元素相加后再除以2的操作。",
          "h_t = (1 - z_t) * h_{t-1} (+) r_t * h~_t, where (+) adds element-wise and then divides by 2.",
          FAILS, check_gru_update_oplus),
    Claim("tanh-hyperbolic-sine", "2.1", "$\\tanh$表示双曲正弦函数",
          "tanh denotes the hyperbolic sine function.", FAILS, check_tanh_is_sinh),
    Claim("gru-fewer-params-than-rnn", "1.1",
          "与传统的RNN相比，GRU可以有效地减少网络中的参数数量，从而减少计算量和过拟合的风险。",
          "Compared with a traditional RNN, a GRU effectively reduces the number of parameters in the network, "
          "and so the amount of computation and the risk of overfitting.",
          READING, check_gru_fewer_than_rnn),
    Claim("gru-fewer-params-than-lstm", "6.1",
          "GRU和LSTM都是循环神经网络的变种……GRU的结构更加简洁",
          "GRU and LSTM are both RNN variants ... the GRU's structure is more concise (fewer parameters than an "
          "LSTM of the same size).",
          HOLDS, check_gru_fewer_than_lstm),
    Claim("cnn-conv-equation", "2.2 vs 4.2",
          "CNN的结构如下：$y_{ij} = \\sum_{k=1}^K w_{ik} \\cdot x_{ij + k - 1} + b_i$ ……$y_{ij}$表示卷积操作的输出；"
          "$w_{ik}$表示卷积核中第$k$个元素的权重；$x_{ij + k - 1}$表示图像中第$i$个通道的第$j$个元素；$b_i$表示偏置向量",
          "The CNN's convolution is y_ij = sum_k w_ik x_i,j+k-1 + b_i (channel i, position j): the operation of "
          "the Conv2D layers in the article's Keras CNN.",
          FAILS, check_cnn_conv_equation),
    Claim("cnn-pool-equation", "2.2 vs 4.2",
          "$x_{ij} = \\max(y_{ij}, y_{i,j+1})$ ……$x_{ij}$表示池化操作的输出。",
          "The CNN's pooling is x_ij = max(y_ij, y_i,j+1): the operation of MaxPooling2D((2, 2)) in the "
          "article's Keras CNN.",
          FAILS, check_cnn_pool_equation),
    Claim("pooling-reduces-params", "2.2, 3.2",
          "池化操作是通过采样方法（如最大池化或平均池化）将图像中的特征映射到更小的空间，从而减少参数数量和计算量。"
          "（3.2：对卷积后的特征图进行池化操作，从而减少参数数量和计算量）",
          "Pooling maps the image features to a smaller space by sampling (max or average pooling), reducing the "
          "number of parameters and the amount of computation.",
          READING, check_pooling_reduces_params),
    Claim("seed-gru-param-formula", "6.1",
          "GRU的参数数量可以通过以下公式计算：参数数量 = (3 × 输入层神经元数 + 3 × 输出层神经元数) × 隐藏层神经元数",
          "A GRU's number of parameters is (3 x input-layer neurons + 3 x output-layer neurons) x hidden-layer neurons.",
          FAILS, check_seed_gru_formula),
    Claim("seed-cnn-param-formula", "6.2",
          "CNN的参数数量可以通过以下公式计算：参数数量 = 卷积核数量 × (输入通道数 × 卷积核大小² + 输出通道数) × 输入图像高度 × 输入图像宽度",
          "A CNN's number of parameters is kernels x (input channels x kernel size^2 + output channels) x input "
          "image height x input image width.",
          FAILS, check_seed_cnn_formula),
)  # fmt: skip

BY_ID: dict[str, Claim] = {c.id: c for c in CLAIMS}


@cache
def evidence(claim_id: str) -> Evidence:
    """The evidence for one claim, computed once per process (the test and the report share it)."""
    if claim_id not in BY_ID:
        raise KeyError(f"unknown claim {claim_id!r}; known: {', '.join(BY_ID)}")
    return BY_ID[claim_id].check()


NOT_COMPUTABLE: tuple[tuple[str, str, str, str], ...] = (
    ("1.1", "GRU是2014年由Cho等人提出的", "GRU was proposed by Cho et al. in 2014.",
     "a historical fact (it matches Cho et al., EMNLP 2014), not settled by computation"),
    ("1.2", "CNN是2006年由LeCun等人提出的", "CNN was proposed by LeCun et al. in 2006.",
     "a historical claim (LeCun's convolutional networks date from 1989-1998); not settled by computation"),
    ("1.1", "GRU可以有效地减少……过拟合的风险", "A GRU reduces the risk of overfitting.",
     "depends on data and training; no computation on fixed sizes settles it"),
    ("2.2", "$x_{ij + k - 1}$表示图像中第$i$个通道的第$j$个元素", "x_{i,j+k-1} is the j-th element of channel i.",
     "notation: the subscript is j+k-1, and x also names the pooling output; a reading, not a computation"),
    ("5.1", "GRU在处理长序列数据方面有很大的优势", "GRU has a great advantage on long sequences.",
     "an empirical claim about training, not settled by these checks"),
    ("6.1", "LSTM则通过引入门、遗忘门和输出门来控制信息的流动", "LSTM controls information with a gate, a forget gate and an output gate.",
     "the list is garbled (input gate presumably); an LSTM's weights do hold 4 blocks (input, forget, cell, output)"),
    ("6.2", "CNN可以自动学习特征，而传统的图像处理技术需要人工设计特征", "CNNs learn features; traditional methods hand-design them.",
     "a qualitative statement"),
)  # fmt: skip
