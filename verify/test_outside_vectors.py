"""Outside test vectors in every voice: ONNX's shipped backend data for Conv (groups, depthwise with and without
a channel multiplier, dilation, explicit and asymmetric pads, SAME_LOWER), AveragePool (with and without
counting padded cells) and MaxPool, and TensorFlow's depthwise-convolution test configurations, as
verify/outside_vectors.py reads them. The expected outputs were computed by PyTorch (pytorch-converted), by
ONNX's own NumPy (node cases, in float32) and by TensorFlow's test reference (or by hand), so the suite cannot
tune to them: every voice must reproduce them within the float32 bar, the NumPy reference in float64,
the others in float32. Cases the contract cannot express, and pairs a voice declares refused
(impls/contract/limits.py), are listed as skips with the reason."""

from __future__ import annotations

import numpy as np
import pytest

from impls import IMPLEMENTATIONS, SHORT, BackendUnavailable
from impls.contract import limits
from impls.contract.inputs import to_native
from verify.conftest import load
from verify.headroom import check


def _cases() -> tuple[list, dict[str, str]]:
    """Every source's cases, and why a source is unavailable here (its framework is missing)."""
    from verify import outside_vectors as ov

    sources = {"onnx": lambda: ov.converted_cases() + ov.node_cases(),
               "tensorflow": lambda: ov.tf_depthwise_cases() + (ov.tf_hand_values_case(),)}  # fmt: skip
    cases, unavailable = [], {}
    for name, get in sources.items():
        try:
            cases += list(get())
        except BackendUnavailable as e:
            unavailable[name] = str(e)
    return cases, unavailable


CASES, UNAVAILABLE = _cases()


def _params() -> list:
    out = [pytest.param(None, "numpy", "float64", marks=pytest.mark.skip(reason=why), id=f"{src}-unavailable")
           for src, why in UNAVAILABLE.items()]  # fmt: skip
    for c in CASES:
        for impl in IMPLEMENTATIONS:
            dtype = "float64" if impl == "numpy" else "float32"
            marks = ()
            if c.unsupported:
                marks = pytest.mark.skip(reason=f"not in the contract: {c.unsupported}")
            elif (why := limits.refusal(impl, c.op, dtype, **c.options)) is not None:
                marks = pytest.mark.skip(reason=f"declared refusal: {why}")
            out.append(pytest.param(c, impl, dtype, marks=marks, id=f"{c.name}-{SHORT[impl]}-{dtype}"))
    return out


@pytest.mark.parametrize("case, impl, dtype", _params())
def test_outside_vector_agrees(case, impl, dtype):
    mod = load(impl)
    native = to_native(mod, {k: v.astype(np.float64) for k, v in case.inputs.items()}, dtype)
    got = mod.to_numpy(case.call(mod, native))
    check(got, case.expected, "float32", impl, f"outside_{case.op}", f"{case.name} in {impl} {dtype}")


def test_the_outside_vectors_reach_every_new_option():
    """Guard for the data: groups, depthwise with a multiplier, dilation, asymmetric explicit pads, average
    pooling with either rule, among the cases that run."""
    if UNAVAILABLE:
        pytest.skip("; ".join(UNAVAILABLE.values()))
    run = [c for c in CASES if not c.unsupported]
    conv = [c.options for c in run if c.op == "conv2d"]
    x_channels = {c.name: c.inputs["x"].shape[3] for c in run}
    assert any(1 < o["groups"] < x_channels[c.name] for c, o in zip([c for c in run if c.op == "conv2d"], conv))
    assert any(o["groups"] == x_channels[c.name] and c.inputs["kernel"].shape[3] > o["groups"]
               for c, o in zip([c for c in run if c.op == "conv2d"], conv))  # fmt: skip
    assert any(max(o["dilation"]) > 1 for o in conv)
    assert any(not isinstance(o["padding"], str) and o["padding"][0] != o["padding"][1] for o in conv)
    avg = [c.options for c in run if c.op == "avg_pool2d"]
    assert {o["count_include_pad"] for o in avg if not isinstance(o["padding"], str) or o["padding"] == "same"} == {False, True}
    assert len(run) >= 40, f"only {len(run)} outside cases run"
