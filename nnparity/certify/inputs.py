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
from impls.contract.tolerance import CALIBRATED_FACTOR, SPREAD_FACTOR, calibrated_tolerance, spread_tolerance
from impls.model.compose import reference_inputs, reference_outputs, reference_vjp
from impls.model.description import Model
from impls.model.layers import spec_of

SEEDS = {"x": 1, "dy": 2, "h0": 3, "targets": 4, "blocks": 5, "ulp": 6}
"""Every random draw's seed: the input, the output cotangent of the gradient check, the GRU initial states, the
training targets, the speed ranking's block orders, and the signs of the one-ulp move (`one_ulp`: the float64
spreads of the forward, the gradients and the training gradient)."""
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
    _spread: dict = field(default_factory=dict, repr=False)  # ulp_spread's per-layer spreads, per dtype, once computed
    _gspread: dict = field(default_factory=dict, repr=False)  # gradient_spread's, per dy
    valid: list[Any] = field(default_factory=list)  # per layer: the (B, T) valid steps where its padded ones are
    # undefined (Model.undefined_steps: compared at the valid steps only), or None

    def compare(self, y: Any, i: int, dtype: str, accumulated: bool = False) -> dict[str, Any]:
        """compare(y, layer i's reference output): at the valid steps only where the sources leave the padded ones
        undefined (the row says so: "steps"). `accumulated` (y computed from the model's input through layers
        0..i): a float32 y over the table's bar is judged by the calibrated bar, CALIBRATED_FACTOR times NumPy's own
        float32 error at that layer (`own_float32`), and where it is over that too, by the larger of that and
        SPREAD_FACTOR times the reference's one-float32-ulp spread there; a float64 one by SPREAD_FACTOR times the
        reference's own one-ulp spread there (`ulp_spread`, `by_spread`). The row says which bar judged it."""
        c = self._compare(y, self.outs[i], i, dtype)
        if not accumulated or c["pass"] or "problem" in c or not np.isfinite(c["error"]):
            return c
        if dtype == "float64":
            return by_spread(c, self.ulp_spread(i))
        if dtype != "float32":
            return c
        own = self.own_float32(i)
        bar = calibrated_tolerance("float32", "accumulated", own) if own is not None else c["bar"]
        said = [f"{CALIBRATED_FACTOR:g} x NumPy's own float32 error"] if own is not None else []
        spread = None
        if c["error"] > bar:  # one float32 sample may be luckier than another: the model's own float32 sensitivity
            spread = self.ulp_spread(i, "float32")
            bar = max(bar, spread_tolerance("float32", spread))
            said.append(f"{SPREAD_FACTOR:g} x the reference's own one-float32-ulp spread")
        return {**c, "bar": bar, "pass": bool(c["error"] <= bar), "table_bar": c["bar"],
                **({"own_float32_error": own} if own is not None else {}),
                **({"ulp_spread": spread} if spread is not None else {}),
                "calibrated": f"the larger of {' and '.join(said)} here" if len(said) > 1 else f"{said[0]} here"}  # fmt: skip

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

    def ulp_spread(self, i: int, dtype: str = "float64") -> float:
        """How far layer i's float64 reference output moves, as compare measures it, when every weight and the input
        move by one ulp of `dtype` (`one_ulp`): the reference's own conditioning there, at that dtype's rounding.
        Every layer's, from one forward, once per dtype."""
        if dtype not in self._spread:
            model, x = one_ulp(self.model, self.x, float(np.finfo(dtype).eps))
            outs = reference_outputs(model, cast(x, "float64"))
            self._spread[dtype] = [self._compare(o, w, j, "float64")["error"]
                                   for j, (o, w) in enumerate(zip(outs, self.outs, strict=True))]  # fmt: skip
        return self._spread[dtype][i]

    def gradient_spread(self, dy: np.ndarray) -> dict[Any, float]:
        """Per gradient ("input", or (layer, weight)): how far the reference's float64 gradient of L = <dy, model(x)>
        moves, relative to its size, when every weight and the input move by one ulp. Computed once per dy."""
        from .checks import compare

        key = dy.tobytes()
        if key not in self._gspread:
            want_dx, want = self.vjp(dy)
            model, x = one_ulp(self.model, self.x)
            dx, moved = reference_vjp(model, cast(x, "float64"), dy)
            out: dict[Any, float] = {k: compare(moved[k], g, "float64")["error"] for k, g in want.items()}
            if dx is not None and want_dx is not None:
                out["input"] = compare(dx, want_dx, "float64")["error"]
            self._gspread = {key: out}
        return self._gspread[key]

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


def one_ulp(model: Model, x: np.ndarray, eps: float = 2.0**-52) -> tuple[Model, np.ndarray]:
    """The model in float64 and its (float) input with every element multiplied by 1 +- eps (2^-52; 2^-23 for a
    float32 ulp), the signs seeded by SEEDS["ulp"]: a relative move of eps (one or two units in the last place), as
    small as rounding itself. Integer inputs (token ids) stay as they are."""
    rng = np.random.default_rng(SEEDS["ulp"])

    def ulp(a):
        a = np.asarray(a, np.float64)
        return a * (1.0 + rng.choice([-1.0, 1.0], a.shape) * eps)

    moved = model.astype("float64").map(ulp)
    return moved, (x if np.issubdtype(np.asarray(x).dtype, np.integer) else ulp(x))


SPREAD_RULE = (f"a float64 check over the table's bar, run from the model's input (the whole forward, every layer "
               f"accumulated, every gradient), is judged by {SPREAD_FACTOR:g} times the reference's own one-ulp spread "
               "there: how far its float64 result moves when every weight and the input move by one unit in the last "
               "place. A backward-stable computation errs like such a move, so a model that amplifies rounding that "
               "much cannot meet the table in any framework. A layer isolated keeps the table's bar")


def by_spread(c: dict[str, Any], spread: float | None) -> dict[str, Any]:
    """A float64 check over the table's bar, judged by spread_tolerance (SPREAD_RULE); unchanged where it passed,
    where it has no number, or where there is no spread to judge it by."""
    if c.get("pass") or "problem" in c or spread is None or not np.isfinite(c.get("error", np.nan)):
        return c
    bar = spread_tolerance("float64", spread)
    return {**c, "bar": bar, "pass": bool(c["error"] <= bar), "table_bar": c["bar"], "ulp_spread": spread,
            "calibrated": f"{SPREAD_FACTOR:g} x the reference's own one-ulp spread here"}  # fmt: skip


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
