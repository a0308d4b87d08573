"""The harness the layer-family files of verify/ share (test_activation_layers.py, test_elementwise_layers.py,
test_norm_layers.py, test_pool_shape_layers.py, test_initial_state_layers.py, test_token_layers.py):

    voice (impls.model.voices.VOICES) x dtype x model (a file's CASES): voices.build(...).forward and every gradient
    (.vjp, where the voice has them) against compose.reference_forward / reference_vjp at the table's bar
    (verify.headroom.check), the reference fed the weights and inputs the voice holds (rounded to its dtype). A voice
    that is unavailable or declares a model refused is a skip naming the reason.

A file keeps its CASES, its docstring and its family's own tests; what differs between files is a parameter here:
the models' seed, the inputs' range, an in-place adjustment of the inputs (padded rows), the batch.
verify/test_layer_cases.py plants wrong voices and checks that the comparison fails them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from impls import SHORT, unavailable_reason
from impls.model import compose, seeded, voices
from impls.model.description import Model
from verify.headroom import check

DTYPES = ("float32", "float64")
X_SEED, DY_SEED = 12, 13  # the inputs and the output gradient of the matrix's comparisons


class LayerCases:
    """CASES {name: (input shape without the batch, layers[, boundary])} made models by seeded.chain(seed=, batch=)
    (a case without a boundary takes chain's default), built per (voice, name, dtype) once."""

    def __init__(self, cases: dict[str, tuple], seed: int, batch: int = 3, inputs: tuple[float, float] = (-1.0, 1.0),
                 adjust: Callable[[Model, np.ndarray], None] | None = None, dtypes: tuple[str, ...] = DTYPES):  # fmt: skip
        self.cases, self.seed, self.batch, self.dtypes = cases, seed, batch, dtypes
        self.inputs, self.adjust = inputs, adjust
        self._models: dict[str, Model] = {}
        self._built: dict[tuple[str, str, str], voices.Built] = {}

    def model(self, name: str) -> Model:
        if name not in self._models:
            shape, specs, *boundary = self.cases[name]
            kw = {"boundary": boundary[0]} if boundary else {}
            self._models[name] = seeded.chain(name, shape, specs, seed=self.seed, batch=self.batch, **kw)
        return self._models[name]

    @staticmethod
    def rounded(m: Model, dtype: str) -> Model:
        """The model with every weight rounded to `dtype` (what the voice holds), in float64."""
        return m.map(lambda a: np.asarray(a).astype(dtype).astype(np.float64))

    def data(self, m: Model, seed: int) -> np.ndarray:
        """(batch, *input shape) uniform in `inputs`, float64, then `adjust`ed in place."""
        x = np.random.default_rng(seed).uniform(*self.inputs, (self.batch, *m.input_shape))
        if self.adjust is not None:
            self.adjust(m, x)
        return x

    def built(self, voice: str, name: str, dtype: str) -> voices.Built:
        """voices.build of the case, or a skip naming why the voice is unavailable or refuses it."""
        why = unavailable_reason(voice)
        if why is None:
            why = voices.refusal(voice, self.model(name), dtype)
        if why is not None:
            pytest.skip(f"{voice} {dtype}: {why}")
        key = (voice, name, dtype)
        if key not in self._built:
            self._built[key] = voices.build(voice, self.model(name), dtype)
        return self._built[key]

    def matrix(self) -> list:
        """(voice, name, dtype) params with ids like np-float32-<name>, voice-major, then dtype, then case."""
        ids = [(v, d, n) for v in voices.VOICES for d in self.dtypes for n in self.cases]
        return [pytest.param(v, n, d, id=f"{SHORT[v]}-{d}-{n}") for v, d, n in ids]

    def check_forward_and_gradients(self, voice: str, name: str, dtype: str) -> None:
        """The voice's forward, dL/dx and every parameter's gradient (and no others) against the float64 reference of
        the model rounded to `dtype`, on the same inputs."""
        b, m = self.built(voice, name, dtype), self.model(name)
        x = self.data(m, X_SEED).astype(dtype)
        what = f"{SHORT[voice]}-{dtype}-{name}"
        ref = self.rounded(m, dtype)
        y_ref = compose.reference_forward(ref, x.astype(np.float64))
        check(b.forward(x), y_ref, dtype, voice, what=f"{what} forward")
        if b.vjp is None:
            return
        dy = np.random.default_rng(DY_SEED).uniform(-1.0, 1.0, m.shapes(self.batch)[-1]).astype(dtype)
        dx_ref, g_ref = compose.reference_vjp(ref, x.astype(np.float64), dy.astype(np.float64))
        dx, grads = b.vjp(x, dy)
        assert sorted(grads) == sorted(m.parameters()), f"{what}: gradients for {sorted(grads)}"
        check(dx, dx_ref, dtype, voice, what=f"{what} dL/dx")
        for key, g in grads.items():
            check(g, g_ref[key], dtype, voice, what=f"{what} dL/d{key[0]}.{key[1]}")
