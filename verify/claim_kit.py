"""What the seed audit's claims are made of: the verdicts, Evidence and Claim, and the helpers and seeded
GRU data the checks share (verify/claims_gru.py, verify/claims_cnn.py; the registry is verify/claims.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from impls import BackendUnavailable, backend
from impls.contract.models import SEED_GRU_INPUT, SEED_GRU_UNITS
from impls.contract.spec import GRUWeights, init_gru, random_array

HOLDS, FAILS, READING = "holds", "fails", "holds only under a stated reading"
VERDICTS = (HOLDS, FAILS, READING)

Number = int | float | str


@dataclass(frozen=True)
class Evidence:
    verdict: str
    summary: str  # one or two English sentences: what the numbers show
    numbers: tuple[tuple[str, str, Number], ...]  # (key, label, value), in reading order
    reading: str | None = None  # the reading under which the claim holds, for READING verdicts

    def __getitem__(self, key: str) -> Number:
        for k, _, v in self.numbers:
            if k == key:
                return v
        raise KeyError(f"no evidence number {key!r}; have {', '.join(k for k, _, _ in self.numbers)}")

    def has(self, key: str) -> bool:
        return any(k == key for k, _, _ in self.numbers)


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    chinese: str
    english: str
    verdict: str  # the verdict the check must reach (test_claims asserts it)
    check: Callable[[], Evidence]

    @property
    def test(self) -> str:
        return f"verify/test_claims.py::test_claim[{self.id}]"


# --------------------------------------------------------------------------- helpers

NOT_MEASURED = "not measured"


def impl_or_none(name: str):
    """A built-in implementation, or None where its framework does not load here."""
    try:
        return backend(name)
    except BackendUnavailable:
        return None


def maxabs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def run_gru(mod, x, w: GRUWeights, variant: str, h0=None) -> np.ndarray:
    native = lambda a: mod.asarray(a, "float64")
    y, _ = mod.gru(native(x), w.map(native), variant, h0=None if h0 is None else native(h0))
    return mod.to_numpy(y)


def shape_str(a) -> str:
    return "(" + ", ".join(str(int(d)) for d in np.shape(a)) + ")"


# The seeded GRU data every GRU claim uses: I != H, non-zero h0, T long enough for the update to matter.
GRU_B, GRU_T, GRU_I, GRU_H = 3, 20, 5, 4


def gru_data():
    x = random_array((GRU_B, GRU_T, GRU_I), 901)
    w = init_gru(GRU_I, GRU_H, seed=902)
    h0 = random_array((GRU_B, GRU_H), 903, low=-0.5, high=0.5)
    return x, w, h0

def seed_layer_sizes() -> list[tuple[int, int]]:
    I, (h1, h2) = SEED_GRU_INPUT[1], SEED_GRU_UNITS
    return [(I, h1), (h1, h2)]
