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


@pytest.mark.parametrize("threshold, want", [(0, 3), (10**15, 0)])
def test_memory_is_released_after_each_voice_of_a_large_model_only(monkeypatch, threshold, want):
    import nnparity.certify as certify

    from .test_certify import small_gru

    calls = []
    monkeypatch.setattr(about, "RELEASE_FROM_BYTES", threshold)
    monkeypatch.setattr(certify, "release_memory", lambda: calls.append(1))
    cert = certify.certify(small_gru(), None, certify.Settings(bench=False, voices=("numpy", "torch"), jobs=1))
    assert cert["verdict"] == "pass"
    assert len(calls) == want  # one a voice and one before the training section, where the size reaches the threshold


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


def test_the_reference_forgets_its_backward_before_the_training_section_of_a_large_model_only(monkeypatch):
    import nnparity.certify as certify
    from nnparity.certify.inputs import Reference

    from .test_certify import small_gru

    forgot = []
    monkeypatch.setattr(Reference, "forget_vjp", lambda self: forgot.append(len(self._vjp)))
    for threshold, want in ((0, [1]), (10**15, [])):
        forgot.clear()
        monkeypatch.setattr(about, "RELEASE_FROM_BYTES", threshold)
        certify.certify(small_gru(), None, certify.Settings(bench=False, voices=("numpy",), jobs=1))
        assert forgot == want  # the one backward the gradients section cached, freed only where the model is large


def test_a_training_voice_of_a_large_model_is_released_after_its_step(monkeypatch):
    import nnparity.certify as certify
    from nnparity.certify import training

    from .test_certify import small_gru

    for threshold, want in ((0, 2), (10**15, 0)):
        calls = []
        monkeypatch.setattr(about, "RELEASE_FROM_BYTES", threshold)
        monkeypatch.setattr(training, "release_memory", lambda calls=calls: calls.append(1))
        cert = certify.certify(small_gru(), None, certify.Settings(bench=False, voices=("numpy", "torch_nn", "keras"),
                                                                    jobs=1))  # fmt: skip
        assert sorted(v for v, r in cert["training"]["voices"].items() if r.get("pass")) == ["keras", "torch_nn"]
        assert len(calls) == want  # one after each framework's step


def test_the_jax_backward_is_freed_with_its_chain():
    # a module-level cache of compiled backwards kept every chain, and with it every model's weights, to the end
    import gc
    import weakref

    pytest.importorskip("jax")
    from impls.model import compose
    from impls.primitives import jax_impl

    from .test_certify import small_gru

    model = small_gru()
    composed = compose.compose(jax_impl, model.astype("float64"), "float64")
    x = np.random.default_rng(3).uniform(-1, 1, (3, *model.input_shape))
    dy = np.random.default_rng(4).uniform(-1, 1, (3, *model.shapes(3)[-1][1:]))
    dx, grads = composed.vjp(jax_impl.asarray(x, "float64"), jax_impl.asarray(dy, "float64"))
    assert np.asarray(dx).shape == x.shape and grads
    again = composed.vjp(jax_impl.asarray(x, "float64"), jax_impl.asarray(dy, "float64"))[0]
    np.testing.assert_array_equal(np.asarray(again), np.asarray(dx))  # compiled once, on the chain, and reused
    chain = weakref.ref(composed.chain)
    del composed, dx, grads, again
    gc.collect()
    assert chain() is None, "the compiled backward kept its chain (and the model's weights) alive"


def test_tensorflow_is_asked_for_the_system_allocator_only_before_it_starts(tmp_path):
    import json
    import os
    import subprocess

    script = (
        "import json, os, sys\n"
        "from impls import frameworks\n"
        "first = frameworks.prefer_system_allocator()\n"
        "set_to = os.environ.get('TF_ONEDNN_USE_SYSTEM_ALLOCATOR')\n"
        "frameworks.load('tensorflow')\n"
        "print(json.dumps([first, set_to, frameworks.prefer_system_allocator()]))\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"}
    for given, want in ((None, "1"), ("0", "0")):  # a value the user set is kept
        e = env if given is None else {**env, "TF_ONEDNN_USE_SYSTEM_ALLOCATOR": given}
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=e, timeout=300, check=False)
        if "BackendUnavailable" in r.stderr:
            pytest.skip("tensorflow is not importable here")
        assert r.returncode == 0, r.stderr[-2000:]
        assert json.loads(r.stdout.strip().splitlines()[-1]) == [True, want, False]


@pytest.mark.parametrize("flag, asked", [(["--no-bench"], True), ([], False)])
def test_certify_asks_for_the_system_allocator_only_without_timing(monkeypatch, tmp_path, flag, asked):
    from impls import frameworks
    from nnparity import cli

    seen = []
    monkeypatch.setattr(frameworks, "prefer_system_allocator", lambda: seen.append(1) or True)
    monkeypatch.setattr(frameworks, "thread_limit", lambda n: __import__("contextlib").nullcontext(None))
    monkeypatch.setattr(cli, "_certify_limited", lambda *a: 0)
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    assert cli.main(["certify", str(model), *flag]) == 0
    assert bool(seen) is asked  # no speed is measured under the system allocator
