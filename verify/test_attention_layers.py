"""Issue 25's multi_head_attention in every voice, against the float64 NumPy reference, in float32 and float64.

    voice (impls.model.voices.VOICES) x dtype x model (CASES): voices.build(...).forward and every gradient (.vjp,
    where the voice has them) against compose.reference_forward / reference_vjp at the table's bar, the reference fed
    the weights and inputs the voice holds (rounded to its dtype). A voice that declares a model refused is a skip
    naming the reason. A padded batch compares only the positions its source defines (the valid steps).

The reference's own backward is checked against central differences in verify/test_model_voices.py's TINY (self,
causal, cross with a separate key, no biases); the padded case's masked backward here, by central differences too.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.contract.tolerance import error_stats
from impls.model import compose, seeded, voices
from impls.model.description import INPUT, Model
from verify.headroom import check
from verify.test_finite_differences import FD_BAR, central_differences

B = 3
DTYPES = ("float32", "float64")

# name: (input shape without the batch, layers)
CASES: dict[str, tuple[tuple[int, ...], list]] = {
    # a post-norm Transformer encoder block (torch's TransformerEncoderLayer, norm_first=False) and a classifier head
    "encoder-post-norm": ((6, 8), [
        ("multi_head_attention", "attn", {"num_heads": 2, "key_dim": 4}, (INPUT, INPUT)),
        ("add", "res1", {}, (INPUT, "attn")),
        ("layer_norm", "norm1", {"epsilon": 1e-5}),
        ("dense", "ff1", {"units": 16, "activation": "relu"}),
        ("dense", "ff2", {"units": 8}),
        ("add", "res2", {}, ("norm1", "ff2")),
        ("layer_norm", "norm2", {"epsilon": 1e-5}),
        ("global_avg_pool", "pool", {}),
        ("dense", "out", {"units": 3}),
    ]),
    # cross attention: a query of one width, a value and a key of others, per-head sizes that are not width / heads,
    # no biases, a causal mask, an output width of its own
    "cross-causal-nobias": ((5, 4), [
        ("dense", "mem", {"units": 6, "activation": "tanh"}),
        ("dense", "key_in", {"units": 3, "activation": "tanh"}, (INPUT,)),
        ("multi_head_attention", "attn", {"num_heads": 3, "key_dim": 2, "value_dim": 5, "output_dim": 7,
                                          "use_bias": False, "causal": True}, (INPUT, "mem", "key_in")),
        ("flatten", "f", {}),
        ("dense", "out", {"units": 2}),
    ]),
    # a padded batch: the embedding's mask reaches attention (keys at padded steps get weight 0) and the LSTM after it
    "padded-self": ((6,), [
        ("embedding", "emb", {"input_dim": 9, "output_dim": 8, "mask_zero": True}),
        ("multi_head_attention", "attn", {"num_heads": 4, "key_dim": 2}, ("emb", "emb")),
        ("lstm", "lstm", {"units": 5}),
        ("dense", "out", {"units": 2}),
    ]),
    # a padded encoder block read by the mean over each row's valid steps (Keras' GlobalAveragePooling1D under the
    # mask, torch's (h * keep).sum(1) / keep.sum(1)): the padded steps' outputs, which no source defines, are read by
    # nothing
    "padded-pool": ((6,), [
        ("embedding", "emb", {"input_dim": 9, "output_dim": 8, "mask_zero": True}),
        ("multi_head_attention", "attn", {"num_heads": 2, "key_dim": 3}, ("emb", "emb")),
        ("add", "res", {}, ("emb", "attn")),
        ("layer_norm", "norm", {"epsilon": 1e-5}),
        ("global_avg_pool", "pool", {"masked": True}),
        ("dense", "out", {"units": 3}),
    ]),
}  # fmt: skip

_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=25, batch=B)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


def data(m: Model, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    if m.input_dtype.startswith("int"):  # post-padded ids, lengths 6, 4, 1
        ids = g.integers(1, 9, (B, *m.input_shape))
        for b, n in enumerate((6, 4, 1)):
            ids[b, n:] = 0
        return ids
    return g.uniform(-1.0, 1.0, (B, *m.input_shape))


_BUILT: dict[tuple[str, str, str], voices.Built] = {}


def built(voice: str, name: str, dtype: str) -> voices.Built:
    why = unavailable_reason(voice)
    if why is None:
        why = voices.refusal(voice, model(name), dtype)
    if why is not None:
        pytest.skip(f"{voice} {dtype}: {why}")
    key = (voice, name, dtype)
    if key not in _BUILT:
        _BUILT[key] = voices.build(voice, model(name), dtype)
    return _BUILT[key]


def _input(m: Model, seed: int, dtype: str) -> np.ndarray:
    x = data(m, seed)
    return x if m.input_dtype.startswith("int") else x.astype(dtype)


MATRIX = [pytest.param(v, n, d, id=f"{SHORT[v]}-{d}-{n}") for v in voices.VOICES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, name, dtype", MATRIX)
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    x = _input(m, 12, dtype)
    x64 = x if m.input_dtype.startswith("int") else x.astype(np.float64)
    what = f"{SHORT[voice]}-{dtype}-{name}"
    ref = rounded(m, dtype)
    check(b.forward(x), compose.reference_forward(ref, x64), dtype, voice, what=f"{what} forward")
    if b.vjp is None:
        return
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(ref, x64, dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    if dx_ref is not None:
        check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")


def test_padded_keys_get_no_weight_and_the_masked_backward_matches_differences():
    """Changing the embedding of a padded step changes no valid step's attention output (its key has weight 0), and
    the reference's masked backward matches central differences, the attention's weights and the table included."""
    m = model("padded-self")
    sub = m.sub(0, 2)  # embedding -> attention
    ids = data(m, 3)
    y = compose.reference_forward(sub, ids)
    table = np.array(sub.layers[0].weights["embeddings"])
    table[0] += 10.0  # id 0 is the padding's row
    y2 = compose.reference_forward(sub.with_parameters({**sub.parameters(), ("emb", "embeddings"): table}), ids)
    valid = ids != 0
    assert np.max(np.abs(y[valid] - y2[valid])) < 1e-12
    assert np.max(np.abs(y[~valid] - y2[~valid])) > 1e-3  # padded queries do change: they are not compared
    dy = np.random.default_rng(4).uniform(-1.0, 1.0, m.shapes(B)[-1])
    keys = list(m.parameters())
    inputs = {f"{k[0]}.{k[1]}": np.array(a) for k, a in m.parameters().items()}

    def loss(a):
        mm = m.with_parameters({k: a[f"{k[0]}.{k[1]}"] for k in keys})
        return float(np.sum(dy * compose.reference_forward(mm, ids)))

    _, grads = compose.reference_vjp(m, ids, dy)
    for k in keys:
        s = error_stats(grads[k], central_differences(loss, inputs, f"{k[0]}.{k[1]}"))
        assert s.rel <= FD_BAR, f"d/d{k}: {s.rel:.2e}"

