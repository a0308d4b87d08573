"""The Flax port's multi_head_attention (issue 25): readable linen code, an `Attention` Module written into model.py
whose params are the description's own (query_kernel (E, H, dk), query_bias (H, dk), key_kernel (E, H, dk) with no
key bias, value_kernel (E, H, dv), value_bias (H, dv), output_kernel (H, dv, Eo), output_bias (Eo,)), the scores
written out: q / sqrt(dk) . k, -inf where a query may not attend (causal: later keys; padded keys past `lengths`),
softmax over the keys. flax.linen.MultiHeadDotProductAttention is not used: it ties the value's head size to the
key's (qkv_features) and holds a key bias.
"""

from __future__ import annotations

from .emit import EMITTERS

ATTENTION = '''class Attention(nn.Module):
    """Multi-head attention, its params as the description holds them: query/key/value kernels (E, H, d), query and
    value biases (H, d) (no key bias: softmax ignores one), output kernel (H, dv, Eo) and bias (Eo,)."""

    heads: int
    key_dim: int
    value_dim: int
    out: int
    use_bias: bool = True
    causal: bool = False

    @nn.compact
    def __call__(self, query, value, key, lengths=None):
        h, dk, dv, dt = self.heads, self.key_dim, self.value_dim, query.dtype
        q = jnp.einsum("bte,ehd->bhtd", query, self.param("query_kernel", nn.initializers.zeros, (query.shape[-1], h, dk), dt))
        k = jnp.einsum("bse,ehd->bhsd", key, self.param("key_kernel", nn.initializers.zeros, (key.shape[-1], h, dk), dt))
        v = jnp.einsum("bse,ehd->bhsd", value, self.param("value_kernel", nn.initializers.zeros, (value.shape[-1], h, dv), dt))
        if self.use_bias:
            q = q + self.param("query_bias", nn.initializers.zeros, (h, dk), dt)[:, None, :]
            v = v + self.param("value_bias", nn.initializers.zeros, (h, dv), dt)[:, None, :]
        scores = jnp.einsum("bhtd,bhsd->bhts", q * dk ** -0.5, k)  # (B, H, Tq, Tk), scaled once
        keep = jnp.ones(scores.shape[-2:], bool)
        if self.causal:
            keep = jnp.tril(keep)  # a query attends to itself and earlier keys
        keep = keep[None, None]
        if lengths is not None:  # padded keys (t >= lengths[b]) are not attended
            keep = keep & (jnp.arange(scores.shape[-1])[None, :] < lengths[:, None])[:, None, None, :]
        weights = jax.nn.softmax(jnp.where(keep, scores, -jnp.inf), axis=-1)
        o = jnp.einsum("bhts,bhsd->bthd", weights, v)
        y = jnp.einsum("bthd,hdo->bto", o, self.param("output_kernel", nn.initializers.zeros, (h, dv, self.out), dt))
        return y + self.param("output_bias", nn.initializers.zeros, (self.out,), dt) if self.use_bias else y'''


@EMITTERS.register("multi_head_attention", helper=ATTENTION, masked=True)
def attention(name, opts, in_shape, ins, masked=False):
    q, v = ins[0], ins[1]
    k = ins[2] if len(ins) == 3 else v
    eo = opts["output_dim"] or in_shape[0][-1]
    dv = opts["value_dim"] or opts["key_dim"]
    mod = (f'Attention({opts["num_heads"]}, {opts["key_dim"]}, {dv}, {eo}, use_bias={opts["use_bias"]}, '
           f'causal={opts["causal"]}, name="{name}")')
    return [f"x = {mod}({q}, {v}, {k}{', lengths' if masked else ''})  # query, value, key"]


__all__ = ["ATTENTION", "attention"]
