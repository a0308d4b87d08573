"""release_memory gives freed heap memory back to the system (the resnet50 certificate's peak of both processes at
once, 12.80 GiB without it, 11.72 GiB with it: docs/DESIGN.md)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from nnparity.certify import about
from nnparity.certify.worker import resident_gib


@pytest.mark.skipif(not sys.platform.startswith("linux") or about._TRIM is None, reason="needs glibc's malloc_trim")
def test_release_memory_returns_the_freed_heap_to_the_system():
    # 100 KiB arrays come from malloc's heap (under its 128 KiB mmap threshold), not their own mappings: freeing all
    # but the last leaves the freed pages resident inside the heap until malloc_trim gives them back
    arrays = [np.full(100 * 1024 // 8, i, np.float64) for i in range(3000)]  # about 293 MiB, every page touched
    last = arrays[-1]
    del arrays
    before = resident_gib("self")
    about.release_memory()
    after = resident_gib("self")
    assert last[0] == 2999
    assert before - after > 0.15, f"resident {before:.3f} GiB before release_memory, {after:.3f} GiB after"


@pytest.mark.parametrize("threshold, want", [(0, 2), (10**15, 0)])
def test_memory_is_released_after_each_voice_of_a_large_model_only(monkeypatch, threshold, want):
    import nnparity.certify as certify

    from .test_certify import small_gru

    calls = []
    monkeypatch.setattr(about, "RELEASE_FROM_BYTES", threshold)
    monkeypatch.setattr(certify, "release_memory", lambda: calls.append(1))
    cert = certify.certify(small_gru(), None, certify.Settings(bench=False, voices=("numpy", "torch"), jobs=1))
    assert cert["verdict"] == "pass"
    assert len(calls) == want  # one a voice, where the reference's outputs reach the threshold


def test_weights_alone_make_a_model_worth_releasing(monkeypatch):
    from .test_certify import small_gru

    model = small_gru()
    weights = 8 * sum(int(np.size(w)) for la in model.layers for w in la.weights.values())
    monkeypatch.setattr(about, "RELEASE_FROM_BYTES", weights)
    assert about.worth_releasing(model, [])  # a weight-heavy model (vgg11: 1.0 GiB) with small activations
    assert not about.worth_releasing(model.sub(0, 1), [])
    assert about.worth_releasing(model.sub(0, 1), [np.zeros(weights // 8)])


@pytest.mark.parametrize("threshold, jobs", [(0, 1), (10**15, 2)])
def test_a_large_model_is_certified_in_one_process_and_says_why(monkeypatch, threshold, jobs):
    import nnparity.certify as certify
    from nnparity.certify import worker

    from .test_certify import small_gru

    started = []
    monkeypatch.setattr(about, "ONE_PROCESS_FROM_BYTES", threshold)
    monkeypatch.setattr(worker.Worker, "start", classmethod(lambda cls, *a: started.append(a) or None))
    monkeypatch.setattr(certify, "Worker", worker.Worker)
    cert = certify.certify(small_gru(), None, certify.Settings(bench=False, voices=("numpy", "jax"), jobs=2))
    assert len(started) == (jobs > 1)  # the worker is asked for only where two processes may run
    assert cert.get("processes", {}).get("jobs") == (1 if jobs == 1 else None)  # said only where it differs
    if jobs == 1:
        assert "one process, not 2" in certify.profile_table(cert)
