"""Every implementation's forward pass against the NumPy float64 reference, over the whole matrix."""

from __future__ import annotations

import pytest

from impls.contract.inputs import round_to, to_native
from impls.primitives import numpy_impl as ref
from verify.cases import FORWARD_CASES, matrix, outputs
from verify.conftest import load
from verify.conv_cases import OPTION_FORWARD_CASES
from verify.headroom import check


@pytest.mark.parametrize("case, impl, dtype", matrix(FORWARD_CASES + OPTION_FORWARD_CASES))
def test_forward_matches_float64_reference(case, impl, dtype):
    mod = load(impl)
    inputs = case.make()
    expected = outputs(ref, case.call(ref, round_to(inputs, dtype)))
    got = outputs(mod, case.call(mod, to_native(mod, inputs, dtype)))
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g.dtype == dtype, f"{case.id(impl, dtype)}: output {i} has dtype {g.dtype}, asked for {dtype}"
        check(g, e, dtype, impl, work=case.op, what=f"{case.id(impl, dtype)} output {i}")
