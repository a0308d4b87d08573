"""The certificate's calibrated float32 bar (nnparity/certify/inputs.py Reference.compare, CALIBRATION_RULE): a float32
check run from the input over the table's bar passes within CALIBRATED_FACTOR times NumPy's own float32 error at that
layer, and says so. Rounding grows with depth: torchvision resnet50 at 3,3,64,64 failed 437 float32 checks at the
table's 2e-5 (NumPy's own float32 forward 4.73e-5 from float64) while every isolated and float64 check passed.

The table's float32 entry is made tiny here, so every float32 check is over it: the accumulated ones must then be
judged by the calibrated bar, the isolated ones must still fail, and a voice 1e-4 off at one layer must fail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from impls.contract import tolerance as T
from impls.model import voices
from nnparity import certify
from nnparity.certificate import to_markdown

from .test_certify_one_pass import residual_model

VOICES = ("numpy", "torch")


def _certify(monkeypatch):
    monkeypatch.setitem(T.TOLERANCES, "float32", 1e-12)
    return certify.certify(residual_model(), None, certify.Settings(bench=False, voices=VOICES, jobs=1))


def test_accumulated_float32_checks_are_judged_by_numpys_own_error_and_isolated_ones_are_not(monkeypatch):
    cert = _certify(monkeypatch)
    for voice in VOICES:
        e = cert["voices"][voice]
        checks = [e["forward"]["float32"], *(r["accumulated"] for r in e["layers"]["float32"])]
        for c in checks:
            assert c["calibrated"] and c["table_bar"] == 1e-12, c
            assert c["bar"] == pytest.approx(T.CALIBRATED_FACTOR * c["own_float32_error"]), c
        assert all(c["pass"] for c in checks) if voice == "numpy" else True  # numpy is its own float32 error
        isolated = [r["isolated"] for r in e["layers"]["float32"] if "pass" in r["isolated"]]
        assert isolated and not any("calibrated" in c for c in isolated)
        assert not all(c["pass"] for c in isolated)  # a layer alone keeps the table's (here tiny) bar
        assert all("calibrated" not in r["accumulated"] for r in e["layers"]["float64"])
    cal = cert["float32_calibration"]
    assert cal["checks"] == 2 * (1 + len(cert["model"]["layers"])) and cal["rule"] == certify.CALIBRATION_RULE
    md = to_markdown(cert)
    assert f"calibrated float32 bar: {certify.CALIBRATION_RULE}; it judged {cal['checks']} checks" in md
    assert "(calibrated bar " in md


def test_a_voice_off_by_more_than_float32_fails_even_the_calibrated_bar(monkeypatch):
    real = voices._primitive

    def off(voice, *args, **kwargs):  # torch's every-layer outputs, layer 3 (c1) moved by 1e-4 relative
        built = real(voice, *args, **kwargs)
        if voice != "torch" or built.outputs is None:
            return built
        outputs = built.outputs
        return dataclasses.replace(built, outputs=lambda x: [np.asarray(y) * (1 + 1e-4) if i == 3 else y
                                                             for i, y in enumerate(outputs(x))])  # fmt: skip

    monkeypatch.setattr(voices, "_primitive", off)
    cert = _certify(monkeypatch)
    rows = {r["name"]: r["accumulated"] for r in cert["voices"]["torch"]["layers"]["float32"]}
    assert rows["c1"]["calibrated"] and not rows["c1"]["pass"], rows["c1"]
    assert rows["c1"]["error"] > 1e-5 > rows["c1"]["bar"]
    assert cert["verdict"] == "fail"
    assert all(r["accumulated"]["pass"] for r in cert["voices"]["numpy"]["layers"]["float32"])


# The float64 bar by the reference's own one-ulp spread (inputs.by_spread, SPREAD_RULE). keras.applications
# EfficientNetV2B0 in the zoo failed 1469 float64 checks in every voice but NumPy (block6h_se_expand 1.0-1.6e-10
# accumulated, every gradient 1.7e-9-9.4e-9) while the reference itself moved 1.4e-10 and 6.4e-9-1.9e-8 under a
# one-ulp move of its weights and input: the model amplifies rounding, no framework can meet 1e-10 on it.


def chaotic_model(gain: float = 5.0, depth: int = 30) -> certify.Model:
    """x (48) -> `depth` x dense(48, tanh) with kernels N(0, gain^2 / 48): past gain 1 a deep tanh chain is chaotic,
    and a difference at its input grows by a factor each layer, while each layer alone is well conditioned. Measured
    (NumPy against torch, float64, gain 5, depth 30): the output's one-ulp spread 2.8e-9, torch 7.6e-10 from NumPy;
    at gain 1 both stay near 1e-15. Seeded, non-zero biases, batch 3."""
    from .test_certify import chain

    m = chain("chaotic", (48,), [("dense", f"d{i}", {"units": 48, "activation": "tanh"}) for i in range(depth)], seed=5,
              dtype="float64")  # fmt: skip
    rng = np.random.default_rng(7)
    return dataclasses.replace(m, layers=tuple(
        dataclasses.replace(la, weights={"kernel": rng.standard_normal((48, 48)) * gain / np.sqrt(48),
                                         "bias": rng.uniform(-0.1, 0.1, 48)}) for la in m.layers)).check(3)  # fmt: skip


def test_a_float64_check_over_the_table_is_judged_by_the_references_one_ulp_spread():
    cert = certify.certify(chaotic_model(), None, certify.Settings(bench=False, voices=VOICES, jobs=1))
    e = cert["voices"]["torch"]
    fwd = e["forward"]["float64"]
    # torch's float64 is as far from the reference as rounding makes it here: over the table, within the spread
    assert fwd["error"] > certify.tolerance("float64"), fwd
    assert fwd["calibrated"] and fwd["table_bar"] == certify.tolerance("float64") and fwd["pass"], fwd
    assert fwd["bar"] == pytest.approx(T.SPREAD_FACTOR * fwd["ulp_spread"]) and fwd["ulp_spread"] > 1e-10
    isolated = [r["isolated"] for r in e["layers"]["float64"]]
    assert all("calibrated" not in c and c["pass"] for c in isolated)  # a layer alone keeps the table's bar, and meets it
    grads = {t["tensor"]: t for t in e["gradients"]["tensors"]}
    assert any("ulp_spread" in t for t in grads.values())
    assert all(t["pass"] for t in grads.values()), grads
    sp = cert["float64_calibration"]
    assert sp["checks"] >= 2 and sp["passed"] == sp["checks"] and sp["rule"] == certify.SPREAD_RULE
    assert cert["verdict"] == "pass", cert["failures"]
    md = to_markdown(cert)
    assert f"float64 bar by the reference's one-ulp spread: {certify.SPREAD_RULE}; it judged {sp['checks']}" in md


def test_a_float64_error_beyond_rounding_fails_the_spread_bar_too(monkeypatch):
    real = voices._primitive

    def off(voice, model, dtype="float32", *args, **kwargs):  # torch's float64 output and one gradient 1e-6 off
        built = real(voice, model, dtype, *args, **kwargs)
        if voice != "torch" or dtype != "float64" or built.outputs is None:
            return built
        outputs, vjp = built.outputs, built.vjp

        def moved_vjp(x, dy):
            dx, g = vjp(x, dy)
            return dx, {k: (v * (1 + 1e-6) if k == ("d0", "kernel") else v) for k, v in g.items()}

        return dataclasses.replace(built, outputs=lambda x: [np.asarray(y) * (1 + 1e-6) for y in outputs(x)],
                                   vjp=moved_vjp)  # fmt: skip

    monkeypatch.setattr(voices, "_primitive", off)
    cert = certify.certify(chaotic_model(gain=1.0), None, certify.Settings(bench=False, voices=VOICES, jobs=1))
    e = cert["voices"]["torch"]
    acc = e["layers"]["float64"][0]["accumulated"]
    assert not acc["pass"] and acc["bar"] < 1e-7 < acc["error"], acc  # judged by the spread and still failed
    grads = {t["tensor"]: t for t in e["gradients"]["tensors"]}
    assert not grads["d0/kernel"]["pass"] and grads["d0/kernel"]["error"] > 1e-7, grads["d0/kernel"]
    assert cert["verdict"] == "fail"
    assert all(c["pass"] for c in cert["voices"]["numpy"]["layers"]["float64"][0].values() if isinstance(c, dict) and "pass" in c)


def test_the_one_ulp_move_is_seeded_and_one_ulp():
    from nnparity.certify.inputs import one_ulp

    m = chaotic_model()
    x = np.random.default_rng(0).uniform(-1, 1, (3, 48))
    a, xa = one_ulp(m, x)
    b, xb = one_ulp(m, x)
    np.testing.assert_array_equal(xa, xb)
    moved = xa - x
    assert np.all(np.abs(moved) <= 2 * np.spacing(np.abs(x))) and (moved > 0).any() and (moved < 0).any()  # eps, relative
    assert np.mean(moved != 0) > 0.3  # most elements move (a product that rounds back to x does not)
    for la, lb, l0 in zip(a.layers, b.layers, m.layers, strict=True):
        for k in l0.weights:
            np.testing.assert_array_equal(la.weights[k], lb.weights[k])
            assert np.all(np.abs(la.weights[k] - l0.weights[k]) <= 2 * np.spacing(np.abs(l0.weights[k])))
    ids = np.array([[1, 2], [3, 4]])
    assert one_ulp(m, ids)[1] is ids  # token ids do not move


def _float32_by_spread(monkeypatch, moved: float | None = None):
    """The table's float32 entry and NumPy's own float32 error made tiny: every accumulated float32 check is over
    both, and is judged by the reference's one-float32-ulp spread. `moved`: torch's float32 layer 3 off by that."""
    from nnparity.certify.inputs import Reference

    monkeypatch.setitem(T.TOLERANCES, "float32", 1e-12)
    monkeypatch.setattr(Reference, "own_float32", lambda self, i: 1e-13)
    if moved is not None:
        real = voices._primitive

        def off(voice, model, dtype="float32", *args, **kwargs):
            built = real(voice, model, dtype, *args, **kwargs)
            if voice != "torch" or dtype != "float32" or built.outputs is None:
                return built
            outputs = built.outputs
            return dataclasses.replace(built, outputs=lambda x: [np.asarray(y) * (1 + moved) if i == 3 else y
                                                                 for i, y in enumerate(outputs(x))])  # fmt: skip

        monkeypatch.setattr(voices, "_primitive", off)
    return certify.certify(chaotic_model(gain=1.0, depth=8), None, certify.Settings(bench=False, voices=VOICES, jobs=1))


def test_a_float32_check_over_numpys_own_error_is_judged_by_the_float32_spread(monkeypatch):
    cert = _float32_by_spread(monkeypatch)
    for voice in VOICES:
        for r in cert["voices"][voice]["layers"]["float32"]:
            c = r["accumulated"]
            assert c["table_bar"] == 1e-12 and "one-float32-ulp spread" in c["calibrated"], c
            assert c["bar"] == pytest.approx(T.SPREAD_FACTOR * c["ulp_spread"]) and 1e-9 < c["bar"] < 1e-4, c
            assert c["pass"], (voice, r["name"], c)  # a well-conditioned chain: every voice within its spread
    assert cert["float32_calibration"]["checks"] == cert["float32_calibration"]["passed"] > 0


def test_a_float32_error_beyond_rounding_fails_the_float32_spread_bar(monkeypatch):
    cert = _float32_by_spread(monkeypatch, moved=1e-3)
    rows = {r["name"]: r["accumulated"] for r in cert["voices"]["torch"]["layers"]["float32"]}
    assert not rows["d3"]["pass"] and rows["d3"]["bar"] < 1e-4 < rows["d3"]["error"], rows["d3"]
    assert cert["verdict"] == "fail"
