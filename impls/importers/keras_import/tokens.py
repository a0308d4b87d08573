"""class_token and position_embedding (issue 25) from Keras: absent. Keras 3 has no built-in layer for either
(keras_hub's PositionEmbedding and the keras.io ViT example's layers are custom classes, not keras.layers)."""

from __future__ import annotations

from .context import REGISTRY

REGISTRY.absent("class_token", "Keras has no built-in layer that puts a trainable token before a sequence (a ViT's "
                               "class token is a custom layer)")  # fmt: skip
REGISTRY.absent("position_embedding", "Keras has no built-in layer adding a trainable (1, T, D) embedding "
                                      "(keras_hub's PositionEmbedding is not keras.layers)")  # fmt: skip
