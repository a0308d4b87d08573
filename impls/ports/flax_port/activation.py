"""The Flax port's activation and dropout layers.

An activation is one line (nn.relu, nn.softmax on the last axis, jnp.tanh, nn.sigmoid; linear the identity); Dropout
is left out (the identity at inference), with a comment where it stood.
"""

from __future__ import annotations

from .emit import EMITTERS, act


@EMITTERS.register("activation")
def activation(name, opts, in_shape):
    return act(opts) or ["pass  # linear: the identity"]


@EMITTERS.register("dropout")
def dropout(name, opts, in_shape):
    return [f"# dropout (rate {opts['rate']}): the identity at inference, so the port leaves it out"]


__all__ = ["activation", "dropout"]
