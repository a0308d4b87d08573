"""`python -m reports zoo`: the model zoo (reports/zoo_models.py), each model built with seeded weights, saved as its
users have it, ported to every other framework through the `nnparity` command, each port loaded by its own
framework alone, compared with the source, and certified; the table is reports/ZOO.md (reports/zoo_render.py).

    python -m reports zoo                                   # every model -> reports/ZOO.md (+ reports/zoo.json)
    python -m reports zoo --only torchvision/resnet18 keras/ResNet50     # run these, keep the others' results
    python -m reports zoo --subset -o /tmp/ZOO.md           # one model a source (CI: tests/test_zoo.py)
    python -m reports zoo --no-run --readme README.md       # re-render ZOO.md and the README's table from zoo.json

Each step is a process of its own, as a user runs it: `python -m reports.zoo_models prepare` (the source file, the
input and the source's own output), `python -m nnparity port SPEC --to T -o OUT` per target, the port loaded in
`python -I` with nnparity's packages made unimportable (LOADER: it runs the port in float32 and in float64, to tell a
port's error from float32's own; an ONNX port's float64 run is onnx's reference evaluator, reports/onnx_float64.py),
`python -m nnparity certify SPEC --no-bench`. A model gets --model-timeout seconds in all (each command the time
left) and --memory-gib of resident memory per command (the machine is shared: a command over it is stopped, not left
to the kernel's OOM killer). Results are written after every model, so a run that stops keeps what was done.

Exit status: 0 written (whatever the models' verdicts: the report says them); 2 bad usage.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import zoo_models, zoo_render
from .markdown import atomic_write

ROOT = Path(__file__).resolve().parents[1]
ONNX64 = Path(__file__).with_name("onnx_float64.py")  # ONNX's float64 run, loaded by path in the port's interpreter
BAR = zoo_render.BAR
STEPS = ("ports", "certify")

LOADER = r"""
import importlib.abc, importlib.util, json, sys

class _NoNnparity(importlib.abc.MetaPathFinder):  # the editable install would otherwise make nnparity importable
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("nnparity", "impls", "reports", "bench", "verify"):
            raise ImportError(f"{name}: nnparity's packages are not importable in the port's interpreter")
        return None

sys.meta_path.insert(0, _NoNnparity())
import numpy as np

target, path, x_path, out_path, out64_path, onnx64_path = sys.argv[1:7]
x = np.load(x_path)

def module(file):
    spec = importlib.util.spec_from_file_location("ported_model", file)
    m = importlib.util.module_from_spec(spec)
    sys.modules["ported_model"] = m
    spec.loader.exec_module(m)
    return m

if target == "torch":
    import torch
    net = module(path + "/model.py").load()
    with torch.no_grad():
        y = net(torch.from_numpy(x)).numpy()
elif target == "keras":
    import keras
    net = keras.saving.load_model(path)
    y = net(x, training=False)
elif target == "onnx":
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    y = s.run(None, {s.get_inputs()[0].name: x})[0]
else:
    net, variables = module(path + "/model.py").load()
    y = net.apply(variables, x)
np.save(out_path, np.asarray(y, dtype=np.float32))
names = ("torch", "tensorflow", "keras", "jax", "flax", "onnxruntime", "onnx", "nnparity", "impls")
loaded = [n for n in names if n in sys.modules]  # what the port needed: before the float64 run's own imports

# The same port computing in float64, by its own framework's means (after the float32 run, which it leaves as is).
why64, y64 = None, None
try:
    if target == "torch":
        with torch.no_grad():
            y64 = net.double()(torch.from_numpy(x).double()).numpy()
    elif target == "keras":  # its config with every dtype policy float64, its weights cast
        def f64(o):
            if isinstance(o, dict):
                if o.get("class_name") == "DTypePolicy":
                    return {**o, "config": {**o["config"], "name": "float64"}}
                return {k: f64(v) for k, v in o.items()}
            return [f64(v) for v in o] if isinstance(o, list) else o
        net64 = net.__class__.from_config(f64(net.get_config()))
        net64.set_weights([np.asarray(w, np.float64) for w in net.get_weights()])
        for la in net64.layers:  # tf.cast takes a Python number or list to float64 through float32: float64 arrays,
            if isinstance(la, keras.layers.Rescaling):  # a number one per channel (TF folds a (1,) one into a conv's
                width = la.input.shape[-1]  # BiasAdd); an array (a max pool's -max-float pad map) as it is
                la.scale, la.offset = (np.broadcast_to(v.reshape(1), (width,)).copy() if v.size == 1 else v
                                       for v in (np.asarray(u, np.float64) for u in (la.scale, la.offset)))
        y64 = net64(x.astype(np.float64), training=False)
    elif target == "onnx":  # ONNX Runtime's CPU Conv is float32 only: the graph made float64, run by onnx's
        spec = importlib.util.spec_from_file_location("zoo_onnx_float64", onnx64_path)  # reference evaluator
        onnx64 = importlib.util.module_from_spec(spec)  # (reports/onnx_float64.py: numpy and onnx alone)
        spec.loader.exec_module(onnx64)
        y64 = onnx64.run_float64(path, x)
    else:
        import jax
        import jax.numpy as jnp
        jax.config.update("jax_enable_x64", True)  # else JAX computes float64 params and inputs in float32
        variables64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables)
        y64 = net.apply(variables64, x.astype(np.float64))
except Exception as e:  # the float32 result stands; the float64 one is missing, and says why
    why64 = f"{type(e).__name__}: {e}"[:300]
if y64 is not None:
    y64 = np.asarray(y64)
    if y64.dtype == np.float64:
        np.save(out64_path, y64)
    else:
        why64 = f"given float64 it computed {y64.dtype}"
print(json.dumps({"loaded": loaded, "float64": why64 or "saved"}))
"""

OWN = {"torch": {"torch"}, "keras": {"keras", "tensorflow", "jax"}, "onnx": {"onnxruntime"}, "flax": {"jax", "flax"}}
"""What each port's interpreter may have loaded: its own framework and what importing it loads (Keras' backend is
TensorFlow here; `import keras` alone loads jax where it is installed: measured, Keras 3.15)."""


def loader_command(target: str, port: str, y: str = "y.npy", y64: str = "y64.npy", x: str = "x.npy") -> list[str]:
    """LOADER's command line: the port (a path relative to the folder it runs in) run on x, its float32 output saved
    to y and its float64 one to y64."""
    return [sys.executable, "-I", "-c", LOADER, target, port, x, y, y64, str(ONNX64)]


def _env(isolated: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env |= {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow", "PYTHONHASHSEED": "0"}
    if not isolated:
        env["PYTHONPATH"] = str(ROOT)  # this checkout's nnparity, not another one's editable install
    return env


def _rss_gib(pgid: int) -> float:
    """Resident memory of every process in the group, GiB (Linux /proc; 0 elsewhere)."""
    total = 0
    for d in Path("/proc").glob("[0-9]*"):
        try:
            stat = (d / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            total += int((d / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    return total / 2**30


def run(argv: list[str], cwd: Path, timeout: float, memory_gib: float, isolated: bool = False) -> dict:
    """One command in its own process group: {"rc", "s", "stdout", "stderr", "stopped"}; a command past `timeout`
    seconds or `memory_gib` of resident memory is stopped (its group killed) and says which."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, env=_env(isolated), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)  # fmt: skip
    stopped = None
    out, err = "", ""
    while True:
        try:
            out, err = p.communicate(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - t0 > timeout:
                stopped = f"timed out after {timeout:.0f} s"
            elif memory_gib and _rss_gib(p.pid) > memory_gib:
                stopped = f"stopped over {memory_gib:g} GiB of memory"
            if stopped:
                os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
                break
    return {"rc": p.returncode, "s": round(time.monotonic() - t0, 1), "stdout": out, "stderr": err, "stopped": stopped}


def one_line(r: dict, folder: Path) -> str | None:
    """The command's own one-line error (`nnparity: ...`), else its traceback's last line; the model's folder
    left out of the text."""
    if r["stopped"]:
        return r["stopped"]
    lines = [ln.strip() for ln in (r["stderr"] or "").splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.startswith("nnparity: ")]
    text = said[-1].removeprefix("nnparity: ") if said else (lines[-1] if lines else f"exit {r['rc']}, nothing said")
    for prefix in (f"{folder}/", str(folder)):
        text = text.replace(prefix, "")
    return text


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |a - b| / max |b| in float64 (inf when the shapes differ or a value is not finite)."""
    a, b = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if a.shape != b.shape or not np.isfinite(a).all():
        return float("inf")
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def compare(y: np.ndarray, want: np.ndarray, y64: np.ndarray | None, want64: np.ndarray | None) -> dict:
    """A port's float32 output `y` against the source's `want` (rel); where the port ran in float64 too, its float64
    output against the source's float64 output (rel64: None where the source has none) and its own float32 error,
    y against y64 (own32). zoo_render.port_status reads them."""
    out = {"rel": rel_error(y, want), "rel64": None, "own32": None}
    if y64 is not None:
        out["own32"] = rel_error(y, y64)
        out["rel64"] = None if want64 is None else rel_error(y64, want64)
    return out


def _left(deadline: float) -> float:
    return max(deadline - time.monotonic(), 1.0)


def run_model(e: zoo_models.Entry, work: Path, limit_s: float, memory_gib: float,
              steps: tuple[str, ...] = STEPS) -> dict:  # fmt: skip
    """The model's steps (prepare always; "ports": port, load and compare per target; "certify"); the result
    record zoo_render reads, without the steps not run."""
    folder = work / e.name.replace("/", "_")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    deadline = time.monotonic() + limit_s
    py = sys.executable
    res: dict = {"name": e.name, "source": e.source, "listed": e.listed, "constructor": e.constructor,
                 "input_shape": list(e.input_shape), "limit_s": limit_s, "ports": {}, "certify": None}  # fmt: skip
    r = run([py, "-m", "reports.zoo_models", "prepare", e.name, str(folder)], ROOT, _left(deadline), memory_gib)
    res["prepare"] = {"rc": r["rc"], "s": r["s"], "error": None if r["rc"] == 0 else one_line(r, folder)}
    if r["rc"] != 0:
        return res
    spec = json.loads((folder / "spec.json").read_text())
    res["prepare"].update(want_max_abs=spec["want_max_abs"], finite=spec["finite"],
                          own_float32_error=spec.get("own_float32_error"))  # fmt: skip
    want = np.load(folder / "want.npy")
    want64 = np.load(folder / "want64.npy") if (folder / "want64.npy").is_file() else None
    for target in e.targets if "ports" in steps else ():
        out = folder / {"keras": "port.keras", "onnx": "port.onnx"}.get(target, f"port_{target}")
        if time.monotonic() >= deadline:
            res["ports"][target] = {"rc": None, "s": 0.0, "error": f"not run: the model's {limit_s:.0f} s were spent"}
            continue
        r = run([py, "-m", "nnparity", "port", e.spec, "--to", target, "-o", out.name, *e.shape_args], folder,
                _left(deadline), memory_gib)  # fmt: skip
        cell = res["ports"][target] = {"rc": r["rc"], "s": r["s"], "error": None if r["rc"] == 0 else one_line(r, folder),
                                       "stopped": r["stopped"]}  # fmt: skip
        if r["rc"] != 0:
            continue
        y, y64 = folder / f"y_{target}.npy", folder / f"y64_{target}.npy"
        r = run(loader_command(target, out.name, y.name, y64.name), folder, _left(deadline), memory_gib, True)
        load = cell["load"] = {"rc": r["rc"], "s": r["s"], "error": None if r["rc"] == 0 else one_line(r, folder)}
        if r["rc"] == 0:
            said = json.loads(r["stdout"].strip().splitlines()[-1])
            load["loaded"], load["float64"] = said["loaded"], said.get("float64")
            load.update(compare(np.load(y), want, np.load(y64) if y64.is_file() else None, want64))
        shutil.rmtree(out, ignore_errors=True) if out.is_dir() else out.unlink(missing_ok=True)
    if "certify" not in steps:
        return res
    if time.monotonic() >= deadline:
        res["certify"] = {"rc": None, "s": 0.0, "error": f"not run: the model's {limit_s:.0f} s were spent"}
        return res
    r = run([py, "-m", "nnparity", "certify", e.spec, *e.shape_args, "--no-bench", "-o", "cert"], folder,
            _left(deadline), memory_gib)  # fmt: skip
    cert = res["certify"] = {"rc": r["rc"], "s": r["s"], "error": None if r["rc"] in (0, 1) else one_line(r, folder)}
    js = folder / "cert" / "certificate.json"
    if r["rc"] in (0, 1) and js.is_file():
        c = json.loads(js.read_text())
        cert.update(verdict=c.get("verdict"), failures=c.get("failures", [])[:5], n_failures=len(c.get("failures", [])),
                    first_diverging_layer=c.get("first_diverging_layer"))  # fmt: skip
    return res


def blocks(res: dict) -> list[dict]:
    """The model's step results: prepare, each port, certify (those it has)."""
    return [b for b in (res.get("prepare"), *res.get("ports", {}).values(), res.get("certify")) if b]


def stamp(res: dict, run: int) -> dict:
    """Each step result says which run made it (a model's ports and certificate may come from different runs)."""
    for b in blocks(res):
        b.setdefault("run", res.get("run", run))
    res["run"] = run
    return res


def merge_model(old: dict | None, new: dict, steps: tuple[str, ...]) -> dict:
    """`new` for the steps it ran; the steps it did not run keep `old`'s results."""
    if old is None:
        return new
    out = dict(new)
    if "ports" not in steps:
        out["ports"] = old.get("ports", {})
    if "certify" not in steps:
        out["certify"] = old.get("certify")
    return out


def merge_results(into: dict, other: dict) -> dict:
    """`other`'s runs appended to `into`'s, and each of its models' step results replacing `into`'s."""
    index = {}  # other's run -> into's; a run already there (the same command and start) is not added twice
    for k, run in enumerate(other["runs"]):
        same = [j for j, r in enumerate(into["runs"]) if (r["command"], r["started"]) == (run["command"], run["started"])]
        index[k] = same[0] if same else len(into["runs"])
        if not same:
            into["runs"].append(run)
    for name, res in other["models"].items():
        res = stamp(json.loads(json.dumps(res)), res.get("run", 0))
        for b in blocks(res):
            b["run"] = index[b["run"]]
        res["run"] = index[res["run"]]
        ran = tuple(s for s, has in (("ports", bool(res.get("ports"))), ("certify", res.get("certify") is not None)) if has)
        into["models"][name] = merge_model(into["models"].get(name), res, ran)
    return into


def _commit() -> str:
    def git(*args: str) -> str:
        r = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports/ZOO.md", ":!reports/zoo.json")  # its own outputs
    return f"{head}+uncommitted" if dirty else head


def select(only: list[str] | None, subset: bool) -> list[zoo_models.Entry]:
    """The models to run; a name may be given whole or by its part after the slash where that is unique.
    Raises KeyError naming what it cannot find."""
    if subset:
        return [zoo_models.by_name(n) for n in zoo_models.SUBSET]
    if not only:
        return list(zoo_models.MODELS)
    chosen = []
    for n in only:
        hits = [e for e in zoo_models.MODELS if e.name == n] or [e for e in zoo_models.MODELS if e.name.split("/")[1] == n]
        if len(hits) != 1:
            raise KeyError(f"{n!r}: {'names ' + str([e.name for e in hits]) if hits else 'not in the zoo'} "
                           f"(reports/zoo_models.py lists {len(zoo_models.MODELS)} models)")
        chosen.append(hits[0])
    return chosen


def load_results(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"runs": [], "models": {}}


def write(results: dict, results_path: Path, md_path: Path, readme: Path | None) -> None:
    atomic_write(results_path, json.dumps(results, indent=1, sort_keys=True) + "\n")
    atomic_write(md_path, zoo_render.render(results))
    if readme is not None:
        atomic_write(readme, zoo_render.replace_section(readme.read_text(), zoo_render.readme_table(results, md_path,
                                                                                                     readme)))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m reports zoo", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these models (the others' results are kept)")
    p.add_argument("--subset", action="store_true", help=f"one model a source: {', '.join(zoo_models.SUBSET)}")
    p.add_argument("-o", "--output", type=Path, default=ROOT / "reports" / "ZOO.md", help="the Markdown report")
    p.add_argument("--results", type=Path, help="the results JSON (default: zoo.json beside -o)")
    p.add_argument("--steps", default=",".join(STEPS),
                   help="ports, certify or both (comma-separated); a step left out keeps the model's earlier result")
    p.add_argument("--model-timeout", type=float, default=600.0, help="seconds per model, every command together")
    p.add_argument("--memory-gib", type=float, default=10.0, help="resident memory a command may use (0: no limit)")
    p.add_argument("--workdir", type=Path, help="where models are built (default: a temporary folder, removed)")
    p.add_argument("--no-run", action="store_true", help="only re-render the report (and README) from the results")
    p.add_argument("--merge", type=Path, nargs="+", metavar="RESULTS.json",
                   help="fold these results (another run's zoo.json) into the results first: their step results win")
    p.add_argument("--readme", type=Path, help="also rewrite this README's zoo section (between its markers)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    steps = tuple(s for s in STEPS if s in args.steps.split(","))
    if not steps or set(args.steps.split(",")) - set(STEPS):
        print(f"error: --steps {args.steps!r}: give ports, certify or ports,certify", file=sys.stderr)
        return 2
    try:
        chosen = [] if args.no_run else select(args.only, args.subset)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    if args.readme is not None and zoo_render.BEGIN not in args.readme.read_text():
        print(f"error: {args.readme}: has no {zoo_render.BEGIN} ... {zoo_render.END} section", file=sys.stderr)
        return 2
    results_path = args.results or args.output.with_name("zoo.json")
    results = load_results(results_path)
    for res in results["models"].values():
        stamp(res, res.get("run", 0))
    for other in args.merge or []:
        merge_results(results, load_results(other))
    if args.merge:  # the report then says how it was put together: every merge, in order
        merged = shlex.join(["python", "-m", "reports", "zoo", *(argv if argv is not None else sys.argv[2:])])
        results["assembled"] = f"{results['assembled']}; then {merged}" if results.get("assembled") else merged
    if chosen:
        from bench import contention, machine

        command = shlex.join(["python", "-m", "reports", "zoo", *(argv if argv is not None else sys.argv[2:])])
        this = {"command": command, "commit": _commit(), "started": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"), "cpu": machine.cpu_model(), "cores": contention.cpus(), "models": []}  # fmt: skip
        start = contention.probe()
        this["matmul_gflops_start"] = round(start["matmul_gflops"], 1)
        results["runs"].append(this)
        work = args.workdir or Path(tempfile.mkdtemp(prefix="nnparity-zoo-"))
        try:
            for e in chosen:
                print(f"zoo: {e.name} ...", file=sys.stderr, flush=True)
                res = stamp(run_model(e, work, args.model_timeout, args.memory_gib, steps), len(results["runs"]) - 1)
                res = merge_model(results["models"].get(e.name), res, steps)
                results["models"][e.name] = res
                this["models"].append(e.name)
                print(f"zoo: {e.name}: {zoo_render.summary_line(res)}", file=sys.stderr, flush=True)
                shutil.rmtree(work / e.name.replace("/", "_"), ignore_errors=True)
                write(results, results_path, args.output, None)
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        end = contention.probe()
        this |= {"matmul_gflops_end": round(end["matmul_gflops"], 1), "contention": contention.verdict(
            start, end, contention.cpus())["reasons"], "finished": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds")}  # fmt: skip
    write(results, results_path, args.output, args.readme)
    print(f"wrote {args.output} ({len(results['models'])} models)")
    return 0


__all__ = ["LOADER", "compare", "main", "merge_results", "rel_error", "run_model", "select"]
