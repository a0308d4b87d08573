"""The dtype and gradient refusals impls/contract/limits.py declares (the option refusals are in test_conv_options.py):
each is raised with its reason, never computed in another precision, and a dtype refusal is a true limit of the
runtime (the same op in float32 computes, and the runtime itself fails in the refused dtype)."""

from __future__ import annotations

import numpy as np
import pytest

from impls import convert
from impls.contract import limits
from impls.contract.inputs import to_native
from verify.cases import FORWARD_CASES, refused
from verify.conftest import load
from verify.conv_cases import OPTION_FORWARD_CASES
from verify.grad_cases import VJP_CASES

DTYPE_CASES = {(impl, op): next(c for c in FORWARD_CASES + OPTION_FORWARD_CASES if c.op == op and impl in c.impls)
               for impl, op in limits.DTYPE_REFUSALS}  # fmt: skip


@pytest.mark.parametrize("impl, op", list(DTYPE_CASES), ids=[f"{i}-{o}" for i, o in DTYPE_CASES])
def test_dtype_refusals_are_raised_and_float32_computes(impl, op):
    mod = load(impl)
    case = DTYPE_CASES[(impl, op)]
    dtypes, reason = limits.DTYPE_REFUSALS[(impl, op)]
    for dtype in dtypes:
        with pytest.raises(limits.Refused) as e:
            case.call(mod, to_native(mod, case.make(), dtype))
        assert reason in str(e.value) and op in str(e.value) and f"dtype={dtype}" in str(e.value)
    out = case.call(mod, to_native(mod, case.make(), "float32"))  # the refusal is of the dtype, not the op
    assert all(o.dtype.name == "float32" for o in (out if isinstance(out, tuple) else (out,)))


def test_onnxruntime_itself_has_no_float64_gru_kernel():
    """The declared reason, measured: the same graph the voice builds fails in ONNX Runtime in float64."""
    mod = load("onnxruntime")
    from impls.runtime import onnx_graphs

    a = DTYPE_CASES[("onnxruntime", "gru")].make()
    feeds = {"x": a["x"]} | convert.gru_to_onnx(a["weights"])
    s = mod.session(onnx_graphs.gru(a["x"].shape, a["weights"].hidden_size, "reset_after", "float64", False))
    with pytest.raises(Exception, match="does not support double"):
        s.run(None, {k: np.asarray(v, np.float64) for k, v in feeds.items()})


GRADIENT_CASES = [p for p in refused(VJP_CASES) if p.values[1] in limits.GRADIENT_REFUSALS]


def test_every_voice_without_gradients_refuses_every_vjp_case():
    assert {p.values[1] for p in GRADIENT_CASES} == set(limits.GRADIENT_REFUSALS)
    assert {p.values[0].op for p in GRADIENT_CASES} == {c.op for c in VJP_CASES}


@pytest.mark.parametrize("case, impl", GRADIENT_CASES)
def test_gradient_refusals_are_raised_not_computed(case, impl):
    mod = load(impl)
    with pytest.raises(limits.Refused) as e:
        case.call(mod, to_native(mod, case.make(), "float32"))
    assert limits.GRADIENT_REFUSALS[impl] in str(e.value)
