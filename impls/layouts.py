"""How a framework holds a canonical tensor: torch's layouts, which the torch importer reads and the torch port writes.

    Layout("nchw").to_torch(x_nhwc)    # a canonical (B, H, W, C) array as torch's (B, C, H, W)
    Layout("chw", (h, w, c))           # a flattened map in torch's (c, h, w) order; `feature` its canonical (h, w, c)

Framework-free (NumPy): the importer and the port share it, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import convert


@dataclass(frozen=True)
class Layout:
    """How one tensor is laid out in torch: 'nchw' (a 4-D map), 'ncw' (a 3-D feature map (B, C, L), what nn.Conv1d
    and nn.BatchNorm1d take), 'chw' (a flattened map in torch's (c, h, w) order, `feature` its canonical (h, w, c); a
    flattened 1-D map is (1, L, C)), 'tbf' (a time-major sequence (T, B, F), what batch_first=False attention takes) or
'plain' (sequences, vectors: the canonical layout itself)."""

    kind: str
    feature: tuple[int, int, int] | None = None

    def to_torch(self, a: np.ndarray) -> np.ndarray:
        """A canonical array -> this layout, with a fresh array's strides, as a user's tensor has: a transposed
        view's (and np.ascontiguousarray's, which keeps a one-channel view's stride 1 on C) read as channels_last
        to torch, whose conv then returns channels_last memory, on which the module's own x.view(B, -1) raises."""
        if self.kind == "nchw":
            return np.array(convert.nhwc_to_nchw(a), order="C")  # copied: every stride the C-order one
        if self.kind == "ncw":
            return np.array(np.asarray(a).transpose(0, 2, 1), order="C")
        if self.kind == "chw":
            h, w, c = self.feature
            return np.ascontiguousarray(a.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(a.shape[0], -1))
        if self.kind == "tbf":  # a time-major sequence (T, B, F): nn.MultiheadAttention's batch_first=False
            return np.ascontiguousarray(np.asarray(a).transpose(1, 0, 2))
        return np.ascontiguousarray(a)

    def to_canonical(self, a: np.ndarray) -> np.ndarray:
        if self.kind == "nchw":
            return convert.nchw_to_nhwc(a)
        if self.kind == "ncw":
            return np.ascontiguousarray(np.asarray(a).transpose(0, 2, 1))
        if self.kind == "chw":
            h, w, c = self.feature
            return np.ascontiguousarray(a.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(a.shape[0], -1))
        if self.kind == "tbf":
            return np.ascontiguousarray(np.asarray(a).transpose(1, 0, 2))
        return np.ascontiguousarray(a)


PLAIN = Layout("plain")


__all__ = ["PLAIN", "Layout"]
