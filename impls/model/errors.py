"""The model description's errors, apart so that the layer kinds (impls/model/layers/) raise them without importing
the description (impls/model/description.py), which asks the kinds and re-exports both."""

from __future__ import annotations

from ..contract.spec import ShapeError


class ModelError(ValueError):
    """A description that cannot be a model: an unknown kind, a bad option, a non-finite or misshapen weight.
    The message names the layer (its position and name) and the offending value."""


__all__ = ["ModelError", "ShapeError"]
