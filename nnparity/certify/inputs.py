"""The certificate's seeded inputs and the NumPy float64 reference run on them.

    data = inputs(model, batch)            # {"x": ..., "dy": ...}
    ref = Reference.of(model, data["x"])   # every layer's input and output in float64

Inputs are uniform in [-1, 1] (or token ids inside the first embedding's table), seeded by SEEDS; a model that reads
a padding mask gets a post-padded batch of different lengths. The reference keeps every layer's output for the whole
certificate: every voice's comparisons read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from impls.contract.spec import random_array
from impls.contract.tolerance import CALIBRATED_FACTOR, calibrated_tolerance
from impls.model.compose import reference_inputs, reference_outputs, reference_vjp
from impls.model.description import Model
from impls.model.layers import spec_of

SEEDS = {"x": 1, "dy": 2, "h0": 3, "targets": 4, "blocks": 5, "ulp": 6}
"""Every random draw's seed: the input, the output cotangent of the gradient check, the GRU initial states, the
training targets, the speed ranking's block orders, and the signs of the training gradient's one-ulp perturbation."""
INPUT_RANGE = (-1.0, 1.0)
TOKEN_RANGE = (0, 10)  # integer inputs (token ids): uniform integers, in the source's dtype


def lengths(batch: int, T: int) -> np.ndarray:
    """A padded batch's lengths: the first row full, the others shorter and different (never 0: torch's
    pack_padded_sequence refuses an empty row, so a certificate that every port can take has none)."""
    return np.array([T] + [max(1, T - 1 - (b * max(T - 1, 1)) // max(batch - 1, 1)) for b in range(1, batch)][: batch - 1])


def padded(model: Model) -> bool:
    """The model reads a padding mask (an embedding with mask_zero, a masking layer)."""
    return any(s is not None for s in model.mask_sources())


def inputs(model: Model, batch: int) -> dict[str, np.ndarray]:
    """Seeded, non-symmetric inputs: x (uniform in INPUT_RANGE, or token ids inside the first embedding's table),
    dy for the gradients. A model that reads a padding mask (an embedding with mask_zero, a masking layer) gets a
    post-padded batch of different lengths (`lengths`), padded with id 0 or the mask value."""
    shape = (batch, *model.input_shape)
    first = model.layers[0]
    opts = spec_of(first.kind).options(first.options)
    g = np.random.default_rng(SEEDS["x"])
    if np.issubdtype(np.dtype(model.input_dtype), np.integer):
        hi = min(TOKEN_RANGE[1], opts["input_dim"]) if first.kind == "embedding" else TOKEN_RANGE[1]
        lo = 1 if first.kind == "embedding" and opts["mask_zero"] else TOKEN_RANGE[0]
        x = g.integers(lo, max(hi, lo + 1), shape).astype(model.input_dtype)
    else:
        x = random_array(shape, SEEDS["x"], "float64", *INPUT_RANGE)
    if first.kind in ("masking", "embedding") and (first.kind == "masking" or opts["mask_zero"]):
        pad = 0 if first.kind == "embedding" else opts["mask_value"]
        valid = np.arange(shape[1])[None, :] < lengths(batch, shape[1])[:, None]
        x = np.where(valid.reshape(valid.shape + (1,) * (x.ndim - 2)), x, pad).astype(x.dtype)
    out_shape = model.shapes(batch)[-1]
    return {"x": x, "dy": random_array(out_shape, SEEDS["dy"], "float64", *INPUT_RANGE)}


def described(model: Model, x: np.ndarray, batch: int) -> dict[str, Any]:
    """The certificate's "inputs" section: how every array was drawn."""
    return {"batch": batch, "shape": list(x.shape), "dtype": str(x.dtype), "seeds": dict(SEEDS),
            "x": (f"impls.contract.spec.random_array(shape, seed={SEEDS['x']}) uniform in {list(INPUT_RANGE)}"
                  if x.dtype.kind == "f" else f"uniform integers in {list(TOKEN_RANGE)} (and inside the first "
                  f"embedding's table), seed {SEEDS['x']}")
            + (f"; post-padded to lengths {lengths(batch, model.input_shape[0]).tolist()}" if padded(model) else ""),
            "dy": f"uniform in {list(INPUT_RANGE)} of the output's shape, seed {SEEDS['dy']}"}  # fmt: skip


def cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)


@dataclass
class Reference:
    model: Model  # float64
    x: np.ndarray
    ins: list[Any]  # what layer i reads: an array, or a list of them for a merge
    outs: list[np.ndarray]  # what layer i returns
    _vjp: dict = field(default_factory=dict, repr=False)
    _own32: list | None = field(default=None, repr=False)  # own_float32's per-layer errors, once computed
    valid: list[Any] = field(default_factory=list)  # per layer: the (B, T) valid steps where its padded ones are
    # undefined (Model.undefined_steps: compared at the valid steps only), or None

    def compare(self, y: Any, i: int, dtype: str, accumulated: bool = False) -> dict[str, Any]:
        """compare(y, layer i's reference output): at the valid steps only where the sources leave the padded ones
        undefined (the row says so: "steps"). `accumulated` (y computed from the model's input through layers
        0..i): a float32 y over the table's bar is judged by the calibrated bar, CALIBRATED_FACTOR times NumPy's own
        float32 error at that layer (`own_float32`), and says so (impls/contract/tolerance.py CALIBRATED_WORKS)."""
        c = self._compare(y, self.outs[i], i, dtype)
        if not accumulated or dtype != "float32" or c["pass"] or "problem" in c or not np.isfinite(c["error"]):
            return c
        own = self.own_float32(i)
        if own is None:
            return c
        bar = calibrated_tolerance("float32", "accumulated", own)
        return {**c, "bar": bar, "pass": bool(c["error"] <= bar), "table_bar": c["bar"], "own_float32_error": own,
                "calibrated": f"{CALIBRATED_FACTOR:g} x NumPy's own float32 error here"}  # fmt: skip

    def _compare(self, y: Any, want: np.ndarray, i: int, dtype: str) -> dict[str, Any]:
        from .checks import compare

        v = self.valid[i] if self.valid else None
        if v is None or y is None or np.shape(y)[:2] != v.shape:
            return compare(y, want, dtype)
        return {**compare(np.asarray(y)[v], want[v], dtype), "steps": "valid"}

    def own_float32(self, i: int) -> float | None:
        """NumPy's own float32 error at layer i, run from the input (impls/primitives/numpy_impl, the reference's own
        code in float32, every layer's output from one forward, computed once): how far float32 itself is from
        float64 there. None where NumPy cannot compute the model in float32."""
        if self._own32 is None:
            from impls.model import voices

            from .checks import attempt

            built, problem = attempt(voices.build, "numpy", self.model.astype("float32"), "float32")
            outs, problem = (None, problem) if problem else attempt(built.outputs, cast(self.x, "float32"))
            self._own32 = [None] * len(self.outs) if problem or outs is None else [
                self._compare(o, w, j, "float32")["error"] for j, (o, w) in enumerate(zip(outs, self.outs, strict=True))]
        return self._own32[i]

    def vjp(self, dy: np.ndarray) -> tuple[np.ndarray | None, dict[tuple[str, str], np.ndarray]]:
        """The reference's hand-written backward for L = <dy, model(x)>, computed once for every voice."""
        key = dy.tobytes()
        if key not in self._vjp:
            self._vjp = {key: reference_vjp(self.model, cast(self.x, "float64"), dy)}
        return self._vjp[key]

    def forget_vjp(self) -> None:
        """Free the cached backward (as large as the model's parameters in float64); `vjp` computes it again."""
        self._vjp = {}

    @classmethod
    def of(cls, model: Model, x: np.ndarray) -> Reference:
        m = model.astype("float64")
        outs = reference_outputs(m, cast(x, "float64"))
        ins = reference_inputs(m, cast(x, "float64"), outs)
        return cls(m, x, ins, outs, valid=valid_steps(m, x, ins))


def valid_steps(model: Model, x: np.ndarray, ins: list[Any]) -> list[Any]:
    """Per layer, the (B, T) bool valid steps where Model.undefined_steps says its padded steps are undefined (the
    mask its source layer makes from what it reads), else None."""
    from impls.primitives import numpy_impl

    made: dict[int, np.ndarray] = {}
    out: list[Any] = []
    for s in model.undefined_steps():
        if s is not None and s not in made:
            la = model.layers[s]
            kind = spec_of(la.kind)
            opts = kind.options(la.options)
            made[s] = np.asarray(kind.forward_masked(numpy_impl, ins[s], None, opts, kind.op_weights(opts, dict(la.weights)))[1], bool)
        out.append(None if s is None else made[s])
    return out


def defined_dy(ref: Reference, dy: np.ndarray) -> np.ndarray:
    """The output cotangent, zero at the output's padded steps where the sources leave them undefined (so the
    gradients read only what is defined); dy itself otherwise."""
    v = ref.valid[-1] if ref.valid else None
    return dy if v is None else dy * v.reshape(v.shape + (1,) * (dy.ndim - 2))


def undefined_described(model: Model, ref: Reference) -> dict[str, Any] | None:
    """The certificate's statement of which positions were compared, where the sources leave padded steps undefined."""
    undefined = model.undefined_steps()
    rows = [i for i, s in enumerate(undefined) if s is not None]
    if not rows:
        return None
    src = undefined[rows[0]]
    lengths_ = ref.valid[rows[0]].sum(axis=1).tolist() if ref.valid else None
    names = [model.layers[i].name for i in rows]
    return {"layers": rows, "names": names, "mask_source": {"index": src, "name": model.layers[src].name},
            "lengths": lengths_,
            "compared": "the valid steps only (t < the row's length); the padded steps' outputs are excluded",
            "why": "a padding mask reaches an attention: at a padded query step the sources differ (torch's slow path "
                   "attends the valid keys, its nested-tensor fast path writes zeros, Keras masks the query row and "
                   "weighs every key alike), so no framework defines those outputs",
            "output": ("compared at the valid steps only (the gradients' dy is zero at its padded steps)"
                       if undefined[-1] is not None else
                       "compared whole: the layers after them read the valid steps only (a masked mean)")}


__all__ = [
    "INPUT_RANGE",
    "SEEDS",
    "TOKEN_RANGE",
    "Reference",
    "cast",
    "defined_dy",
    "described",
    "inputs",
    "lengths",
    "padded",
    "undefined_described",
    "valid_steps",
]
