"""The value the walk follows, as the graph holds it.

The graph computes in its own layouts; the description is canonical. Every computed tensor is tracked as a `Value`:
which canonical axis each of the tensor's axes holds (None for an inserted size-1 axis), so Transposes, Squeezes and
Unsqueezes are bookkeeping, not layers. A Flatten of an NCHW map flattens (c, h, w): the value carries `rows`, and
the next Dense's rows are permuted to the canonical (h, w, c) order (convert.flatten_rows_nchw_to_nhwc); where the
graph returns it, the source's outputs are read back in (h, w, c) order and the ports return (c, h, w) again
(Model.flattened_output).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ... import convert

NCHW = (0, 3, 1, 2)  # an image's axes as ONNX holds it: axis k holds canonical (NHWC) axis NCHW[k]
NCW = (0, 2, 1)  # a 1-D map's (B, C, L)
CHANNELS_FIRST = {3: NCW, 4: NCHW}


@dataclass(frozen=True)
class Value:
    """The chain's value as the graph holds it: tensor `name`, whose axis k holds canonical axis axes[k] (None for an
    inserted size-1 axis). `rows`: (h, w, c) where the value is an NCHW map flattened in (c, h, w) order."""

    name: str
    axes: tuple[int | None, ...]
    rows: tuple[int, int, int] | None = None

    @property
    def rank(self) -> int:  # the canonical rank
        return sum(a is not None for a in self.axes)

    def to_canonical(self, a: np.ndarray) -> np.ndarray:
        real = [k for k, ax in enumerate(self.axes) if ax is not None]
        a = np.asarray(a).reshape([a.shape[k] for k in real])
        a = np.transpose(a, np.argsort([self.axes[k] for k in real]))
        if self.rows is not None:  # (c, h, w) columns -> (h, w, c): the rows' converter on the transpose
            a = convert.flatten_rows_nchw_to_nhwc(a.T, self.rows).T
        return np.ascontiguousarray(a)

    def from_canonical(self, x: np.ndarray) -> np.ndarray:
        """A canonical input in this value's layout (for the graph's input: no singleton axes, no rows)."""
        return np.ascontiguousarray(np.transpose(x, [a for a in self.axes if a is not None]))


__all__ = ["CHANNELS_FIRST", "NCHW", "NCW", "Value"]
