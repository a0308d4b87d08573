"""Issue 27's one-pass certificate against the slow path it replaced, on a residual model.

The accumulated check reads every layer's output from one forward of each voice's whole build (Built.outputs); the
slow path (Settings.one_pass=False) builds every prefix `model.sub(0, i + 1)` and runs it, as certify did before.
Both must give every layer the same verdict, and float64 errors equal to two significant digits. A planted bug in
the intermediates' bookkeeping (layer i's output reported for layer i + 1) must fail the fast path.
"""

from __future__ import annotations

import dataclasses

import pytest

from impls.model import seeded, voices
from impls.model.description import INPUT
from nnparity import certify

VOICES = ("numpy", "torch", "tensorflow", "jax", "torch_nn", "keras", "flax", "onnxruntime")


def residual_model():
    """conv -> BN -> relu, a two-conv branch added back, a 1x1 branch concatenated, pooled, dense; I != H."""
    return seeded.chain("residual", (7, 6, 3), [
        ("conv2d", "stem", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("batch_norm", "bn0", {"epsilon": 1e-3}),
        ("activation", "relu0", {"activation": "relu"}),
        ("conv2d", "c1", {"filters": 4, "kernel_size": [3, 3], "padding": "same", "activation": "tanh"}),
        ("conv2d", "c2", {"filters": 4, "kernel_size": [3, 3], "padding": "same"}),
        ("add", "res", {}, ("c2", "relu0")),
        ("conv2d", "side", {"filters": 2, "kernel_size": [1, 1]}, ("relu0",)),
        ("concatenate", "cat", {"axis": -1}, ("res", "side")),
        ("global_avg_pool", "gap", {}),
        ("dense", "out", {"units": 5, "activation": "softmax"}),
    ], seed=11, batch=3)  # fmt: skip


def _rows(cert):
    """{(voice, dtype, layer, check): (pass, error)} over every layer check of every voice."""
    out = {}
    for v, e in cert["voices"].items():
        for d, rows in e.get("layers", {}).items():
            for r in rows:
                for check in ("isolated", "accumulated"):
                    c = r.get(check, {})
                    if "pass" in c:
                        out[(v, d, r["name"], check)] = (c["pass"], c["error"])
    return out


def disagreements(fast, slow) -> list[str]:
    a = _rows(fast)
    b = {k: v for k, v in _rows(slow).items() if k[0] in fast["voices"]}
    out = [f"{k}: only in one path" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        (pa, ea), (pb, eb) = a[k], b[k]
        if pa != pb:
            out.append(f"{k}: verdict {pa} one pass, {pb} slow")
        elif k[1] == "float64" and f"{ea:.1e}" != f"{eb:.1e}":
            out.append(f"{k}: float64 error {ea:.2e} one pass, {eb:.2e} slow")
    return out


@pytest.fixture(scope="module")
def both():
    model = residual_model()
    assert not model.is_chain() and INPUT not in [la.name for la in model.layers]
    fast = certify.certify(model, None, certify.Settings(bench=False, voices=VOICES))
    slow = certify.certify(model, None, certify.Settings(bench=False, voices=VOICES, one_pass=False))
    return model, fast, slow


def test_one_pass_and_every_prefix_give_the_same_verdicts_and_errors(both):
    _, fast, slow = both
    assert fast["verdict"] == slow["verdict"] == "pass", fast["failures"] or slow["failures"]
    assert not disagreements(fast, slow)
    computed = {v for (v, d, _, c) in _rows(fast) if c == "accumulated"}
    assert {"numpy", "torch", "tensorflow", "jax"} <= computed  # the primitives always give their outputs


def test_a_layer_reported_one_late_fails_the_one_pass_path(both, monkeypatch):
    model, _, slow = both
    real = voices._primitive

    def shifted(*args, **kwargs):
        built = real(*args, **kwargs)
        outputs = built.outputs
        return dataclasses.replace(built, outputs=lambda x: (lambda ys: [ys[0], *ys[:-1]])(outputs(x)))

    monkeypatch.setattr(voices, "_primitive", shifted)
    planted = certify.certify(model, None, certify.Settings(bench=False, voices=("numpy", "torch")))
    assert planted["verdict"] == "fail"
    assert any("accumulated" in f for f in planted["failures"]), planted["failures"]
    assert disagreements(planted, slow)
