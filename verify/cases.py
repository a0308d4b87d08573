"""The verification matrix as data: operations, sample inputs, implementations, dtypes.

One OpCase is an operation on one set of seeded inputs; `matrix()` crosses cases with every
implementation that offers the operation and every dtype, and names each test like
`gru-tf-float32-reset_after-B3T7I5H4`. Test bodies (test_forward.py, ...) run the whole matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from impls import GRU_VARIANTS, IMPLEMENTATIONS, SHORT
from impls.contract import limits
from impls.contract.spec import VARIANTS, init_conv, init_dense, init_gru, random_array
from impls.model import seed as seed_models
from impls.model import voices as model_voices

DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class OpCase:
    op: str  # the contract's function name, also the tolerance table's `work`
    label: str  # sizes and options, e.g. "B3T7I5H4-h0"
    make: Callable[[], dict[str, Any]]  # seeded float64 NumPy inputs
    call: Callable[[Any, dict[str, Any]], Any]  # (implementation module, native inputs) -> output(s)
    variant: str | None = None
    impls: tuple[str, ...] = tuple(IMPLEMENTATIONS)
    marks: tuple = field(default_factory=tuple)
    options: dict[str, Any] = field(default_factory=dict)  # stride, padding ...: what impls.contract.limits asks about
    ops_inside: tuple[str, ...] = ()  # a model's layers' ops: the model is refused where one of them is

    def id(self, impl: str, dtype: str) -> str:
        parts = [self.op, SHORT[impl], dtype] + ([self.variant] if self.variant else []) + [self.label]
        return "-".join(parts)


def outputs(mod, out) -> list[np.ndarray]:
    return [mod.to_numpy(o) for o in (out if isinstance(out, tuple) else (out,))]


def matrix(cases: list[OpCase], dtypes=DTYPES, impls=None) -> list:
    """pytest params (case, impl, dtype) with readable ids. NumPy float64 is the reference itself and
    is left out: comparing it with itself could not fail (verify/test_reference.py checks it instead).
    So are the triples a voice declares it cannot compute (impls.contract.limits: options, dtypes, gradients;
    verify/test_conv_options.py and verify/test_limits.py check that each of those is refused, not computed)."""
    return [
        pytest.param(c, impl, dt, id=c.id(impl, dt), marks=c.marks)
        for c in cases
        for impl in (impls or c.impls)
        if impl in c.impls
        for dt in dtypes
        if not (impl == "numpy" and dt == "float64") and limits.refusal(impl, c.op, dt, **c.options) is None
        and all(limits.refusal(impl, op, dt) is None for op in c.ops_inside)
    ]


def voices(op: str, dtype: str = "float64", impls=None) -> list:
    """pytest params, one per voice, for a test of `op` outside the matrix; a voice that declares it cannot
    compute `op` (impls.contract.limits) is a skip with its reason."""
    out = []
    for impl in impls or IMPLEMENTATIONS:
        why = limits.refusal(impl, op, dtype)
        out.append(pytest.param(impl, id=SHORT[impl], marks=() if why is None else pytest.mark.skip(reason=f"declared: {why}")))
    return out


def refused(cases: list[OpCase]) -> list:
    """pytest params (case, impl) of the pairs that impls.contract.limits declares refused."""
    return [pytest.param(c, impl, id=c.id(impl, "float64")) for c in cases for impl in c.impls
            if limits.refusal(impl, c.op, **c.options) is not None]  # fmt: skip


# --------------------------------------------------------------------------- GRU

GRU_SIZES = [  # (B, T, I, H, with h0): I != H everywhere; T = 1 and B = 1 included
    (3, 7, 5, 4, False),
    (3, 7, 5, 4, True),
    (1, 1, 3, 6, False),
    (1, 1, 3, 6, True),
    (2, 12, 9, 16, True),
    (4, 3, 1, 2, False),
]


def _gru_case(B, T, I, H, with_h0, variant, seed):
    def make():
        d = {"x": random_array((B, T, I), seed), "weights": init_gru(I, H, seed + 1)}
        if with_h0:
            d["h0"] = random_array((B, H), seed + 2, low=-0.8, high=0.8)
        return d

    return OpCase(
        op="gru",
        label=f"B{B}T{T}I{I}H{H}" + ("-h0" if with_h0 else ""),
        make=make,
        call=lambda m, a: m.gru(a["x"], a["weights"], variant, h0=a.get("h0")),
        variant=variant,
        impls=tuple(i for i, vs in GRU_VARIANTS.items() if variant in vs),
    )


GRU_CASES = [_gru_case(*s, v, seed=10 * n) for n, s in enumerate(GRU_SIZES) for v in VARIANTS]

# --------------------------------------------------------------------------- conv2d, pooling, dense

CONV_SIZES = [  # (B, H, W, C, KH, KW, O, stride, padding): odd sizes, non-square, C != O
    (2, 7, 9, 3, 3, 3, 4, 1, "valid"),
    (2, 7, 9, 3, 3, 3, 4, 1, "same"),
    (1, 8, 7, 2, 3, 2, 5, 2, "valid"),
    (1, 8, 7, 2, 3, 2, 5, 2, "same"),
    (2, 11, 10, 1, 5, 4, 3, (3, 2), "same"),
    (3, 6, 5, 4, 1, 1, 2, 1, "valid"),
    (1, 9, 9, 2, 4, 4, 3, 3, "same"),
]


def _st(s):
    return f"s{s}" if isinstance(s, int) else f"s{s[0]}x{s[1]}"


def _conv_case(B, H, W, C, KH, KW, O, stride, padding, seed):
    def make():
        k = init_conv(KH, KW, C, O, seed + 1)
        return {"x": random_array((B, H, W, C), seed), "kernel": k.kernel, "bias": k.bias}

    return OpCase(
        op="conv2d",
        label=f"B{B}H{H}W{W}C{C}K{KH}x{KW}O{O}-{_st(stride)}-{padding}",
        make=make,
        call=lambda m, a: m.conv2d(a["x"], a["kernel"], a["bias"], stride=stride, padding=padding),
    )


CONV_CASES = [_conv_case(*s, seed=100 + 10 * n) for n, s in enumerate(CONV_SIZES)]

POOL_SIZES = [  # (B, H, W, C, pool, stride, padding)
    (2, 6, 8, 3, 2, None, "valid"),
    (2, 7, 9, 3, 2, None, "valid"),
    (2, 7, 9, 3, 2, None, "same"),
    (1, 9, 8, 2, 3, 2, "valid"),
    (1, 9, 8, 2, 3, 2, "same"),
    (1, 5, 7, 4, (2, 3), 1, "valid"),
]


def _pool_case(B, H, W, C, pool, stride, padding, seed):
    p = f"p{pool}" if isinstance(pool, int) else f"p{pool[0]}x{pool[1]}"
    return OpCase(
        op="max_pool2d",
        label=f"B{B}H{H}W{W}C{C}-{p}-{_st(stride) if stride else 'sNone'}-{padding}",
        make=lambda: {"x": random_array((B, H, W, C), seed)},
        call=lambda m, a: m.max_pool2d(a["x"], pool, stride=stride, padding=padding),
    )


POOL_CASES = [_pool_case(*s, seed=200 + 10 * n) for n, s in enumerate(POOL_SIZES)]


def _dense_case(shape, n_out, seed):
    def make():
        d = init_dense(shape[-1], n_out, seed + 1)
        return {"x": random_array(shape, seed), "kernel": d.kernel, "bias": d.bias}

    return OpCase(
        op="dense",
        label="x" + "x".join(map(str, shape)) + f"-out{n_out}",
        make=make,
        call=lambda m, a: m.dense(a["x"], a["kernel"], a["bias"]),
    )


DENSE_CASES = [_dense_case((4, 7), 3, 300), _dense_case((1, 5), 9, 310), _dense_case((2, 3, 6), 4, 320)]


def _act_case(op, shape, seed, scale=3.0):
    return OpCase(
        op=op,
        label="x" + "x".join(map(str, shape)),
        make=lambda: {"x": random_array(shape, seed, low=-scale, high=scale)},
        call=lambda m, a: getattr(m, op)(a["x"]),
    )


ACT_CASES = [_act_case("relu", (4, 9), 400), _act_case("softmax", (5, 7), 410), _act_case("softmax", (2, 3, 4), 420, 30.0)]

# --------------------------------------------------------------------------- the seed's 1-D equations


def _seed1d_cases(B, L, C, K, seed):
    def make():
        return {"x": random_array((B, L, C), seed), "w": random_array((K, C), seed + 1), "b": random_array((C,), seed + 2)}

    label = f"B{B}L{L}C{C}K{K}"
    return [
        OpCase("seed_conv1d", label, make, lambda m, a: m.seed_conv1d(a["x"], a["w"], a["b"])),
        OpCase("seed_pool1d", f"B{B}L{L}C{C}", lambda: {"y": random_array((B, L, C), seed + 3)},
               lambda m, a: m.seed_pool1d(a["y"])),
    ]  # fmt: skip


SEED1D_CASES = _seed1d_cases(2, 11, 3, 4, 500) + _seed1d_cases(1, 5, 1, 5, 510) + _seed1d_cases(3, 2, 4, 1, 520)

# --------------------------------------------------------------------------- the seed models


def model_call(m, a) -> Any:
    """A model description through the general path: `m`'s voice builds a["model"] (its weights arrive as m's arrays,
    read back to NumPy) in x's dtype and runs it on a["x"]; the output comes back as m's array."""
    x = m.to_numpy(a["x"])
    model = a["model"].map(lambda w: np.asarray(m.to_numpy(w)))
    y = model_voices.build(m.NAME, model, str(x.dtype)).forward(x)
    return m.asarray(y, str(x.dtype))


def _seed_gru_model_case(B, variant, seed, small=False):
    kw = {"input_size": 7, "units": (6, 5), "classes": 4, "seq_len": 9} if small else {}
    T, I = (9, 7) if small else (100, 64)

    def make():
        return {"x": random_array((B, T, I), seed), "model": seed_models.seed_gru(seed + 1, variant=variant, **kw)}

    return OpCase(
        op="seed_gru_model",
        label=f"B{B}" + ("-small" if small else "-seed"),
        make=make,
        call=model_call,
        variant=variant,
        ops_inside=seed_models.OPS["seed_gru_model"],
        impls=tuple(i for i, vs in GRU_VARIANTS.items() if variant in vs),
    )


def _seed_cnn_model_case(B, seed, small=False):
    kw = {"image": (14, 12, 2), "filters": (3, 4), "dense_units": 6, "classes": 5} if small else {}
    shape = kw.get("image", (28, 28, 1))

    def make():
        return {"x": random_array((B, *shape), seed, low=0.0, high=1.0), "model": seed_models.seed_cnn(seed + 1, **kw)}

    return OpCase(op="seed_cnn_model", label=f"B{B}" + ("-small" if small else "-seed"), make=make, call=model_call,
                  ops_inside=seed_models.OPS["seed_cnn_model"])


MODEL_CASES = (
    [_seed_gru_model_case(3, v, 600, small=True) for v in VARIANTS]
    + [_seed_gru_model_case(2, "reset_after", 610)]
    + [_seed_cnn_model_case(3, 620, small=True), _seed_cnn_model_case(2, 630)]
)

FORWARD_CASES = GRU_CASES + CONV_CASES + POOL_CASES + DENSE_CASES + ACT_CASES + SEED1D_CASES + MODEL_CASES
