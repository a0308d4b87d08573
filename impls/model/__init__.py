"""The model description (impls/model/description.py) and what is built from it: the layer kinds (layers/), any
model over an op-contract backend and the NumPy reference's chain (compose.py), the seed models as two instances
(seed.py), saving and loading a description without pickle (store.py)."""

from .description import Layer, Model, ModelError

__all__ = ["Layer", "Model", "ModelError"]
