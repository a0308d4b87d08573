"""The training-parity report: trains both seed models in NumPy, Keras and PyTorch (impls/train/training_parity.py),
writes the table as JSON (results/training_parity.json) and as Markdown (reports/TRAINING-PARITY.md).

    python -m reports training [--steps 20] [--batch 32] [-o reports/TRAINING-PARITY.md] [--json PATH]
    python -m reports training --from-json results/training_parity.json   # re-render, no training

Exit status 0 written, 2 bad usage or an unreadable --from-json file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from reports.markdown import atomic_write, code_block, escape, table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "reports" / "TRAINING-PARITY.md"
DEFAULT_JSON = ROOT / "results" / "training_parity.json"
COMMAND = "python -m reports training"


def _g(v: float | None, digits: int = 3) -> str:
    return "" if v is None else f"{v:.{digits}g}"


def _versions() -> dict[str, str | None]:
    import numpy as np

    from impls import frameworks

    return {"numpy": np.__version__} | {n: frameworks.version(n) for n in ("torch", "tensorflow", "keras", "jax")}


def render(result: dict, command: str) -> str:
    s = result["settings"]
    f64, f32 = s["float64_tolerance"], s["float32_tolerance"]
    out = [
        "# Training parity of the seed models: NumPy vs Keras vs PyTorch vs JAX\n",
        f"Produced by `{command}` (it also wrote the same numbers as JSON to `results/training_parity.json`).\n",
        (f"{s['steps']} Adam steps (lr {s['lr']:g}, betas {s['beta_1']:g}/{s['beta_2']:g}) of each seed model, "
        f"batch {s['batch']}, from the same canonical weights (seed {s['seed']}) on the same batches: "
        "sklearn's digits brought to 28x28x1 for the CNN, the frequency task at (100, 64) for the GRU "
        f"(impls/contract/data.py); GRU variant {s['gru_variant']}. The loss is Keras' categorical cross-entropy "
        "on the softmax probabilities, mean over the batch; losses[i] is batch i's loss before update i. "
        "NumPy runs its own Adam in each framework's convention (impls/train/numpy_train.py) with that "
        "framework's default eps: Keras 1e-7, torch 1e-8. Keras and PyTorch train the Keras and torch ports of the "
        "seed models (impls/ports/). JAX's loss and gradients (jax.value_and_grad over the seed model's description "
        "composed from impls/primitives/jax_impl.py's operations) step through numpy_train's own Adam, in Keras' "
        "convention (impls/train/jax_train.py).\n"),
    ]
    if "versions" in result:
        out.append("Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".\n")
    if result.get("unavailable"):
        out.append("Not run here: " + "; ".join(f"{k}: {escape(v)}" for k, v in result["unavailable"].items()) + "\n")

    rows = []
    for c in result["comparisons"]:
        if c["kind"] == "parity":
            bar = f64 if c["dtype"] == "float64" else f32[c["model"]][0]
            wbar = f64 if c["dtype"] == "float64" else f32[c["model"]][1]
            ok = c["max_loss_rel_diff"] <= bar and c["max_weight_rel_diff"] <= wbar
        else:
            bar = wbar = ok = None
        rows.append({
            "model": c["model"], "comparison": c["kind"], "reference": c["reference"], "other": c["other"],
            "max rel. loss diff": _g(c["max_loss_rel_diff"]), "loss bar": _g(bar),
            "max abs. weight diff": _g(c["max_weight_abs_diff"]), "rel. to max abs(w)": _g(c["max_weight_rel_diff"]),
            "weight bar": _g(wbar), "within": "" if ok is None else ("yes" if ok else "**NO**"),
        })  # fmt: skip
    out += ["## Summary\n", table(pd.DataFrame(rows), escape_cells=True)]
    out.append(
        "Relative loss difference: |loss_other - loss_ref| / |loss_ref| at each step, worst step shown. Weight "
        "difference: over every final parameter. Float32 runs are compared with the NumPy float64 run of the "
        "same convention.\n"
    )
    out += ["## Float32 tolerance\n", escape(s["float32_justification"]) + "\n"]
    out += [
        "## The two Adam conventions\n",
        ("torch: `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`; Keras: "
        "`p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)`. Keras adds eps to the un-corrected "
        "sqrt(v), so Keras with eps_k is torch with eps_k / sqrt(1 - b2^t) (31.6x larger at t = 1, 7.1x at "
        "t = 20). The rows above that are not `parity` measure what that costs: both defaults against "
        "each other, the convention alone at the same eps, and the eps value alone.\n"),
    ]
    runs = {(r["model"], r["voice"], r["dtype"], r["eps"]): r for r in result["runs"]}
    for model in dict.fromkeys(r["model"] for r in result["runs"]):
        cols = [(v, d, e) for (m, v, d, e) in runs if m == model]
        ref = {v: runs.get((model, f"numpy-{v}", "float64", None)) for v in ("keras", "torch")}
        steps = []
        for i in range(s["steps"]):
            row = {"step": str(i)}
            for v, d, e in cols:
                name = f"{v} {d}" + ("" if e is None else f" eps {e:g}")
                row[name] = f"{runs[(model, v, d, e)]['losses'][i]:.12f}"
            for v in ("keras", "torch"):
                other = runs.get((model, v, "float64", None))
                if ref[v] and other:
                    r0 = ref[v]["losses"][i]
                    row[f"{v} f64 rel. diff"] = _g(abs(other["losses"][i] - r0) / abs(r0), 2)
            steps.append(row)
        out += [f"## {model.upper()} model, loss per step\n", table(pd.DataFrame(steps), escape_cells=True)]
        secs = ", ".join(f"{v} {d}" + ("" if e is None else f" eps {e:g}") + f" {runs[(model, v, d, e)]['seconds']:.1f} s"
                         for v, d, e in cols)  # fmt: skip
        out.append(f"Wall time of each run (informational, machine-dependent): {secs}.\n")
    out += ["## Reproduce\n", code_block(command)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description="Train the seed models side by side and write the parity table.")
    p.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), metavar="FILE.md", help="Markdown to write")
    p.add_argument("--json", default=str(DEFAULT_JSON), metavar="FILE.json", help="JSON to write")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--models", nargs="+", choices=("gru", "cnn"), default=["gru", "cnn"])
    p.add_argument("--no-eps-breakdown", action="store_true", help="skip the two extra NumPy runs per model")
    p.add_argument("--from-json", metavar="FILE.json", help="render an existing JSON instead of training")
    args = p.parse_args(argv)
    if args.steps < 1 or args.batch < 1:
        p.error("--steps and --batch must be >= 1")
    if args.from_json:
        try:
            result = json.loads(Path(args.from_json).read_text())
            command = result.get("command", COMMAND)
            text = render(result, command)
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"error: cannot render {args.from_json}: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    else:
        from impls.train.training_parity import parity

        result = parity(models=tuple(args.models), steps=args.steps, batch=args.batch,
                        float32_models=tuple(args.models), eps_breakdown=not args.no_eps_breakdown)  # fmt: skip
        command = " ".join([COMMAND, *(argv or [])])
        result["command"], result["versions"] = command, _versions()
        atomic_write(args.json, json.dumps(result, indent=1).encode())
        print(f"wrote {args.json}")
        text = render(result, command)
    atomic_write(args.output, text.encode("utf-8"))
    print(f"wrote {args.output}")
    return 0
