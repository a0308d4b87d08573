"""The Flax port's embedding and masking layers: what makes the padding mask a recurrent layer reads.

Embedding is nn.Embed (jnp.take: an out-of-range id would give NaN or wrap; the voice refuses such ids at its
boundary, Model.check_input). With mask_zero, and for Masking (a multiply by the mask), the generated code computes
each row's `lengths` as the mask's sum (impls/ports/flax_port/recurrent.py reads them), which holds only for
post-padded masks: the port refuses a mask made after the first layer, where the boundary check cannot see it.
"""

from __future__ import annotations

from ...model.description import Model
from ...model.layers import spec_of
from .emit import EMITTERS, declared


def first_mask(model: Model, index: int, opts: dict, dtype: str) -> str | None:
    """A padding mask is computable as lengths only where the boundary check verifies it: at layer 0."""
    kind = model.layers[index].kind
    if index > 0 and spec_of(kind).makes_mask(opts, False):
        return ("a padding mask made after the first layer: the port computes each row's valid length as the "
                "mask's sum, which holds only for the post-padded masks that the model's boundary check "
                "(Model.check_input) verifies at layer 0")
    return declared(kind, dtype)


@EMITTERS.register("embedding", check=first_mask)
def embedding(name, opts, in_shape):
    lines = []
    if opts["mask_zero"]:
        lines.append("lengths = jnp.sum(x != 0, axis=1)  # mask_zero: id 0 is padding, each row's valid ids first")
    return [*lines, f'x = nn.Embed({opts["input_dim"]}, {opts["output_dim"]}, name="{name}")(x)  # ids (B, T) -> rows']


@EMITTERS.register("masking", check=first_mask)
def masking(name, opts, in_shape):
    v = opts["mask_value"]
    return [f"mask = jnp.any(x != {v!r}, axis=-1)  # a step is padding when all its features are {v!r}",
            "lengths = jnp.sum(mask, axis=1)  # each row's valid steps first",
            "x = x * mask[:, :, None].astype(x.dtype)  # the padded steps zeroed, as Keras' Masking outputs"]


__all__ = ["embedding", "first_mask", "masking"]
