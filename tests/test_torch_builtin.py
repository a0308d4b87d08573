"""PyTorch pieces the forward matrix does not reach: FLOP and parameter counts of built layers against their
closed forms, Adam training of the seed models, the converter-as-gather, autograd through nn.GRU against
autograd through the primitives, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract.limits import Refused
from impls.contract.models import init_seed_cnn, init_seed_gru
from impls.contract.spec import VARIANTS, init_dense, init_gru, random_array
from impls.contract.tolerance import assert_close
from impls.model import seed as seed_models
from impls.model import voices as model_voices
from verify.conftest import load

GRU_SIZES = [(2, 5, 3, 4), (3, 7, 9, 6), (1, 1, 6, 2)]  # (B, T, I, H), I != H


# --------------------------------------------------------------------------- FLOPs (FlopCounterMode)


def test_flop_count_matmul_is_2mnk_forward_and_3x_with_backward():
    nn_ = load("torch_nn")
    M, K, N = 3, 5, 7
    assert nn_.flop_count("matmul", M=M, K=K, N=N) == 2 * M * N * K
    a, b = nn_.asarray(random_array((M, K), 1), "float32"), nn_.asarray(random_array((K, N), 2), "float32")
    assert nn_.flop_count(lambda p, q: p @ q, a, b) == 2 * M * N * K
    # backward: dA = dY B^T and dB = A^T dY, each another 2mnk
    assert nn_.flop_count("matmul", M=M, K=K, N=N, backward=True) == 3 * 2 * M * N * K


@pytest.mark.parametrize("B, T, I, H", GRU_SIZES)
def test_flop_count_gru_is_the_closed_form(B, T, I, H):
    """Forward matrix products of one GRU layer: 2*B*T*3H*(I + H), for nn.GRU and for every variant written
    from primitives (reset_before's two recurrent products h U_zr and (r*h) U_h add up to the same)."""
    nn_, prim = load("torch_nn"), load("torch")
    expected = 2 * B * T * 3 * H * (I + H)
    assert nn_.flop_count("gru", B=B, T=T, I=I, H=H) == expected
    x, w = prim.asarray(random_array((B, T, I), 1), "float32"), init_gru(I, H, seed=2)
    for variant in VARIANTS:
        assert nn_.flop_count(prim.gru, x, w, variant) == expected, variant


def test_flop_count_conv_and_the_seed_models():
    nn_ = load("torch_nn")
    B, H, W, C, KH, KW, O = 2, 7, 9, 3, 3, 2, 4
    OH, OW = -(-H // 2), -(-W // 2)  # 'same', stride 2
    assert nn_.flop_count("conv2d", B=B, H=H, W=W, C=C, KH=KH, KW=KW, O=O, stride=2, padding="same") == 2 * B * OH * OW * O * KH * KW * C
    assert nn_.flop_count("dense", B=B, n_in=5, n_out=3) == 2 * B * 5 * 3
    gru = 2 * B * 100 * 3 * 128 * (64 + 128) + 2 * B * 100 * 3 * 64 * (128 + 64) + 2 * B * 64 * 10
    assert nn_.flop_count("seed_gru_model", B=B) == gru
    cnn = 2 * B * (26 * 26 * 32 * 9 * 1 + 11 * 11 * 64 * 9 * 32 + 1600 * 128 + 128 * 10)
    assert nn_.flop_count("seed_cnn_model", B=B) == cnn


def test_flop_count_unknown_work_lists_the_known():
    with pytest.raises(ValueError, match=r"'lstm'.*matmul, gru, conv2d"):
        load("torch_nn").flop_count("lstm", B=1)


# --------------------------------------------------------------------------- parameter counts of built layers


@pytest.mark.parametrize("I, H", [(3, 4), (64, 128), (128, 64)])
def test_recurrent_param_counts_are_the_closed_forms(I, H):
    nn_ = load("torch_nn")
    assert nn_.gru_param_count(I, H) == 3 * (I * H + H * H + 2 * H)  # torch keeps b_ih and b_hh
    assert nn_.lstm_param_count(I, H) == 4 * (I * H + H * H + 2 * H)


def test_conv_and_dense_param_counts_are_the_closed_forms():
    nn_ = load("torch_nn")
    assert nn_.conv2d_param_count(3, 3, 1, 32) == 3 * 3 * 1 * 32 + 32
    assert nn_.conv2d_param_count(3, 2, 6, 4, groups=2) == 3 * 2 * (6 // 2) * 4 + 4
    assert nn_.conv2d_param_count(5, 5, 3, 7, bias=False) == 5 * 5 * 3 * 7
    assert nn_.dense_param_count(1600, 128) == 1600 * 128 + 128
    assert nn_.dense_param_count(7, 3, bias=False) == 21


def test_seed_model_param_counts():
    nn_ = load("torch_nn")
    gru = 3 * (64 * 128 + 128 * 128 + 2 * 128) + 3 * (128 * 64 + 64 * 64 + 2 * 64) + 64 * 10 + 10
    assert nn_.seed_gru_model_param_count() == gru == 112_394
    convs, head = (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64), 128 * 10 + 10
    assert nn_.seed_cnn_model_param_count() == convs + 5 * 5 * 64 * 128 + 128 + head
    assert nn_.seed_cnn_model_param_count(pools=False) == convs + 24 * 24 * 64 * 128 + 128 + head


# --------------------------------------------------------------------------- training


def _keras_xent(onehot, probs, eps=1e-7):
    p = np.clip(probs / probs.sum(-1, keepdims=True), eps, 1 - eps)
    return float(np.mean(-np.sum(onehot * np.log(p), axis=-1)))


def _gru_batches(n, B=8, T=9, I=7, classes=4):
    g = np.random.default_rng(5)
    x = g.uniform(-1, 1, (B, T, I))
    onehot = np.eye(classes)[g.integers(0, classes, B)]
    return [(x, onehot)] * n  # the same batch: Adam must lower its loss


def _cnn_batches(n, B=6, image=(16, 18, 2), classes=5):
    g = np.random.default_rng(6)
    x = g.uniform(0, 1, (B, *image))
    onehot = np.eye(classes)[g.integers(0, classes, B)]
    return [(x, onehot)] * n


SMALL = {
    "gru": (lambda: init_seed_gru(3, input_size=7, units=(6, 5), classes=4), _gru_batches, seed_models.reference_model),
    # 16x18 images: a non-square (2, 3, 4) map enters Flatten, so the NCHW row permutation is exercised
    "cnn": (lambda: init_seed_cnn(4, image=(16, 18, 2), filters=(3, 4), dense_units=6, classes=5), _cnn_batches,
            seed_models.reference_model),
}  # fmt: skip


@pytest.mark.parametrize("model", list(SMALL))
def test_train_losses_are_before_each_update_and_fall(model):
    nn_ = load("torch_nn")
    init, batches, ref_model = SMALL[model]
    params, data = init(), batches(3)
    losses, final = nn_.train_seed_model(model, params, data, lr=1e-2)
    assert len(losses) == 3 and all(np.isfinite(losses))
    # losses[0] is the loss of the untouched initial weights: NumPy's forward and Keras' clipped cross-entropy
    assert abs(losses[0] - _keras_xent(data[0][1], ref_model(params)(data[0][0]))) < 1e-10
    assert losses[2] < losses[1] < losses[0], losses
    # the returned weights are those after the third update: on the same batch, lower still
    assert _keras_xent(data[0][1], ref_model(final)(data[0][0])) < losses[2]


@pytest.mark.parametrize("model", list(SMALL))
def test_train_first_adam_step_moves_each_weight_by_lr(model):
    """Adam's first step is lr * g / (|g| + eps) ~ lr * sign(g): every weight moves by at most lr, most by ~lr.
    With lr = 0 the weights come back unchanged, through both converters (and the Flatten permutation)."""
    nn_ = load("torch_nn")
    init, batches, _ = SMALL[model]
    params, lr = init(), 1e-3
    _, same = nn_.train_seed_model(model, params, batches(1), lr=0.0)
    for a, b in zip(_leaves(same), _leaves(params)):
        np.testing.assert_array_equal(a, b)
    _, moved = nn_.train_seed_model(model, params, batches(1), lr=lr)
    step = np.concatenate([np.abs(a - b).ravel() for a, b in zip(_leaves(moved), _leaves(params))])
    assert step.max() <= lr * (1 + 1e-9)
    assert np.median(step) > 0.9 * lr


def _leaves(p):
    return [getattr(layer, f) for layer in (getattr(p, n) for n in p.__dataclass_fields__) for f in layer.__dataclass_fields__]


def test_train_rejects_unknown_model():
    with pytest.raises(ValueError, match=r"'lstm'.*gru, cnn"):
        load("torch_nn").train_seed_model("lstm", None, [])


# --------------------------------------------------------------------------- gradients: nn.GRU vs primitives


@pytest.mark.parametrize("B, T, I, H", GRU_SIZES)
@pytest.mark.parametrize("with_h0", [False, True])
def test_gru_vjp_builtin_matches_primitives(B, T, I, H, with_h0):
    """Autograd through torch.nn.GRU (gradients mapped back by convert.gru_from_torch) against autograd
    through the primitives, reset_after, float64."""
    nn_, prim = load("torch_nn"), load("torch")
    x, w = random_array((B, T, I), 1), init_gru(I, H, seed=2)
    dy, dh = random_array((B, T, H), 3), random_array((B, H), 4)
    h0 = random_array((B, H), 5) if with_h0 else None
    got = {}
    for mod in (nn_, prim):
        a = {k: None if v is None else mod.asarray(v, "float64") for k, v in {"x": x, "dy": dy, "dh": dh, "h0": h0}.items()}
        wn = w.map(lambda v, m=mod: m.asarray(v, "float64"))
        g = mod.gru_vjp(a["x"], wn, "reset_after", a["dy"], h0=a["h0"], dh_T=a["dh"])
        got[mod.NAME] = {k: mod.to_numpy(v) for k, v in g.items()}
    assert set(got["torch_nn"]) == {"x", "h0", "W", "U", "b_x", "b_h"} == set(got["torch"])
    for k in got["torch"]:
        assert_close(got["torch_nn"][k], got["torch"][k], "float64", what=f"d{k}")


# --------------------------------------------------------------------------- converter as gather, boundary, bad input


def test_convert_tensors_equals_the_numpy_converters():
    nn_ = load("torch_nn")
    w = init_gru(5, 4, seed=1)
    got = nn_.convert_tensors(convert.gru_to_torch, w.map(nn_.asarray))
    for k, v in convert.gru_to_torch(w).items():
        np.testing.assert_array_equal(nn_.to_numpy(got[k]), v)
    fs = (2, 3, 4)  # a flatten of a non-square map: the row permutation as one gather
    kernel = init_dense(24, 5, seed=2).kernel
    got = nn_.convert_tensors(convert.flatten_rows_nhwc_to_nchw, nn_.asarray(kernel), feature_shape=fs)
    np.testing.assert_array_equal(nn_.to_numpy(got), convert.flatten_rows_nhwc_to_nchw(kernel, fs))
    with pytest.raises(ValueError, match="not a pure layout change"):  # folds b_x + b_h: arithmetic
        nn_.convert_tensors(convert.gru_to_keras, w.map(nn_.asarray), reset_after=False)


def test_bfloat16_round_trip_and_modes():
    prim = load("torch")
    a = random_array((5, 3), 1)
    back = prim.to_numpy(prim.asarray(a, "bfloat16"))
    assert back.dtype == np.float32
    assert np.max(np.abs(back - a) / np.abs(a)) <= 2.0**-8  # 8-bit mantissa, round to nearest
    assert prim.compile(len, "eager") is len
    with pytest.raises(ValueError, match=r"'xla'.*eager, torch.compile"):
        prim.compile(len, "xla")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "reset_after"])
def test_builtin_rejects_variants_nn_gru_does_not_compute(variant):
    nn_ = load("torch_nn")
    w = init_gru(5, 4, seed=1)
    x = nn_.asarray(random_array((2, 3, 5), 1), "float64")
    msg = rf"{variant!r}.*reset_after"
    with pytest.raises(ValueError, match=msg):
        nn_.gru(x, w, variant)
    with pytest.raises(ValueError, match=msg):
        nn_.gru_vjp(x, w, variant, nn_.asarray(np.ones((2, 3, 4)), "float64"))
    with pytest.raises(Refused, match=rf"torch.nn.GRU computes only reset_after.*{variant!r}"):  # its whole models too
        model_voices.build("torch_nn", seed_models.seed_gru(0, variant=variant, input_size=5, units=(4, 3), classes=2))
    with pytest.raises(ValueError, match=msg):
        nn_.gru_param_count(5, 4, variant)


@pytest.mark.parametrize("impl", ["torch", "torch_nn"])
def test_vjp_dy_of_the_wrong_shape_is_refused(impl):
    mod = load(impl)
    w = init_gru(5, 4, seed=1).map(lambda a: mod.asarray(a, "float64"))
    x = mod.asarray(random_array((2, 3, 5), 1), "float64")
    with pytest.raises(ValueError, match=r"dy\.shape=\(2, 3, 5\) does not match the output shape \(2, 3, 4\)"):
        mod.gru_vjp(x, w, "reset_after", mod.asarray(np.ones((2, 3, 5)), "float64"))
    with pytest.raises(ValueError, match=r"needs dy, dh_T or both; got neither"):
        mod.gru_vjp(x, w, "reset_after", None)
    with pytest.raises(ValueError, match=r"logits\.shape=\(2, 3\), onehot\.shape=\(2, 4\)"):
        mod.softmax_cross_entropy(mod.asarray(np.ones((2, 3)), "float64"), mod.asarray(np.eye(4)[:2], "float64"))


def test_torch_adam_on_float16_parameters_gives_non_finite_steps_for_small_gradients():
    """What the H100 run flagged (seed models' float16 train_step rows, update_err inf), on the CPU:
    Adam's eps=1e-8 rounds to 0 in float16 and (1 - beta2) * g**2 underflows, so a zero gradient
    steps to NaN and a small one to -inf; a float32 copy of the same step stays finite."""
    from impls import BackendUnavailable, frameworks

    try:
        torch = frameworks.load("torch")
    except BackendUnavailable as e:
        pytest.skip(str(e))
    grads = [0.0, 1e-5, 0.1]
    out = {}
    for dtype in (torch.float16, torch.float32):
        p = torch.nn.Parameter(torch.ones(3, dtype=dtype))
        opt = torch.optim.Adam([p], lr=1e-3, eps=1e-8)
        p.grad = torch.tensor(grads, dtype=dtype)
        opt.step()
        out[dtype] = p.detach().double().numpy()
    assert np.isnan(out[torch.float16][0]) and np.isneginf(out[torch.float16][1]) and np.isfinite(out[torch.float16][2])
    np.testing.assert_allclose(out[torch.float32], [1.0, 1.0 - 1e-3 * 1e-5 / (1e-5 + 1e-8), 1.0 - 1e-3], rtol=1e-6)
