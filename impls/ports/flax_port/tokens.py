"""The Flax port's class_token and position_embedding (issue 25): small linen Modules written into model.py, whose
params are the canonical weights: `ClassToken` (param "token" (1, 1, D), jnp.concatenate of the token broadcast over
the batch, then x) and `PositionEmbedding` (param "embedding" (1, T, D), x + embedding)."""

from __future__ import annotations

from .emit import EMITTERS

CLASS_TOKEN = '''class ClassToken(nn.Module):
    """A trainable (1, 1, D) token, the param "token", put before every row of a (B, T, D) sequence."""

    @nn.compact
    def __call__(self, x):
        token = self.param("token", nn.initializers.zeros, (1, 1, x.shape[-1]), x.dtype)
        return jnp.concatenate([jnp.broadcast_to(token, (x.shape[0], 1, x.shape[-1])), x], axis=1)'''

POSITION_EMBEDDING = '''class PositionEmbedding(nn.Module):
    """A trainable (1, T, D) embedding, the param "embedding", added to a (B, T, D) sequence."""

    @nn.compact
    def __call__(self, x):
        return x + self.param("embedding", nn.initializers.zeros, (1, *x.shape[1:]), x.dtype)'''


@EMITTERS.register("class_token", helper=CLASS_TOKEN)
def class_token(name, opts, in_shape):
    return [f'x = ClassToken(name="{name}")(x)  # a trainable (1, 1, D) token first']


@EMITTERS.register("position_embedding", helper=POSITION_EMBEDDING)
def position_embedding(name, opts, in_shape):
    return [f'x = PositionEmbedding(name="{name}")(x)  # x + a trainable (1, T, D) embedding']


__all__ = ["CLASS_TOKEN", "POSITION_EMBEDDING", "class_token", "position_embedding"]
