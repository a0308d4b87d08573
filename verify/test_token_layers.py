"""Issue 25's Vision Transformer tokens (class_token, position_embedding) in every voice.

    voice (impls.model.voices.VOICES: the four from primitives and the four ports) x dtype (float32, float64) x model
    (CASES): voices.build(...).forward and every gradient (.vjp, where the voice has them: the token's and the
    embedding's included) against compose.reference_forward / reference_vjp, the reference fed the weights and inputs
    the voice holds (rounded to its dtype). A voice that declares a model refused (the Keras port in float64, for
    its MultiHeadAttention) is a skip naming the reason.

The reference's own backward is checked against central differences in verify/test_model_voices.py's TINY; the
torch importer and the planted bugs are tests/test_tokens.py's.
"""

from __future__ import annotations

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.model import compose, seeded, voices
from impls.model.description import Model
from verify.headroom import check

B = 3
DTYPES = ("float32", "float64")

# name: (input shape without the batch, layers)
CASES: dict[str, tuple[tuple[int, ...], list]] = {
    # a ViT in small: patch features embedded, the class token first, the position embedding, a pre-norm attention
    # block with its residual, the class token's output read (x[:, 0]) into a head
    "vit-block": ((5, 4), [
        ("dense", "embed", {"units": 6}),
        ("class_token", "cls", {}),
        ("position_embedding", "pos", {}),
        ("layer_norm", "ln", {"epsilon": 1e-6}),
        ("multi_head_attention", "att", {"num_heads": 2, "key_dim": 3}, ("ln", "ln")),
        ("add", "res", {}, ("att", "pos")),
        ("take_step", "first", {"index": 0}),
        ("dense", "head", {"units": 3}),
    ]),
    # the embedding before the token (its gradient over every step of the sequence), the whole sequence read
    "embedding-then-token": ((4, 3), [
        ("position_embedding", "pos", {}),
        ("class_token", "cls", {}),
        ("dense", "d", {"units": 2, "activation": "tanh"}),
        ("flatten", "f", {}),
    ]),
}  # fmt: skip

_MODELS: dict[str, Model] = {}


def model(name: str) -> Model:
    if name not in _MODELS:
        shape, specs = CASES[name]
        _MODELS[name] = seeded.chain(name, shape, specs, seed=37, batch=B)
    return _MODELS[name]


def rounded(m: Model, dtype: str) -> Model:
    return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))


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


def test_the_cases_hold_both_kinds_with_the_token_first():
    m = model("vit-block")
    assert {"class_token", "position_embedding"} <= {la.kind for la in m.layers}
    shapes = m.shapes(B)
    assert shapes[m.layer_index("cls") + 1] == (B, 6, 6)  # its output (B, T + 1, D)
    assert m.layers[m.layer_index("pos")].weights["embedding"].shape == (1, 6, 6)


MATRIX = [pytest.param(v, n, d, id=f"{SHORT[v]}-{d}-{n}") for v in voices.VOICES for d in DTYPES for n in CASES]


@pytest.mark.parametrize("voice, name, dtype", MATRIX)
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    b, m = built(voice, name, dtype), model(name)
    x = np.random.default_rng(12).uniform(-1.0, 1.0, (B, *m.input_shape)).astype(dtype)
    what = f"{SHORT[voice]}-{dtype}-{name}"
    ref = rounded(m, dtype)
    check(b.forward(x), compose.reference_forward(ref, x.astype(np.float64)), dtype, voice, what=f"{what} forward")
    if b.vjp is None:
        return
    dy = np.random.default_rng(13).uniform(-1.0, 1.0, m.shapes(B)[-1]).astype(dtype)
    dx_ref, g_ref = compose.reference_vjp(ref, x.astype(np.float64), dy.astype(np.float64))
    dx, grads = b.vjp(x, dy)
    assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
    check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
    for key, g in grads.items():
        check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")
