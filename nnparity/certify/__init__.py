"""The certificate's pipeline: one model description checked in every voice against the NumPy float64 reference.

    cert = certify(model, imported, Settings(batch=3, bench=True, command=argv))   # a plain, JSON-able dict

Sections, one module each (nnparity/certificate/ renders them): the model and the machine (about.py); the seeded
inputs and the reference (inputs.py); per voice the whole forward in float32 and float64, every layer isolated and accumulated,
the gradients of the input and of every parameter (per_voice.py, layers.py); every GRU layer with a seeded non-zero
initial state (initial_state.py, only where the model has a GRU); one Adam step per framework in its own convention
(training.py); the user's own loaded model (user_model.py); the paired speed ranking (nnparity/timing.py); the
verdict (verdict.py). Every comparison is the normwise relative error (checks.compare) against its bar from the
tolerance table; `profile` says where the time went.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impls.contract.tolerance import CALIBRATED_FACTOR, SPREAD_FACTOR, tolerance
from impls.importers import Imported
from impls.model import voices
from impls.model.description import Model

from . import about
from .about import model_bytes, model_section, peak_memory, release_memory, versions, worth_releasing
from .checks import Profile, attempt, compare
from .initial_state import has_gru, initial_state_checks
from .inputs import (
    INPUT_RANGE,
    SEEDS,
    SPREAD_RULE,
    Reference,
    cast,
    defined_dy,
    described,
    inputs,
    lengths,
    undefined_described,
)
from .layers import first_diverging, layer_checks
from .per_voice import DTYPES, availability, voice_section
from .training import UNMOVED, _unmoved, conditioned, training_section, zero_gradient_parameters
from .user_model import source_section
from .verdict import failures, overall_first_diverging
from .worker import Worker, cores, split

FORMAT = "nnparity.certificate/1"


@dataclass
class Settings:
    batch: int = 3
    bench: bool = True
    voices: tuple[str, ...] = voices.VOICES
    command: list[str] = field(default_factory=list)
    progress: Callable[[str], None] = lambda message: None
    spec: str = ""  # what the command was pointed at
    batch_note: str = ""  # why the batch is not the one the user gave, where it is not
    one_pass: bool = True  # False: every accumulated check builds its prefix (the slow path that checks the fast one)
    jobs: int = field(default_factory=cores)  # 2 or more: JAX's voices in a worker process (worker.py)


def certify(model: Model, imported: Imported | None, settings: Settings) -> dict[str, Any]:
    """The certificate of `model` (and of the user's own model, `imported`): a plain dict (JSON-able but for
    non-finite floats, which nnparity/certificate/ writes as strings)."""
    t0 = time.perf_counter()
    profile = Profile()
    batch = settings.batch
    data = inputs(model, batch)
    settings.progress("the NumPy float64 reference")
    with profile.section("reference", "forward"):
        ref = Reference.of(model, data["x"])
    data["dy"] = defined_dy(ref, data["dy"])
    gru = has_gru(model)
    cert: dict[str, Any] = {
        "format": FORMAT, "command": list(settings.command), "model": model_section(model, batch),
        "inputs": {**described(model, data["x"], batch), "batch_note": settings.batch_note or "the batch given",
                   **({"h0": f"uniform in {list(INPUT_RANGE)}, seed {SEEDS['h0']} + the GRU layer's index",
                       "gru_state": "the model itself starts every GRU from zeros, as its source does; the "
                                    "initial_state section checks a non-zero one"} if gru else {})},
        "reference": "impls.model.compose.reference_forward / reference_vjp on the model in float64 (NumPy)",
        "error_measure": "max|actual - reference| / max|reference| (impls.contract.tolerance.error_stats)",
        "bars": {d: tolerance(d) for d in DTYPES},
        "voices": {},
    }  # fmt: skip
    steps = undefined_described(model, ref)
    if steps:
        cert["inputs"]["compared_steps"] = steps
    builts32: dict[str, voices.Built] = {}
    entries: dict[str, dict] = {}
    large = worth_releasing(model, ref.outs)

    def here(voice: str) -> None:  # the voice's section computed in this process
        entries[voice], builts = voice_section(voice, model, ref, data["dy"], profile, settings.progress,
                                               settings.one_pass)  # fmt: skip
        builts32.update({voice: builts["float32"]} if settings.bench and "float32" in builts else {})
        del builts
        if large:
            release_memory()  # the voice's float64 build and its every-layer outputs: freed before the next voice's

    def usable(voice: str) -> bool:  # known from its entry, or for the worker's voices from whether it imports here
        return "unavailable" not in entries[voice] if voice in entries else availability(voice) is None

    size = model_bytes(model, ref.outs)
    jobs = 1 if settings.jobs > 1 and size >= about.ONE_PROCESS_FROM_BYTES else settings.jobs
    if jobs != settings.jobs:  # said only where it differs: the certificate is otherwise the same for any --jobs
        cert["processes"] = {"jobs": jobs, "why": (
            f"one process, not {settings.jobs}: the model's float64 weights and reference outputs take "
            f"{size / 2**30:.2f} GiB, at least {about.ONE_PROCESS_FROM_BYTES / 2**30:.2f} GiB, where a worker's own "
            "copy makes the two processes' peaks meet")}  # fmt: skip
    away = split(settings.voices, jobs)
    job = Worker.start(model, batch, away, settings.one_pass) if away else None
    try:
        for voice in settings.voices:
            if job is None or voice not in away:
                here(voice)
        # the training step while the worker computes: every voice's, the worker's included (its step is one build)
        expected = [v for v in settings.voices if usable(v)]
        if large:  # the reference's gradients (every parameter's, float64) are not needed again unless a voice is redone
            ref.forget_vjp()
            release_memory()
        trained = training_section(model, ref, expected, settings.voices, settings.progress, profile)
        got = job.result() if job else None
    finally:
        if job:
            job.stop()
    if got:
        entries.update(got[0])
        for who, row in got[1].items():  # the worker's seconds beside this process's (flax: its training step here)
            for section, seconds in row.items():
                profile.add(who, section, seconds)
    for voice in away if job else ():
        if voice not in entries:  # the worker failed: computed here after all
            here(voice)
    cert["voices"] = {voice: entries[voice] for voice in settings.voices}
    available = [v for v, e in cert["voices"].items() if "unavailable" not in e]
    if available != expected:  # a voice the worker found unavailable: the training section as it must read
        trained = training_section(model, ref, available, settings.voices, settings.progress, profile)
    if gru:
        settings.progress("GRU layers with a non-zero initial state")
        with profile.section("reference", "initial state"):
            cert["initial_state"] = initial_state_checks(model, ref, available)
    cert["training"] = trained
    with profile.section("source", "forward"):
        cert["source"] = source_section(imported, ref, settings.progress)
    cert["checks_s"] = time.perf_counter() - t0
    if settings.bench:
        from .. import timing

        settings.progress("the speed ranking")
        for voice in away if job else ():  # the worker's builts stayed there: the ranking builds its own
            if voice in entries and "float32" in entries[voice].get("forward", {}) and voice not in builts32:
                built, problem = attempt(voices.build, voice, model.astype("float32"), "float32")
                builts32.update({voice: built} if problem is None else {})
        builts32 = {v: builts32[v] for v in settings.voices if v in builts32}
        with profile.section("speed", "ranking"):
            cert["speed"] = timing.rank(builts32, cast(data["x"], "float32"), data["dy"].astype("float32"),
                                        SEEDS["blocks"], settings.progress, flops=model.flops(batch))  # fmt: skip
    else:
        cert["speed"] = {"skipped": "--no-bench"}
    cert["versions"] = versions()
    cert["platform"] = {"system": platform.platform(), "python": sys.version.split()[0]}
    cert["float32_calibration"] = calibration(cert)
    cert["float64_calibration"] = spread_calibration(cert)
    cert["failures"] = failures(cert)
    fd = overall_first_diverging(cert)
    cert["first_diverging_layer"] = fd["name"] if fd else None
    cert["first_diverging"] = fd
    cert["verdict"] = "pass" if not cert["failures"] else "fail"
    cert["profile"] = {who: {k: round(v, 3) for k, v in row.items()} for who, row in profile.seconds.items()}
    cert["memory"] = peak_memory(job.peak_together_gib, job.SAMPLE_S) if job else peak_memory()
    cert["total_s"] = time.perf_counter() - t0
    return cert


CALIBRATION_RULE = (
    f"a float32 check run from the model's input (the whole forward, every layer accumulated) over the table's bar is "
    f"judged by {CALIBRATED_FACTOR:g} times NumPy's own float32 error at that layer (the reference's own code run in "
    "float32 from the same input): float32 itself errs by that much there, and rounding grows with depth; one over "
    f"that too by the larger of it and {SPREAD_FACTOR:g} times the reference's one-float32-ulp spread there (how far "
    "its float64 result moves when every weight and the input move by 2^-23, relative). A layer isolated, fed the "
    "reference's input, keeps the table's bar")


def calibration(cert: dict[str, Any]) -> dict[str, Any]:
    """The certificate's statement of the calibrated float32 bar and how many checks it judged (and passed)."""
    checks = [c for e in cert["voices"].values() for c in [e.get("forward", {}).get("float32"),
              *(r.get("accumulated") for r in e.get("layers", {}).get("float32", []))] if c and c.get("calibrated")]
    return {"factor": CALIBRATED_FACTOR, "rule": CALIBRATION_RULE, "checks": len(checks),
            "passed": sum(bool(c["pass"]) for c in checks)}  # fmt: skip


def spread_calibration(cert: dict[str, Any]) -> dict[str, Any]:
    """The certificate's statement of the float64 bar by the reference's one-ulp spread and how many checks it judged
    (and passed): the whole forward, every layer accumulated, every gradient."""
    checks = [c for e in cert["voices"].values() for c in [e.get("forward", {}).get("float64"),
              *(r.get("accumulated") for r in e.get("layers", {}).get("float64", [])),
              *e.get("gradients", {}).get("tensors", [])] if c and "ulp_spread" in c]  # fmt: skip
    return {"factor": SPREAD_FACTOR, "seed": SEEDS["ulp"], "rule": SPREAD_RULE, "checks": len(checks),
            "passed": sum(bool(c["pass"]) for c in checks)}  # fmt: skip


def profile_table(cert: dict[str, Any]) -> str:
    """The certificate's profile as the plain-text table `nnparity certify --profile` prints."""
    p = Profile()
    p.seconds = cert.get("profile", {})
    mem = cert.get("memory", {})
    both = (f" (worker {mem['peak_rss_children_gib']:.2f} GiB; both at once at most {mem['peak_rss_together_gib']:.2f}"
            " GiB)") if "peak_rss_together_gib" in mem else ""  # fmt: skip
    why = cert.get("processes", {}).get("why")
    return (p.table() + f"\npeak resident memory {mem.get('peak_rss_gib', float('nan')):.2f} GiB{both}; checks "
            f"{cert['checks_s']:.1f} s, total {cert['total_s']:.1f} s" + (f"\n{why}" if why else ""))


__all__ = ["CALIBRATION_RULE", "DTYPES", "SPREAD_RULE", "FORMAT", "SEEDS", "UNMOVED", "Settings", "_unmoved", "attempt", "certify", "compare", "conditioned",
           "failures", "first_diverging", "layer_checks", "lengths", "profile_table", "zero_gradient_parameters"]
