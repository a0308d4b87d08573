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

import pytest

from verify.layer_cases import LayerCases

B = 3

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

LAYERS = LayerCases(CASES, seed=37, batch=B)


def test_the_cases_hold_both_kinds_with_the_token_first():
    m = LAYERS.model("vit-block")
    assert {"class_token", "position_embedding"} <= {la.kind for la in m.layers}
    shapes = m.shapes(B)
    assert shapes[m.layer_index("cls") + 1] == (B, 6, 6)  # its output (B, T + 1, D)
    assert m.layers[m.layer_index("pos")].weights["embedding"].shape == (1, 6, 6)


@pytest.mark.parametrize("voice, name, dtype", LAYERS.matrix())
def test_forward_and_gradients_match_the_float64_reference(voice, name, dtype):
    LAYERS.check_forward_and_gradients(voice, name, dtype)
