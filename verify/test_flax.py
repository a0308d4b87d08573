"""What Flax's GRU computes, and the converters that reach it, both ways, on weights and gradients.

flax.linen.GRUCell keeps four biases where torch.nn.GRU keeps six: b_ir, b_iz, b_in on the input side and b_hn
alone on the recurrent side (its hr and hz Dense layers have no bias). It computes reset_after, and it holds every
reset_after weight set exactly, with the z and r gates' b_x + b_h folded into one bias each (convert.gru_to_flax);
read back, a cell is the stated projection convert.flax_folded_bias. flax.nnx.GRUCell keeps fewer still: one
input bias per gate and no recurrent bias at all, though its docstring writes b_hn, so it cannot hold a reset_after
candidate's b_hh. Flax's own layers, from their own initialisation (with distinct non-zero biases), read back to
canonical, compute the same in the NumPy reference; float64 throughout, through the one tolerance table.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import GRU_VARIANTS, convert, frameworks
from impls.contract.spec import GRUWeights, init_conv, init_gru, random_array
from impls.model import seed as seed_models
from impls.ports import flax_port
from impls.primitives import numpy_impl as ref
from verify.conftest import load, load_framework
from verify.headroom import check

B, T, I, H = 3, 6, 5, 4
X = random_array((B, T, I), 21)
H0 = random_array((B, H), 22, low=-0.5, high=0.5)
DY, DH = random_array((B, T, H), 23), random_array((B, H), 24)
W = init_gru(I, H, seed=25)


def same(got, want, what: str) -> None:
    check(np.asarray(got), np.asarray(want), "float64", "flax", what=what)


@pytest.fixture(scope="module")
def nn():
    load("flax")  # the voice, so that JAX is configured (float64) as impls.frameworks states
    return load_framework("flax")


def _own_cell(nn, jax):
    """A GRUCell from Flax's own initialisation, biases drawn non-zero and distinct (Flax starts them at zero)."""
    cell = nn.GRUCell(H, param_dtype=jax.numpy.float64, bias_init=nn.initializers.uniform(0.5))
    params = cell.init(jax.random.key(3), jax.numpy.zeros((B, H)), jax.numpy.zeros((B, I)))["params"]
    return cell, params


def test_the_declared_variants_are_reset_after_only():
    assert GRU_VARIANTS["flax"] == ("reset_after",)


def test_flax_gru_keeps_four_biases_and_no_recurrent_z_or_r_bias(nn):
    jax = load_framework("jax")
    _, params = _own_cell(nn, jax)
    biased = sorted(k for k, v in params.items() if "bias" in v)
    assert biased == ["hn", "in", "ir", "iz"] and sorted(params) == ["hn", "hr", "hz", "in", "ir", "iz"]
    assert all(np.ptp(np.asarray(params[k]["bias"])) > 0.1 for k in biased)  # distinct, non-zero


def test_flax_gru_read_back_computes_the_same_in_numpy(nn):
    jax = load_framework("jax")
    cell, params = _own_cell(nn, jax)
    carry, y = nn.RNN(cell, return_carry=True).apply({"params": {"cell": params}}, X, initial_carry=H0)
    w = convert.gru_from_flax(jax.tree_util.tree_map(np.asarray, params))
    y_ref, h_ref = ref.gru(X, w, "reset_after", H0)
    same(y, y_ref, "flax GRUCell -> canonical -> NumPy reset_after")
    same(carry, h_ref, "flax GRUCell's carry is h_T")
    np.testing.assert_array_equal(w.b_h[: 2 * H], 0.0)  # the projection: z and r biases live in b_x


def test_canonical_to_flax_is_the_folded_projection_exactly():
    back = convert.gru_from_flax(convert.gru_to_flax(W))
    f = convert.flax_folded_bias(W)
    for k in ("W", "U", "b_x", "b_h"):
        np.testing.assert_array_equal(getattr(back, k), getattr(f, k))
    same(ref.gru(X, f, "reset_after", H0)[0], ref.gru(X, W, "reset_after", H0)[0], "the projection changes no output")
    assert not np.allclose(f.b_h, W.b_h)  # it does change the arrays: the test weights have non-zero b_hz, b_hr


def test_the_folded_projection_is_no_other_variant():
    """Folding b_hz, b_hr is exact for reset_after only in the sense that every variant keeps its output under it
    (their z and r biases only add); what Flax cannot do is reset_before's candidate: through the converter the
    cell computes reset_after, visibly different."""
    for variant in ("reset_before", "chung", "seed"):
        f = convert.flax_folded_bias(W)
        same(ref.gru(X, f, variant, H0)[0], ref.gru(X, W, variant, H0)[0], f"folding keeps {variant}'s output")
    gap = np.max(np.abs(ref.gru(X, W, "reset_after", H0)[0] - ref.gru(X, W, "reset_before", H0)[0]))
    assert gap > 1e-3


def test_flax_gru_gradients_read_back_both_ways(nn):
    jax = load_framework("jax")
    cell, params = _own_cell(nn, jax)

    def loss(p, x, h0):
        carry, y = nn.RNN(cell, return_carry=True).apply({"params": {"cell": p}}, x, initial_carry=h0)
        return (y * DY).sum() + (carry * DH).sum()

    gp, gx = jax.grad(loss, argnums=(0, 1))(params, X, H0)
    grads = jax.tree_util.tree_map(np.asarray, gp)
    w = convert.gru_from_flax(jax.tree_util.tree_map(np.asarray, params))
    g = ref.gru_vjp(X, w, "reset_after", DY, H0, DH)
    back = convert.gru_grads_from_flax(grads)
    for k in ("W", "U", "b_x", "b_h"):
        same(getattr(back, k), g[k], f"flax GRUCell gradient -> canonical {k}")
    fwd = convert.gru_grads_to_flax(GRUWeights(g["W"], g["U"], g["b_x"], g["b_h"]))
    for name in grads:
        for k in grads[name]:
            same(fwd[name][k], grads[name][k], f"reference gradient -> flax {name}.{k}")
    same(gx, g["x"], "flax GRUCell dx")


def test_flax_conv_and_dense_hold_the_canonical_layouts(nn):
    jax = load_framework("jax")
    conv = nn.Conv(6, (3, 2), feature_group_count=2, kernel_dilation=(1, 2), padding=((1, 0), (0, 2)))
    x = random_array((2, 7, 8, 4), 26)
    params = jax.tree_util.tree_map(np.asarray, conv.init(jax.random.key(4), x)["params"])
    assert params["kernel"].shape == init_conv(3, 2, 4, 6, groups=2).kernel.shape  # HWIO with I = C_in / groups
    y = conv.apply({"params": params}, x)
    same(y, ref.conv2d(x, params["kernel"], params["bias"], padding=((1, 0), (0, 2)), dilation=(1, 2), groups=2),
         "flax Conv -> canonical (no conversion) -> NumPy")  # fmt: skip


def test_flax_nnx_gru_has_no_recurrent_bias_though_its_docstring_writes_one():
    """flax.nnx.GRUCell: dense_h is a Linear(use_bias=False), so n = tanh(x W_in + b_in + r * (h W_hn)): the b_hn of
    its own docstring does not exist. It holds reset_after only where the candidate's b_hh is zero."""
    load("flax")
    GRUCell, Rngs = frameworks.load_attr("flax.nnx", "GRUCell"), frameworks.load_attr("flax.nnx", "Rngs")
    jnp = load_framework("jax").numpy
    cell = GRUCell(I, H, rngs=Rngs(0), param_dtype=jnp.float64)
    assert cell.dense_h.bias is None and cell.dense_i.bias is not None
    assert "b_{hn}" in (GRUCell.__doc__ or "")
    Wi, Wh, bi = (np.asarray(a) for a in (cell.dense_i.kernel.value, cell.dense_h.kernel.value, cell.dense_i.bias.value))
    bi = np.random.default_rng(5).uniform(-0.5, 0.5, bi.shape)  # distinct biases (nnx starts them at zero)
    cell.dense_i.bias.value = jnp.asarray(bi)
    order = [1, 0, 2]  # nnx splits its 3H columns (r, z, n); canonical is (z, r, h)
    w = GRUWeights(np.concatenate([Wi[:, g * H : (g + 1) * H] for g in order], axis=1),
                   np.concatenate([Wh[:, g * H : (g + 1) * H] for g in order], axis=1),
                   np.concatenate([bi[g * H : (g + 1) * H] for g in order]), np.zeros(3 * H))  # fmt: skip
    h = H0
    for t in range(T):
        h, _ = cell(jnp.asarray(h), jnp.asarray(X[:, t]))
    same(h, ref.gru(X, w, "reset_after", H0)[1], "flax.nnx GRUCell = reset_after with b_h = 0")


def test_flax_avg_pool_promotes_float32_to_float64_under_x64(nn):
    """flax.linen.avg_pool(count_include_pad=False) divides by jnp.ones of JAX's default float dtype: float64 once
    jax_enable_x64 is on. The voice returns the input's dtype (impls/flax_builtin.AVG_POOL_PROMOTES)."""
    jnp = load_framework("jax").numpy
    x = jnp.asarray(random_array((1, 5, 6, 2), 27), jnp.float32)
    assert nn.avg_pool(x, (2, 2), padding="SAME", count_include_pad=False).dtype == jnp.float64
    assert nn.avg_pool(x, (2, 2), padding="SAME", count_include_pad=True).dtype == jnp.float32
    assert load("flax").avg_pool2d(x, 2, 1, "same").dtype == jnp.float32


def _tree_leaves(tree) -> list[tuple[str, np.ndarray]]:
    """(path, array) for every array of a nested dict (a Flax params tree), sorted by path."""
    if isinstance(tree, dict):
        return [(f"{k}/{p}", a) for k in sorted(tree) for p, a in _tree_leaves(tree[k])]
    return [("", np.asarray(tree))]


def _fresh_like(tree, seed: int):
    """A tree shaped like `tree` with new random values: not produced by our to-converter."""
    g = np.random.default_rng(seed)

    def walk(t):
        return {k: walk(v) for k, v in t.items()} if isinstance(t, dict) else g.uniform(-1, 1, np.shape(t))

    return walk(tree)


def _same_tree(a, b, what: str) -> None:
    la, lb = _tree_leaves(a), _tree_leaves(b)
    assert [p for p, _ in la] == [p for p, _ in lb], what
    for (p, x), (_, y) in zip(la, lb):
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: {p}")


def test_seed_cnn_round_trips_through_flax_layouts_both_ways():
    """canonical -> Flax -> canonical and Flax -> canonical -> Flax are exact: Flax keeps HWIO, NHWC and the (h, w, c)
    flatten, so the seed CNN's converters (the Flax port's) only rename (a swapped layer would show here)."""
    m = seed_models.seed_cnn(11, image=(14, 12, 2), filters=(3, 4), dense_units=5, classes=6)
    back = flax_port.canonical(m, flax_port.params(m), gradients=False)
    for key, a in m.parameters().items():
        np.testing.assert_array_equal(back[key], a, err_msg=str(key))
    fresh = _fresh_like(flax_port.params(m), 12)
    again = flax_port.params(m.with_parameters(flax_port.canonical(m, fresh, gradients=False)))
    _same_tree(again, fresh, "Flax seed CNN -> canonical -> Flax")


def test_seed_gru_round_trips_through_flax_layouts_both_ways():
    """canonical -> Flax -> canonical is each GRU layer's folded projection (and the Dense exactly); a Flax tree ->
    canonical -> Flax is exact, since a Flax cell has no z or r recurrent bias to lose."""
    m = seed_models.seed_gru(13, input_size=5, units=(4, 3), classes=6, seq_len=4)
    back = flax_port.canonical(m, flax_port.params(m), gradients=False)
    for layer in ("gru1", "gru2"):
        w = m.layers[m.layer_index(layer)].weights
        f = convert.flax_folded_bias(GRUWeights(w["W"], w["U"], w["b_x"], w["b_h"]))
        for k in ("W", "U", "b_x", "b_h"):
            np.testing.assert_array_equal(back[(layer, k)], getattr(f, k), err_msg=f"{layer}.{k}")
    for k in ("kernel", "bias"):
        np.testing.assert_array_equal(back[("dense", k)], m.parameters()[("dense", k)])
    fresh = _fresh_like(flax_port.params(m), 14)
    again = flax_port.params(m.with_parameters(flax_port.canonical(m, fresh, gradients=False)))
    _same_tree(again, fresh, "Flax seed GRU -> canonical -> Flax")
