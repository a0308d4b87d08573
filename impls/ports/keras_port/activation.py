"""The Keras port's activation kinds: activation (keras.layers.Activation) and dropout (keras.layers.Dropout; rate 0
in the training step's copy, so that a model with state steps in training mode with dropout off). Both carry a
padding mask, and a channels_first source's 3-D feature map stays one through them."""

from __future__ import annotations

from .emitters import EMITTERS, Site, keras


@EMITTERS.register("activation", keeps_map=True)
def activation(opts: dict, at: Site) -> list:
    return [keras.layers.Activation(opts["activation"], dtype=at.dt, name=at.name)]


@EMITTERS.register("dropout", keeps_map=True)
def dropout(opts: dict, at: Site) -> list:
    return [keras.layers.Dropout(opts["rate"] if at.dropout else 0.0, dtype=at.dt, name=at.name)]


__all__ = ["activation", "dropout"]
