"""Image layouts and what Flatten makes of them: NHWC <-> NCHW, and the row permutation of the Dense after a Flatten.

- Flatten: Keras flattens NHWC in (h, w, c) order, torch NCHW in (c, h, w) order, so the first Dense
  after a conv stack needs its rows permuted when a model moves between them.
"""

from __future__ import annotations

import numpy as np

from ..contract.spec import ShapeError
from .common import _np


def nhwc_to_nchw(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


def nchw_to_nhwc(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(x, (0, 2, 3, 1)))


def flatten_rows_nhwc_to_nchw(kernel: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """Rows of a Dense kernel that follows Flatten: Keras order (h, w, c) -> torch order (c, h, w)."""
    h, w, c = feature_shape
    kernel = _np(kernel)
    if kernel.shape[0] != h * w * c:
        raise ShapeError(f"dense kernel.shape={kernel.shape} does not follow a flatten of {feature_shape}")
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)


def features_nhwc_to_nchw(y: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """A flattened map's features (B, h*w*c): Keras' order (h, w, c) -> torch's (c, h, w)."""
    h, w, c = feature_shape
    y = _np(y)
    return np.ascontiguousarray(y.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(y.shape))


def features_nchw_to_nhwc(y: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = feature_shape
    y = _np(y)
    return np.ascontiguousarray(y.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(y.shape))


def flatten_rows_nchw_to_nhwc(kernel: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = feature_shape
    kernel = _np(kernel)
    if kernel.shape[0] != h * w * c:
        raise ShapeError(f"dense kernel.shape={kernel.shape} does not follow a flatten of {feature_shape}")
    return kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
