"""An outside reference: ONNX's own NumPy operators (onnx.reference) against the NumPy reference, fed
through impls/convert.py. Agreement here checks the reference and the ONNX converter at once with
code this project did not write."""

from __future__ import annotations

import pytest

from impls import BackendUnavailable
from impls import numpy_impl as ref
from impls.tolerance import assert_close
from verify.cases import CONV_CASES, DENSE_CASES, GRU_CASES, POOL_CASES


@pytest.fixture(scope="module")
def onnx_ref():
    try:
        from impls import onnx_ref
    except BackendUnavailable as e:
        pytest.skip(str(e))
    return onnx_ref


CASES = [c for c in GRU_CASES if c.variant in ("reset_before", "reset_after")] + CONV_CASES + POOL_CASES + DENSE_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id("numpy", "float64").replace("-np-", "-onnx-") for c in CASES])
def test_onnx_reference_agrees_with_numpy_reference(onnx_ref, case):
    inputs = case.make()
    expected = case.call(ref, inputs)
    got = case.call(onnx_ref, inputs)
    for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
        assert_close(g, e, "float64", work=case.op, what=case.label)
