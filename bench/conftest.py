"""pytest options, parametrisation and machine facts of the benchmark suite.

    pytest bench/ --benchmark-json=run.json                 # quick profile, cpu (+ cuda when present)
    pytest bench/ --profile full|deepbench --bench-device cuda

Rows come from bench/cases.py for the chosen profile and devices (cuda when torch reports a GPU,
detected through bench/native_torch.py, never by importing torch here). After collection the selected
rows are sorted into comparison groups (bench/groups.py); a group is timed in interleaved blocks when its
first row runs, and every row's test records its own share (stats, extra_info per docs/DESIGN.md).
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from impls import BackendUnavailable, frameworks

from . import cases, costmodel, groups, harness, machine


def pytest_addoption(parser):
    group = parser.getgroup("nnparity", "nnparity benchmarks")
    group.addoption("--profile", choices=cases.PROFILES, default="quick",
                    help="benchmark profile: quick (default, seed shapes), full (sweeps, all modes), deepbench")  # fmt: skip
    group.addoption("--bench-device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: cpu, plus cuda when torch sees a GPU; cpu or cuda: only that device")  # fmt: skip
    group.addoption("--no-cuda-events", action="store_true",
                    help="skip the CUDA-event cross-check of cuda rows of 1 ms or more")  # fmt: skip
    group.addoption("--bench-threads", default=None,
                    help="compute threads for every framework: a number, or 'default' (each framework's own, the "
                         "machine's cores); default: the profile's (quick 1, full and deepbench 'default')")  # fmt: skip
    group.addoption("--bench-sweep", default=None,
                    help="only rows of these sweeps, comma-separated: seed, hidden, seq_len, batch, deepbench, seq_task "
                         "(ceilings and overhead rows always run)")  # fmt: skip
    group.addoption("--bench-blocks", type=int, default=None,
                    help="interleaved blocks per comparison group, split over its epochs (default: group time / "
                         "block, clamped to the profile's range)")  # fmt: skip
    group.addoption("--bench-group-time", type=float, default=None,
                    help="seconds of timed blocks a comparison group aims at (overrides the profile's)")  # fmt: skip
    group.addoption("--bench-epochs", type=int, default=None,
                    help="how many times over the run each group's blocks are split (overrides the profile's; 1: "
                         "each group timed alone when its first row runs)")  # fmt: skip
    group.addoption("--bench-slot", type=float, default=None,
                    help="seconds each implementation's slot in a block lasts, about (overrides the profile's 0.02)")  # fmt: skip
    group.addoption("--bench-malloc", choices=("steady", "default"), default="steady",
                    help="steady (default): fix glibc malloc's mmap/trim thresholds so per-call temporaries reuse the "
                         "heap in every process alike (bench/machine.py); default: leave glibc adaptive")  # fmt: skip
    group.addoption("--bench-pin", choices=("auto", "yes", "no"), default="auto",
                    help="confine the run to one CPU: auto (when every framework has one thread), yes, no")  # fmt: skip
    group.addoption("--cuda-wait", choices=("auto", "sync", "spin"), default="auto",
                    help="how a cuda torch row waits for the GPU: auto (spin on an event's query() for calls under "
                         "3 ms, else torch.cuda.synchronize), sync, spin")  # fmt: skip
    group.addoption("--bench-processes", default="auto",
                    help="time in N freshly started worker processes, one after another (bench/processes.py); auto "
                         "(default): the cost model's k (bench/costmodel.py); 1: in this process, as before issue 19. "
                         "Under --benchmark-disable nothing is timed and nothing is started")  # fmt: skip
    group.addoption("--bench-label", default=None,
                    help="the machine's name in the JSON and reports (default: from the hardware: CPU model, cores, "
                         "GPU model and count)")  # fmt: skip
    group.addoption("--bench-deadline", type=float, default=None,
                    help="seconds after the session starts; rows not started by then skip with the reason, so a "
                         "run on a lent machine still writes its JSON")  # fmt: skip


def pytest_configure(config):
    config._nnparity_t0 = time.monotonic()
    _sweeps(config)  # a wrong name stops here, before collection
    deadline = config.getoption("bench_deadline", default=None)
    if deadline is not None and not deadline > 0:
        raise pytest.UsageError(f"--bench-deadline {deadline}: give a positive number of seconds")
    for name in ("bench_blocks", "bench_group_time", "bench_slot", "bench_epochs"):
        v = config.getoption(name, default=None)
        if v is not None and not v > 0:
            raise pytest.UsageError(f"--{name.replace('_', '-')} {v}: give a positive number")
    frameworks.set_threads(threads(config))
    frameworks.use_jax_compile_cache(config.rootpath / ".cache" / "jax")  # compile time is outside every timed call
    pinning = config.getoption("bench_pin", default="no")
    if pinning == "yes" or (pinning == "auto" and frameworks.threads() == 1):
        config._nnparity_pin = machine.pin()
    else:
        config._nnparity_pin = {"policy": "unpinned"}
    malloc = config.getoption("bench_malloc", default="default")
    config._nnparity_malloc = machine.steady_malloc() if malloc == "steady" else {"policy": "default"}
    processes(config)  # a bad --bench-processes stops here


def processes(config) -> int | None:
    """--bench-processes as a number, None for auto (the cost model's)."""
    given = str(config.getoption("bench_processes", default="1"))
    if given == "auto":
        return None
    return _positive("--bench-processes", given, "processes", "auto")


def threads(config) -> int | None:
    """The run's thread policy: --bench-threads N or 'default', else the profile's (harness.THREADS)."""
    given = config.getoption("bench_threads", default=None)
    if given is None:
        return harness.THREADS[_profile(config)]
    if str(given) == "default":
        return None
    return _positive("--bench-threads", given, "threads", "default")


def _positive(option: str, given, what: str, word: str) -> int:
    """An option's positive int, or a usage error naming it and the word it also takes."""
    try:
        n = int(given)
    except ValueError:
        n = 0
    if n < 1:
        raise pytest.UsageError(f"{option} {given!r}: give a positive number of {what} or {word!r}")
    return n


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


SWEEPS = ("seed", "hidden", "seq_len", "batch", "deepbench", "seq_task")


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
    if "layer_row" in metafunc.fixturenames:
        rows = [r for r in _rows(metafunc.config) if r.work in cases.LAYER_WORKS]
        metafunc.parametrize("layer_row", rows, ids=[r.id for r in rows])
    if "seq_row" in metafunc.fixturenames:
        rows = [r for r in _rows(metafunc.config) if r.work in cases.SEQ_WORKS]
        metafunc.parametrize("seq_row", rows, ids=[r.id for r in rows])
    if "ceiling" in metafunc.fixturenames:
        cs = cases.ceilings(profile, devs)
        metafunc.parametrize("ceiling", cs, ids=[c.id for c in cs])


def pytest_collection_finish(session):
    """Sort the selected rows and ceilings into comparison groups, before the first test runs."""
    items = []
    for item in session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        # an empty parameter set (a sweep selection that leaves a test file no rows) holds NOTSET, no row
        items += [params[k] for k in ("op_row", "model_row", "layer_row", "seq_row", "ceiling")
                  if isinstance(params.get(k), (cases.Row, cases.Ceiling))]
    bench_session(session.config).register(items)


def options(config) -> harness.Options:
    profile = _profile(config)
    t = harness.TIMING[profile]
    changes = {f: config.getoption(o, default=None)
               for f, o in (("group_time", "bench_group_time"), ("slot", "bench_slot"), ("epochs", "bench_epochs"))}
    t = dataclasses.replace(t, **{k: v for k, v in changes.items() if v is not None})
    bs = getattr(config, "_benchmarksession", None)
    return harness.Options(profile, t, not config.getoption("no_cuda_events", default=False),
                           blocks=config.getoption("bench_blocks", default=None),
                           enabled=not (bs is None or bs.disabled), cuda_wait=config.getoption("cuda_wait", default="auto"),
                           threads=frameworks.threads())  # fmt: skip


def workers(config, opts: harness.Options):
    """bench.processes.Workers for a timed run of k >= 2 processes (the cost model's k unless given), else None."""
    k = processes(config)
    if not opts.enabled or k == 1:
        return None
    from .processes import Workers

    alloc = costmodel.allocate(costmodel.COSTS[opts.profile], k)
    if config.getoption("bench_epochs", default=None) is None:
        t = costmodel.worker_timing(opts.timing, alloc.share)
    else:  # --bench-epochs: each worker runs that many, with its share of the blocks
        t = dataclasses.replace(costmodel.worker_timing(opts.timing, alloc.share), epochs=opts.timing.epochs)
    pin = getattr(config, "_nnparity_pin", None) or {}
    policy = {"threads": frameworks.threads(), "pin_cpu": pin.get("cpu"), "malloc": (config._nnparity_malloc or {}).get("policy"),
              "blocks": opts.blocks, "cuda_events": opts.cuda_events, "cuda_wait": opts.cuda_wait}  # fmt: skip
    model = {"cost": dataclasses.asdict(costmodel.COSTS[opts.profile]), "processes": alloc.processes,
             "timed_s_per_process": alloc.timed_s, "share": alloc.share, "optimum_s": alloc.optimum_s,
             "variance": alloc.variance, "fits_budget": alloc.fits, "why": alloc.why}  # fmt: skip
    return Workers(config.rootpath, opts.profile, devices(config), t, alloc.processes, policy, model)


def bench_session(config) -> groups.Session:
    if not hasattr(config, "_nnparity_session"):
        opts = options(config)
        config._nnparity_session = groups.Session(opts, config.getoption("bench_deadline", default=None),
                                                  getattr(config, "_nnparity_t0", None),
                                                  workers=workers(config, opts))  # fmt: skip
    return config._nnparity_session


@pytest.fixture
def bench(request) -> groups.Session:
    return bench_session(request.config)


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["nnparity"] = machine.facts(_profile(config))
    machine_info["nnparity"]["contention"] = bench_session(config).finish()
    machine_info["nnparity"]["malloc"] = getattr(config, "_nnparity_malloc", None)
    machine_info["nnparity"]["pin"] = getattr(config, "_nnparity_pin", None)
    f = machine_info["nnparity"]
    given = config.getoption("bench_label", default=None)
    f["label"] = given or machine.label(f)
    f["label_from"] = "--bench-label" if given else "hardware (CPU model, cores, GPU model and count)"
    f["tree"] = machine.tree(config.rootpath)
    w = bench_session(config).workers
    f["processes"] = w.facts() if w is not None else {"k": 1, "start": "this pytest process (--bench-processes 1)"}


def pytest_terminal_summary(terminalreporter, config):
    v = bench_session(config).finish() if hasattr(config, "_nnparity_session") else None
    if v is None:
        return
    line = ("CONTENDED: " + "; ".join(v["reasons"])) if v["contended"] else "quiet"
    others = "not readable" if v["others_cores"] is None else f"{v['others_cores']:.2f} cores"
    terminalreporter.write_line(
        f"nnparity: machine {line} (matmul {v['start']['matmul_gflops']:.0f} -> {v['end']['matmul_gflops']:.0f} "
        f"GFLOP/s, other processes {others}; {len(v['groups_contended'])} of {v['groups_timed']} groups timed "
        f"while others were busy)")
