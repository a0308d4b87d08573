"""pytest options, parametrisation and machine facts of the benchmark suite.

    pytest bench/ --benchmark-json=run.json                 # quick profile, cpu (+ cuda when present)
    pytest bench/ --profile full|deepbench --bench-device cuda

Rows come from bench/cases.py for the chosen profile and devices (cuda when torch reports a GPU,
detected through bench/native_torch.py, never by importing torch here). Test bodies call
bench/harness.py, which times one call + synchronize and fills extra_info per docs/DESIGN.md.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from impls import BackendUnavailable, frameworks

from . import cases, harness, machine


def pytest_addoption(parser):
    group = parser.getgroup("nnparity", "nnparity benchmarks")
    group.addoption("--profile", choices=cases.PROFILES, default="quick",
                    help="benchmark profile: quick (default, seed shapes), full (sweeps, all modes), deepbench")  # fmt: skip
    group.addoption("--bench-device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: cpu, plus cuda when torch sees a GPU; cpu or cuda: only that device")  # fmt: skip
    group.addoption("--no-cuda-events", action="store_true",
                    help="skip the CUDA-event cross-check of cuda rows of 1 ms or more")  # fmt: skip
    group.addoption("--bench-max-time", type=float, default=None,
                    help="seconds of timed calls per row (overrides the profile's)")  # fmt: skip
    group.addoption("--bench-threads", type=int, default=None,
                    help="compute threads for every framework (default: each framework's own, the machine's cores)")  # fmt: skip
    group.addoption("--bench-sweep", default=None,
                    help="only rows of these sweeps, comma-separated: seed, hidden, seq_len, batch, deepbench "
                         "(ceilings and overhead rows always run)")  # fmt: skip
    group.addoption("--bench-min-rounds", type=int, default=None,
                    help="fewest timed rounds per row (overrides the profile's)")  # fmt: skip
    group.addoption("--bench-deadline", type=float, default=None,
                    help="seconds after the session starts; rows not started by then skip with the reason, so a "
                         "run on a lent machine still writes its JSON")  # fmt: skip


def pytest_configure(config):
    config._nnparity_t0 = time.monotonic()
    _sweeps(config)  # a wrong name stops here, before collection
    deadline = config.getoption("bench_deadline", default=None)
    if deadline is not None and not deadline > 0:
        raise pytest.UsageError(f"--bench-deadline {deadline}: give a positive number of seconds")
    n = config.getoption("bench_threads", default=None)
    if n is not None:
        frameworks.set_threads(n)


def _profile(config) -> str:
    return config.getoption("profile", default="quick")


def _cuda() -> bool:
    try:
        from . import native_torch
    except BackendUnavailable:
        return False
    return native_torch.cuda_available()


def devices(config) -> tuple[str, ...]:
    if not hasattr(config, "_nnparity_devices"):
        choice = config.getoption("bench_device", default="auto")
        cuda = _cuda() if choice in ("auto", "cuda") else False
        config._nnparity_devices = {"auto": ("cpu", "cuda") if cuda else ("cpu",), "cpu": ("cpu",),
                                    "cuda": ("cuda",) if cuda else ()}[choice]  # fmt: skip
    return config._nnparity_devices


def _rows(config) -> list:
    rows = cases.rows(_profile(config), devices(config))
    wanted = _sweeps(config)
    return [r for r in rows if r.size.sweep in wanted] if wanted else rows


SWEEPS = ("seed", "hidden", "seq_len", "batch", "deepbench")


def _sweeps(config) -> set[str]:
    given = config.getoption("bench_sweep", default=None)
    wanted = {s.strip() for s in given.split(",")} if given else set()
    if not wanted <= set(SWEEPS):
        raise pytest.UsageError(f"--bench-sweep {given!r}: sweeps are {', '.join(SWEEPS)}")
    return wanted


def pytest_generate_tests(metafunc):
    profile, devs = _profile(metafunc.config), devices(metafunc.config)
    if "op_row" in metafunc.fixturenames:
        rows = [r for r in _rows(metafunc.config) if r.work in cases.OP_WORKS]
        metafunc.parametrize("op_row", rows, ids=[r.id for r in rows])
    if "model_row" in metafunc.fixturenames:
        rows = [r for r in _rows(metafunc.config) if r.work in cases.MODEL_WORKS]
        metafunc.parametrize("model_row", rows, ids=[r.id for r in rows])
    if "ceiling" in metafunc.fixturenames:
        cs = cases.ceilings(profile, devs)
        metafunc.parametrize("ceiling", cs, ids=[c.id for c in cs])


@pytest.fixture
def bench_opts(request) -> harness.Options:
    config = request.config
    deadline = config.getoption("bench_deadline", default=None)
    if deadline is not None:
        elapsed = time.monotonic() - config._nnparity_t0
        if elapsed > deadline:
            pytest.skip(f"not run: --bench-deadline {deadline:g} s had passed ({elapsed:.0f} s into the session)")
    profile = _profile(config)
    timing = harness.TIMING[profile]
    if config.getoption("bench_max_time", default=None) is not None:
        timing = dataclasses.replace(timing, max_time=config.getoption("bench_max_time"))
    if config.getoption("bench_min_rounds", default=None) is not None:
        timing = dataclasses.replace(timing, min_rounds=config.getoption("bench_min_rounds"))
    return harness.Options(profile, timing, not config.getoption("no_cuda_events", default=False))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["nnparity"] = machine.facts(_profile(config))
