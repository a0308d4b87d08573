"""Issue 27's second core: JAX's voices computed in a worker process (nnparity/certify/worker.py) give the same
certificate, byte for byte apart from its times, as every voice computed in one process; a worker that cannot start
or dies leaves its voices to this process, and the certificate is still the same."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from impls.model import voices
from nnparity import certificate, certify
from nnparity.certify import worker

from .test_certify_one_pass import residual_model

VOICES = ("numpy", "jax", "flax")
TIMES = ("profile", "checks_s", "total_s", "memory")


def _certificate(model, jobs: int) -> dict:
    cert = certify.certify(model, None, certify.Settings(batch=3, bench=False, voices=VOICES, jobs=jobs))
    plain = json.loads(certificate.to_json(cert))
    return {k: v for k, v in plain.items() if k not in TIMES}


@pytest.fixture(scope="module")
def model():
    return residual_model()


@pytest.fixture(scope="module")
def alone(model):
    return _certificate(model, 1)


def test_the_split_sends_only_jax_voices_and_only_with_two_jobs():
    assert worker.split(voices.VOICES, 2) == ("jax", "flax")
    assert worker.split(voices.VOICES, 1) == ()
    assert worker.split(("numpy", "torch"), 2) == ()


def test_a_worker_gives_the_same_certificate_apart_from_times(model, alone, monkeypatch, capfd):
    started = []
    real = worker.Worker.start.__func__

    def spy(cls, *args):
        job = real(cls, *args)
        started.append(job)
        return job

    monkeypatch.setattr(worker.Worker, "start", classmethod(spy))
    split = _certificate(model, 2)
    assert started and started[0] is not None and started[0].proc.returncode == 0, "the worker did not run"
    assert json.dumps(split, sort_keys=False) == json.dumps(alone, sort_keys=False)
    assert list(split["voices"]) == list(VOICES)  # the certificate's order, not the order of computing
    assert "Warning" not in capfd.readouterr().err  # the worker writes nothing on the user's terminal (runpy warned)


def test_a_worker_that_cannot_start_leaves_its_voices_here(model, alone, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert _certificate(model, 2) == alone


def test_a_worker_that_dies_leaves_its_voices_here(model, alone, monkeypatch):
    def dying(cls, model, batch, voices_, one_pass):
        import tempfile

        proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
        return cls(proc, tempfile.TemporaryDirectory(), voices_)

    monkeypatch.setattr(worker.Worker, "start", classmethod(dying))
    assert _certificate(model, 2) == alone


def test_a_planted_bug_in_the_workers_bookkeeping_is_caught(model, alone, monkeypatch):
    """The worker's entries handed back under the wrong voice: the comparison above would see it."""
    real = worker.Worker.result

    def swapped(self):
        got = real(self)
        entries, seconds = got
        return {"jax": entries["flax"], "flax": entries["jax"]}, seconds

    monkeypatch.setattr(worker.Worker, "result", swapped)
    assert _certificate(model, 2) != alone


def test_the_training_step_computed_meanwhile_follows_what_the_worker_found(model, alone, monkeypatch):
    """This process takes every voice's training step while the worker computes (the worker's voices included, judged
    importable here). Where the worker finds one unavailable after all, the training section says so, as one process
    would; and the profile keeps both processes' seconds for a voice (flax: the worker's sections, this one's step)."""
    real = worker.Worker.result

    def flax_missing(self):
        entries, seconds = real(self)
        missing = {"voice": "flax", "unavailable": "planted: flax is not importable in the worker"}
        return {**entries, "flax": missing}, seconds

    monkeypatch.setattr(worker.Worker, "result", flax_missing)
    cert = certify.certify(model, None, certify.Settings(batch=3, bench=False, voices=VOICES, jobs=2))
    assert "unavailable" in cert["training"]["voices"]["flax"]
    assert "unavailable" not in alone["training"]["voices"]["flax"]
    monkeypatch.setattr(worker.Worker, "result", real)
    cert = certify.certify(model, None, certify.Settings(batch=3, bench=False, voices=VOICES, jobs=2))
    assert {"training", "forward", "layers"} <= set(cert["profile"]["flax"])


def test_the_memory_of_both_processes_is_read_together():
    """getrusage gives each process's own peak; the certificate also states the most both held at one moment, read
    from /proc: a child holding 300 MiB more reads at least that much."""
    code = "import sys, numpy as np; a = np.ones(300 * 2**20 // 8); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        assert worker.resident_gib(child.pid) >= 300 / 1024
        assert 0 < worker.resident_gib("self") < 64
    finally:
        child.communicate("")
    assert worker.resident_gib(child.pid) == 0.0  # gone


def test_a_certificate_with_a_worker_states_both_processes_memory(model):
    cert = certify.certify(model, None, certify.Settings(batch=3, bench=False, voices=VOICES, jobs=2))
    mem = cert["memory"]
    assert 0 < mem["peak_rss_together_gib"] <= mem["peak_rss_gib"] + mem["peak_rss_children_gib"] + 0.05
    assert mem["peak_rss_together_gib"] > mem["peak_rss_children_gib"] / 2  # the worker's memory is in it
    assert "both at once at most" in certificate.to_markdown(cert)


def test_a_worker_whose_parent_is_killed_exits_by_itself(tmp_path):
    """SIGKILL (or SIGTERM, whose default skips `finally`) leaves the parent no chance to stop its worker: the worker
    notices its parent is gone and exits, rather than computing for minutes and holding its memory for no one. Here a
    'worker' that would sleep 600 s under the watch (worker._exit_with) of a parent that is then killed."""
    import os
    import signal
    import time

    child = ("import os, sys, time; from nnparity.certify.worker import _exit_with; _exit_with(os.getppid(), 0.1); "
             "print('watching', flush=True); time.sleep(600)")
    parent_code = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
                   "print(p.pid, flush=True); p.wait()")
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True, cwd=root,
                              env={**os.environ, "PYTHONPATH": root})  # fmt: skip
    pid = int(parent.stdout.readline())
    assert parent.stdout.readline().strip() == "watching"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    for _ in range(100):
        try:
            os.kill(pid, 0)
            if open(f"/proc/{pid}/stat").read().split()[2] == "Z":  # exited, not yet reaped by its new parent
                return
        except (ProcessLookupError, FileNotFoundError):
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    pytest.fail(f"the worker {pid} outlived its killed parent by 10 s")


def test_the_worker_watches_its_parent_from_its_start(tmp_path, monkeypatch):
    import os

    watched = []
    monkeypatch.setattr(worker, "_exit_with", lambda parent, every_s=1.0: watched.append(parent))
    with pytest.raises(FileNotFoundError):  # no request: it stops there, after the watch began
        worker.main(str(tmp_path / "no-such-folder"))
    assert watched == [os.getppid()]
