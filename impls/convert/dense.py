"""Dense kernels: canonical (in, out); torch.nn.Linear weight (out, in). (Keras' and Flax's are the canonical one.)"""

from __future__ import annotations

import numpy as np

from .common import _np


def dense_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(in, out) -> nn.Linear weight (out, in)."""
    return np.ascontiguousarray(_np(kernel).T)


def dense_from_torch(weight: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(_np(weight).T)
