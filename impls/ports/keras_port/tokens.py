"""The Keras port's class_token and position_embedding (issue 25): refused. Keras 3 has no built-in layer that holds
a trainable tensor of its own and concatenates it before, or adds it to, its input (keras_hub's PositionEmbedding and
the keras.io ViT example's custom layers are not keras.layers); the near misses compute something else when trained:
an EinsumDense with an identity kernel and a (T, D) bias adds the embedding exactly, but trains the identity kernel
too, so the port's training step would move a weight the source does not have."""

from __future__ import annotations

from .emitters import EMITTERS

_WHY = ("Keras has no built-in layer that holds its own trainable {what} (keras_hub's PositionEmbedding and custom "
        "layers are not keras.layers; an EinsumDense with an identity kernel would train that kernel too)")
EMITTERS.refuse("class_token", _WHY.format(what="(1, 1, D) token put before the sequence"))
EMITTERS.refuse("position_embedding", _WHY.format(what="(1, T, D) embedding added to the sequence"))
