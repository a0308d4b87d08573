"""A softmax output that is one-hot in float64 leaves the gradient of <dy, y> to rounding alone: the certificate says
the gradients cannot be compared, and why, instead of failing every voice but NumPy (whose backward is the
reference's own code). Seen in the zoo: keras.applications EfficientNetB0 with drawn Normalization statistics, max
|dL/dx| 4.3e-259 in the reference, 1.1e-258 in torch."""

from __future__ import annotations

import numpy as np

from impls.model.seeded import chain
from nnparity import certify
from nnparity.certificate import to_markdown
from nnparity.certify.per_voice import saturated


def _classifier(scale: float):
    m = chain("sat", (4, 6), [("dense", "h", {"units": 5, "activation": "tanh"}),
                              ("dense", "out", {"units": 3, "activation": "softmax"})], seed=2, batch=3)  # fmt: skip
    out = m.layers[-1]
    w = {k: np.asarray(v) * (scale if k == "kernel" else 1.0) for k, v in out.weights.items()}
    import dataclasses

    return dataclasses.replace(m, layers=(m.layers[0], dataclasses.replace(out, weights=w)))


def test_a_saturated_softmax_leaves_the_gradients_not_compared_and_said_why():
    cert = certify.certify(_classifier(1e4), None, certify.Settings(bench=False, voices=("numpy", "torch"), jobs=1))
    for v in ("numpy", "torch"):
        g = cert["voices"][v]["gradients"]
        assert "tensors" not in g and "saturated" in g["not_compared"], g
    assert not any("gradients" in f for f in cert["failures"])
    md = to_markdown(cert)
    assert "the softmax output is saturated" in md


def test_an_unsaturated_softmax_compares_its_gradients():
    cert = certify.certify(_classifier(1.0), None, certify.Settings(bench=False, voices=("numpy", "torch"), jobs=1))
    assert all("tensors" in cert["voices"][v]["gradients"] for v in ("numpy", "torch"))
    assert cert["verdict"] == "pass"


def test_saturation_is_every_row_one_hot_not_one():
    m = _classifier(1.0)
    one_hot = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert saturated(m, one_hot)
    assert saturated(m, np.array([[1.0, 0, 0], [0, 1.0, 0], [0.4, 0.3, 0.3]])) is None  # one row still informs
    assert saturated(m, np.array([[1 - 1e-9, 1e-9, 0]] * 3)) is None  # 1e-9 from one-hot is far from rounding
