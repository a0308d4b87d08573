"""Weight re-parameterisations between GRU variants (framework-free).

`chung` (Chung et al. 2014: h_t = (1 - z) h_{t-1} + z h~) and `reset_before` (Cho et al. 2014:
h_t = z h_{t-1} + (1 - z) h~) are one family: since sigmoid(-a) = 1 - sigmoid(a), negating every
parameter that feeds the update gate z turns one into the other exactly.
"""

from __future__ import annotations

import numpy as np

from .spec import GRUWeights


def flip_update_gate(w: GRUWeights) -> GRUWeights:
    """Negate the z block (first H columns) of W, U, b_x and b_h: z -> 1 - z."""
    H = int(np.asarray(w.U).shape[0])

    def neg_z(a):
        a = np.array(a, copy=True)
        a[..., :H] = -a[..., :H]
        return a

    return w.map(neg_z)
