"""What the converter modules of impls/convert/ share: `_np` (an array as NumPy) and `package()`, the package itself.

Tests plant bugs with `monkeypatch.setattr(convert, name, ...)` on the package. When convert was one module, a
converter that used another one (or a constant) by its bare name saw the planted one; a converter that a test relies
on for that looks the other up on `package()` at call time, so it still does: gru_grads_from_keras (gru_from_keras),
lstm_grads_from_keras (lstm_from_keras) and lstm_to_onnx (ONNX_LSTM_FROM_CANON).
"""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np


def _np(a) -> np.ndarray:
    return np.asarray(a)


def package() -> ModuleType:
    """impls.convert, as tests see it (a name they monkeypatch there is the one returned)."""
    return sys.modules[__package__]
