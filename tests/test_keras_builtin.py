"""What the forward matrix does not cover for TensorFlow and Keras: parameter counts of built Keras layers
against closed forms, compile() modes, the training loop, the weight cache, VJP spot checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from impls.contract.models import init_seed_cnn, init_seed_gru
from impls.contract.spec import ShapeError, init_gru, random_array
from impls.contract.tolerance import assert_close
from impls.model import seed as seed_models
from impls.primitives import numpy_impl as ref
from verify.conftest import load


@pytest.fixture(scope="module")
def kb():
    return load("keras")


@pytest.fixture(scope="module")
def tfi():
    return load("tensorflow")


# --------------------------------------------------------------------------- counts (closed forms written here)

IH = [(5, 4), (64, 128), (128, 64), (1, 3)]


@pytest.mark.parametrize("I, H", IH)
def test_gru_param_count_matches_closed_forms(kb, I, H):
    assert kb.gru_param_count(I, H, "reset_after") == 3 * (I * H + H * H + 2 * H)  # two biases per gate
    assert kb.gru_param_count(I, H, "reset_before") == 3 * (I * H + H * H + H)  # one bias per gate


@pytest.mark.parametrize("I, H", IH[:2])
def test_lstm_param_count(kb, I, H):
    assert kb.lstm_param_count(I, H) == 4 * (I * H + H * H + H)


@pytest.mark.parametrize("kh, kw, c_in, c_out, groups, bias", [(3, 3, 1, 32, 1, True), (3, 2, 4, 6, 2, True),
                                                               (5, 5, 3, 7, 1, False)])  # fmt: skip
def test_conv2d_and_dense_param_counts(kb, kh, kw, c_in, c_out, groups, bias):
    assert (
        kb.conv2d_param_count(kh, kw, c_in, c_out, groups, bias)
        == kh * kw * (c_in // groups) * c_out + bias * c_out
    )
    assert kb.dense_param_count(c_in * 5, c_out, bias) == c_in * 5 * c_out + bias * c_out


def test_seed_model_param_counts(kb):
    def gru(i, h):
        return 3 * (i * h + h * h + 2 * h)

    def conv(c_in, c_out):
        return 3 * 3 * c_in * c_out + c_out

    assert kb.seed_gru_model_param_count() == gru(64, 128) + gru(128, 64) + 64 * 10 + 10 == 112_394
    head = conv(1, 32) + conv(32, 64) + 128 * 10 + 10
    assert kb.seed_cnn_model_param_count() == head + 5 * 5 * 64 * 128 + 128 == 225_034  # 28-26-13-11-5
    assert kb.seed_cnn_model_param_count(pools=False) == head + 24 * 24 * 64 * 128 + 128  # 28-26-24


# --------------------------------------------------------------------------- compile modes


@pytest.mark.parametrize("variant", ["reset_after", "seed"])
def test_tf_gru_compiled_modes_match_eager_and_reference(tfi, variant):
    x, w, h0 = random_array((2, 6, 5), 1), init_gru(5, 3, 2), random_array((2, 3), 3, low=-0.5, high=0.5)
    expected = ref.gru(x, w, variant, h0)
    eager = tfi.gru(tfi.asarray(x, "float64"), w, variant, tfi.asarray(h0, "float64"))
    for mode in tfi.MODES:
        fn = tfi.compile(lambda x, h0: tfi.gru(x, w, variant, h0), mode)
        got = fn(tfi.asarray(x, "float64"), tfi.asarray(h0, "float64"))
        for g, e, ea in zip(got, expected, eager):
            assert_close(tfi.to_numpy(g), e, "float64", "gru", what=f"{mode} {variant}")
            assert_close(tfi.to_numpy(g), tfi.to_numpy(ea), "float64", "gru", what=f"{mode} vs eager")


def test_keras_gru_and_its_vjp_inside_tf_function(kb):
    """bench compiles the built-in voice too: weights assigned and gradients mapped back inside a trace."""
    x, w, dy = random_array((2, 5, 4), 4), init_gru(4, 3, 5), random_array((2, 5, 3), 6)
    fn = kb.compile(
        lambda x, dy: (kb.gru(x, w, "reset_before")[0], kb.gru_vjp(x, w, "reset_before", dy)), "tf.function"
    )
    y, g = fn(kb.asarray(x, "float64"), kb.asarray(dy, "float64"))
    assert_close(kb.to_numpy(y), ref.gru(x, w, "reset_before")[0], "float64", "gru")
    expected = ref.gru_vjp(x, w, "reset_before", dy)
    for k, e in expected.items():
        assert_close(kb.to_numpy(g[k]), e, "float64", "gru_vjp", what=f"d{k}")


# --------------------------------------------------------------------------- no state leaks through the cache


def test_keras_cached_layers_take_each_calls_weights(kb):
    x = kb.asarray(random_array((2, 4, 5), 6), "float64")
    w1, w2 = init_gru(5, 3, 7), init_gru(5, 3, 8)
    first = kb.to_numpy(kb.gru(x, w1, "reset_after")[0])
    kb.gru(x, w2, "reset_after")
    assert_close(kb.to_numpy(kb.gru(x, w1, "reset_after")[0]), first, "float64", "gru")
    assert_close(first, ref.gru(random_array((2, 4, 5), 6), w1, "reset_after")[0], "float64", "gru")


# --------------------------------------------------------------------------- VJP spot check: primitives vs layers


@pytest.mark.parametrize("variant", ["reset_after", "reset_before"])
@pytest.mark.parametrize("with_h0", [False, True])
def test_tf_gru_vjp_matches_keras_layer_vjp(tfi, kb, variant, with_h0):
    B, T, I, H = 2, 5, 4, 3
    x, w, dy = random_array((B, T, I), 10), init_gru(I, H, 11), random_array((B, T, H), 12)
    extra = (
        {"h0": random_array((B, H), 13, low=-0.5, high=0.5), "dh_T": random_array((B, H), 14)}
        if with_h0
        else {}
    )

    def run(m):
        return m.gru_vjp(m.asarray(x, "float64"), w, variant, m.asarray(dy, "float64"),
                         **{k: m.asarray(a, "float64") for k, a in extra.items()})  # fmt: skip

    a, b = run(tfi), run(kb)
    assert set(a) == set(b) == {"x", "h0", "W", "U", "b_x", "b_h"}
    for k in a:
        assert_close(tfi.to_numpy(a[k]), kb.to_numpy(b[k]), "float64", "gru_vjp", what=f"d{k}")
    if variant == "reset_before":  # Keras' one bias is b_x + b_h: both canonical gradients are its gradient
        assert_close(
            tfi.to_numpy(a["b_x"]), tfi.to_numpy(a["b_h"]), "float64", "gru_vjp", what="db_x vs db_h"
        )


def test_softmax_cross_entropy_vjp_is_softmax_minus_onehot_over_batch(tfi, kb):
    logits = random_array((5, 7), 15, low=-3, high=3)
    onehot = np.eye(7)[[0, 3, 6, 2, 2]]
    p = ref.softmax(logits)
    for m in (tfi, kb):
        g = m.softmax_cross_entropy_vjp(m.asarray(logits, "float64"), m.asarray(onehot, "float64"))["logits"]
        assert_close(m.to_numpy(g), (p - onehot) / 5, "float64", "softmax_cross_entropy_vjp", what=m.NAME)
        loss = m.softmax_cross_entropy(m.asarray(logits, "float64"), m.asarray(onehot, "float64"))
        assert_close(m.to_numpy(loss), -np.mean(np.sum(onehot * np.log(p), -1)), "float64", what=m.NAME)


# --------------------------------------------------------------------------- training


def _check_training(kb, model, params, batches, forward, leaf):
    """Finite losses, one per batch; loss 0 is the reference loss of the initial params; the params moved
    and keep their shapes; the final params still make a model. leaf picks one kernel to compare."""
    losses, final = kb.train_seed_model(model, params, batches)
    assert len(losses) == len(batches) and all(np.isfinite(losses))
    x, y = batches[0]
    assert_close(losses[0], -np.mean(np.sum(y * np.log(forward(params)(x)), -1)), "float64", what="loss 0")
    assert np.shape(leaf(final)) == np.shape(leaf(params)) and not np.allclose(leaf(final), leaf(params))
    probs = forward(final)(x)
    assert_close(probs.sum(-1), np.ones(len(x)), "float64", what="final params give probabilities")
    return losses, final


def test_train_seed_gru_three_steps(kb):
    g = np.random.default_rng(16)
    params = init_seed_gru(17, input_size=7, units=(6, 5), classes=4)
    batches = [(random_array((3, 9, 7), 18 + i), np.eye(4)[g.integers(0, 4, 3)]) for i in range(3)]
    _check_training(kb, "gru", params, batches, seed_models.reference_model, lambda p: p.gru1.W)


def test_train_seed_cnn_three_steps_is_deterministic(kb):
    g = np.random.default_rng(21)
    params = init_seed_cnn(22, image=(14, 12, 2), filters=(3, 4), dense_units=6, classes=5)
    batches = [
        (random_array((4, 14, 12, 2), 23 + i, low=0.0, high=1.0), np.eye(5)[g.integers(0, 5, 4)])
        for i in range(3)
    ]
    losses, final = _check_training(kb, "cnn", params, batches, seed_models.reference_model, lambda p: p.conv1.kernel)
    losses2, final2 = kb.train_seed_model("cnn", params, batches)
    assert losses2 == losses and np.array_equal(final2.dense1.kernel, final.dense1.kernel)


# --------------------------------------------------------------------------- bad input


def test_keras_unsupported_gru_variant_names_the_supported_ones(kb):
    x, w = kb.asarray(random_array((1, 2, 3), 0), "float64"), init_gru(3, 2, 0)
    for call in (
        lambda: kb.gru(x, w, "chung"),
        lambda: kb.gru_param_count(3, 2, "seed"),
    ):
        with pytest.raises(ValueError, match="reset_after.*reset_before"):
            call()
    with pytest.raises(ValueError, match="valid variants"):
        kb.gru(x, w, "no_such_variant")


def test_bad_shapes_and_names_raise_clear_errors(tfi, kb):
    x, w = random_array((2, 3, 4), 0), init_gru(4, 5, 0)
    for m in (tfi, kb):
        with pytest.raises(ShapeError, match=r"x.shape=\(2, 3, 3\)"):
            m.gru(m.asarray(x[:, :, :3], "float64"), w, "reset_after")
        with pytest.raises(ShapeError, match=r"dy.shape=\(2, 3, 4\).*\(2, 3, 5\)"):
            m.gru_vjp(
                m.asarray(x, "float64"), w, "reset_after", m.asarray(random_array((2, 3, 4)), "float64")
            )
        with pytest.raises(ShapeError, match="logits.shape"):
            m.softmax_cross_entropy(
                m.asarray(np.zeros((2, 3)), "float64"), m.asarray(np.zeros((2, 4)), "float64")
            )
    with pytest.raises(ValueError, match="valid modes"):
        tfi.compile(lambda x: x, "jit")
    with pytest.raises(ValueError, match="valid devices"):
        tfi.asarray(x, "float64", device="tpu")
    with pytest.raises(ValueError, match="supported: float64"):
        tfi.asarray(x, "int32")
    with pytest.raises(ValueError, match="groups=3"):
        kb.conv2d_param_count(3, 3, 4, 6, groups=3)
    with pytest.raises(ValueError, match="valid: gru, cnn"):
        kb.train_seed_model("lstm", None, [(x, x)])
