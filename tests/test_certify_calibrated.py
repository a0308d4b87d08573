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
