"""The seed audit: every claim in verify/claims.py reaches its verdict, with its key numbers asserted here
from first principles (closed forms worked by hand, the issue's 112,394 and 225,034), and the published
reports/SEED-AUDIT.md is exactly what `python -m reports audit` writes.

Cost: about 3 s once the frameworks are imported (the checks run once per process and are shared with
the report test).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from verify.claims import BY_ID, CLAIMS, NOT_MEASURED, READING, VERDICTS, evidence
from verify.conftest import load

TINY = 1e-12


def measured(ev, key):
    """The number, or None where its framework did not load (test_builtins_were_measured covers that)."""
    v = ev[key]
    return None if v == NOT_MEASURED else v


def _gate_names(ev):
    assert ev["gru_blocks"] == "3" and ev["lstm_blocks"] == "4"  # z, r, candidate vs i, f, g, o
    assert 0 < ev["z_min"] and ev["r_max"] < 1  # z and r are gates: sigmoids in (0, 1)
    assert ev["htilde_min"] < 0  # the "update gate" is the tanh candidate


def _concatenated(ev):
    assert ev["diff_z"] < 1e-14 and ev["diff_r"] < 1e-14


def _candidate(ev):
    assert ev["ra_vs_rb"] > 1e-2
    if measured(ev, "keras_rb") is not None:
        assert ev["keras_rb"] < TINY and ev["keras_default"] > 1e-2
    if measured(ev, "torch") is not None:
        assert ev["torch"] > 1e-2


def _oplus(ev):
    assert ev["seed_vs_rb"] > 0.1 and ev["seed_vs_ra"] > 0.1
    for key in ("keras_reset_before", "keras_reset_after", "torch_nn_reset_after"):
        if measured(ev, key) is not None:
            assert ev[key] > 0.1 and ev[key + "_ref"] < TINY  # far from seed, on top of the reference
    assert ev["seed_keep_max"] < 0.5 < ev["frame_keep_max"]
    assert ev["seed_sum_max"] < 1.0  # frameworks: exactly 1
    assert ev["frame_memory_err"] < 1e-6 and ev["seed_memory_err"] > 0.1
    assert ev["seed_halving"] == pytest.approx(0.9 / 2**10, rel=1e-6)
    assert ev["chung_flip"] < TINY and ev["seed_flip"] > 0.1


def _tanh(ev):
    e = math.e
    assert ev["tanh_1"] == pytest.approx((e * e - 1) / (e * e + 1), rel=1e-14)
    assert ev["sinh_1"] == pytest.approx((e - 1 / e) / 2, rel=1e-14)
    assert ev["max_diff"] > 9.0 and ev["tanh_max"] < 1.0 and ev["identity"] < TINY
    assert ev["near_zero"] == pytest.approx(0.1**3 / 2, rel=0.01)  # x^3/3 + x^3/6


def _fewer_than_rnn(ev):
    for n, (I, H) in enumerate([(64, 128), (128, 64)], start=1):
        rnn = I * H + H * H + 2 * H
        assert ev[f"rnn_{n}"] == rnn and ev[f"gru_{n}"] == 3 * rnn and ev[f"lstm_{n}"] == 4 * rnn
        assert ev[f"gru_over_rnn_{n}"] == 3.0


def _fewer_than_lstm(ev):
    assert ev["torch_nn_1_saved"] == 64 * 128 + 128 * 128 + 2 * 128  # one block, torch's two biases
    assert ev["keras_1_saved"] == 128 * (64 + 128 - 2)  # H (I + H - 2) with Keras' defaults
    assert ev["keras_2_saved"] == 64 * (128 + 64 - 2)
    assert ev["matched_ratio"] == 0.75 and ev["flops_ratio"] == 0.75
    assert ev["tiny_keras"] == "12 vs 12"
    one = 64 * 128 + 128 * 128 + 2 * 128  # a gate block with both biases, layer 1's sizes
    assert ev["described_forward_params"] == f"{3 * one:,} vs {4 * one:,}"
    assert ev["described_bidirectional_params"] == f"{6 * one:,} vs {8 * one:,}"
    assert ev["described_forward_flops_ratio"] == 0.75 and ev["described_bidirectional_flops_ratio"] == 0.75


def _conv(ev):
    assert ev["conv2d_shape"] == "(1, 26, 26, 32)" and ev["seed_shape"].endswith(", 1)")
    assert ev["conv2d_params"] == 3 * 3 * 1 * 32 + 32
    assert ev["depthwise"] < TINY and ev["full"] > 0.1
    if measured(ev, "keras_full") is not None:
        assert ev["keras_full"] > 0.1


def _pool(ev):
    assert ev["seed_shape"] == "(1, 25, 32)" and ev["pool2d_shape"] == "(1, 13, 13, 32)"
    assert ev["special"] == 0.0 and ev["first_row"] > 0.1
    if measured(ev, "keras_shape") is not None:
        assert ev["keras_shape"] == "(1, 13, 13, 32)"


CONVS = 3 * 3 * 1 * 32 + 32 + 3 * 3 * 32 * 64 + 64


def _pooling(ev):
    without = CONVS + 24 * 24 * 64 * 128 + 128 + 128 * 10 + 10  # Flatten 24 x 24 x 64 without the pools
    for impl in ("keras", "torch_nn"):
        if measured(ev, f"{impl}_with") is not None:
            assert (ev[f"{impl}_with"], ev[f"{impl}_without"]) == (225_034, without)
    assert (ev["total_with"], ev["total_without"]) == (225_034, without)
    assert ev["pool_params"] == 0 and ev["conv_params"] == f"{CONVS:,} / {CONVS:,}"
    assert ev["flops_with"] < ev["flops_without"]


def _gru_formula(ev):
    assert ev["truth"] == 112_394
    readings = [ev[k] for k in ("reading_A", "reading_B", "reading_C1", "reading_C2", "reading_C3")]
    assert ev["reading_A"] == (3 * 64 + 3 * 128) * 128 + (3 * 128 + 3 * 64) * 64
    assert 112_394 not in readings and ev["truth_gru_layers"] not in readings
    assert ev["best_short"] == 6 * (128 + 64)
    assert ev["own_equations"] == 3 * (64 * 128 + 128 * 128 + 128) + 3 * (128 * 64 + 64 * 64 + 64)


def _cnn_formula(ev):
    assert ev["truth"] == 225_034 and ev["truth_convs"] == CONVS
    assert ev["reading_A"] == 32 * (9 + 32) * 28 * 28 + 64 * (32 * 9 + 64) * 28 * 28
    assert min(ev["reading_A"], ev["reading_B"], ev["reading_C"]) > 100 * CONVS
    assert ev["conv1_macs"] == 32**2 * 26**2


KEY_EVIDENCE = {
    "gru-gate-names": _gate_names,
    "gru-gates-concatenated": _concatenated,
    "gru-candidate-reset": _candidate,
    "gru-update-oplus": _oplus,
    "tanh-hyperbolic-sine": _tanh,
    "gru-fewer-params-than-rnn": _fewer_than_rnn,
    "gru-fewer-params-than-lstm": _fewer_than_lstm,
    "cnn-conv-equation": _conv,
    "cnn-pool-equation": _pool,
    "pooling-reduces-params": _pooling,
    "seed-gru-param-formula": _gru_formula,
    "seed-cnn-param-formula": _cnn_formula,
}


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim(claim):
    ev = evidence(claim.id)
    assert ev.verdict in VERDICTS
    assert ev.verdict == claim.verdict, f"{claim.id}: the check reached {ev.verdict!r}, the registry says {claim.verdict!r}"
    assert (ev.reading is not None) == (ev.verdict == READING), "a reading is stated exactly when the verdict needs one"
    KEY_EVIDENCE[claim.id](ev)


def test_every_claim_has_its_key_evidence_asserted():
    assert set(KEY_EVIDENCE) == set(BY_ID)


def test_builtins_were_measured():
    """With both frameworks here no evidence number is left unmeasured."""
    load("torch_nn"), load("keras")
    missing = [(c.id, k) for c in CLAIMS for k, _, v in evidence(c.id).numbers if v == NOT_MEASURED]
    assert not missing


def test_seed_audit_report_is_reproduced_byte_for_byte(tmp_path):
    """reports/SEED-AUDIT.md is generated: regenerating it gives the committed bytes. (Needs both
    frameworks: without one, the file would say which numbers were not measured.)"""
    load("torch_nn"), load("keras")
    from reports.audit import DEFAULT_OUTPUT, main

    out = tmp_path / "SEED-AUDIT.md"
    assert main(["-o", str(out)]) == 0
    committed = Path(DEFAULT_OUTPUT)
    assert committed.exists(), f"{committed} is missing: run `python -m reports audit`"
    assert out.read_bytes() == committed.read_bytes(), "reports/SEED-AUDIT.md is stale: run `python -m reports audit`"
