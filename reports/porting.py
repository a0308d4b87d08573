"""The porting section: what the ONNX exporters emit for the seed models, and whether the exported function is
the source model's at the float32 bar (impls/runtime/onnx_export.py measures; verify/test_onnx_export.py asserts).

    python -m reports porting [-o reports/PORTING.md] [--json porting.json] [--small]

Rows: exporter x model, with the opset, the operators that carry the GRU (a GRU node's linear_before_reset,
layout and direction, the gate order of its weights against the canonical ones), the Transposes the exporter
wrote, the input's declared shape, the error in ONNX Runtime against the source model and against the NumPy
float64 reference, and for GRU nodes the error with linear_before_reset planted wrong. An exporter that cannot
run here is a row saying why.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from .markdown import atomic_write, code_block, table

EXPORTERS = ("torch-dynamo", "torch-torchscript", "keras-tf2onnx")
MODELS = ("seed_gru_model", "seed_cnn_model")
BAR = 2e-5  # impls.contract.tolerance's float32 bar, restated so that rendering needs no framework (a test keeps them equal)


def collect(small: bool = False, seed: int = 0) -> list[dict]:
    """Measure every exporter on both seed models (the seed's sizes, batch 2; small=True: tiny models)."""
    from impls import BackendUnavailable
    from impls.contract.models import init_seed_cnn, init_seed_gru
    from impls.contract.spec import random_array
    from impls.runtime import onnx_export

    if small:
        params = {"seed_gru_model": init_seed_gru(seed, input_size=7, units=(6, 5), classes=4),
                  "seed_cnn_model": init_seed_cnn(seed, image=(14, 12, 2), filters=(3, 4), dense_units=6, classes=5)}  # fmt: skip
        xs = {"seed_gru_model": random_array((2, 9, 7), seed + 1), "seed_cnn_model": random_array((2, 14, 12, 2), seed + 2, low=0.0)}
    else:
        params = {"seed_gru_model": init_seed_gru(seed), "seed_cnn_model": init_seed_cnn(seed)}
        xs = {"seed_gru_model": random_array((2, 100, 64), seed + 1), "seed_cnn_model": random_array((2, 28, 28, 1), seed + 2, low=0.0)}
    rows = []
    for exporter in EXPORTERS:
        for model in MODELS:
            try:
                m = onnx_export.measure(exporter, params[model], xs[model])
                m.pop("onnx")
                rows.append(m)
            except (BackendUnavailable, ImportError, RuntimeError, ValueError) as e:
                rows.append({"exporter": exporter, "model": model, "unavailable": f"{type(e).__name__}: {e}"})
    return rows


def _gru(facts: dict) -> tuple[str, str]:
    nodes = facts["gru_nodes"]
    if not nodes:
        return ("no GRU node: " + (f"{facts['loops']} Loop(s) of MatMul, Sigmoid, Tanh" if facts["loops"] else "none")), "-"
    lbr = ", ".join(str(n["linear_before_reset"]) for n in nodes)
    layout = ", ".join(f"layout {n['layout']} {n['direction']}" for n in nodes)
    orders = sorted({n["gate_order"] for n in nodes})
    return f"{len(nodes)} GRU node(s), linear_before_reset {lbr}; {layout}", "; ".join(orders)


def frame(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        if "unavailable" in r:
            out.append({"exporter": r["exporter"], "model": r["model"], "opset": "-", "GRU as exported": r["unavailable"],
                        "gate order": "-", "layouts": "-", "vs source": "-", "vs NumPy float64": "-", "at the bar": "-",
                        "planted wrong linear_before_reset": "-"})  # fmt: skip
            continue
        f = r["facts"]
        gru, order = _gru(f) if r["model"] == "seed_gru_model" else ("-", "-")
        planted = r.get("planted")
        ok = r["err_vs_source"] <= BAR and r["err_vs_reference"] <= BAR
        out.append({
            "exporter": r["exporter"], "model": r["model"], "opset": str(f["opset"]), "GRU as exported": gru,
            "gate order": order,
            "layouts": f"input {f['input']['shape']}; Transposes {f['transposes'] or 'none'}",
            "vs source": f"{r['err_vs_source']:.1e}", "vs NumPy float64": f"{r['err_vs_reference']:.1e}",
            "at the bar": "yes" if ok else "NO",
            "planted wrong linear_before_reset": (f"{planted['linear_before_reset']}: {planted['err_vs_reference']:.2f} off, caught"
                                                  if planted else "-"),
        })  # fmt: skip
    return pd.DataFrame(out)


def render(rows: list[dict], command: str) -> str:
    lines = ["# Porting: what the ONNX exporters emit", "",
             ("Each seed model (weights from `impls.contract.models`, float32) exported and run in ONNX Runtime "
              f"(CPUExecutionProvider). Errors are normwise relative (impls/contract/tolerance.py); the float32 bar is {BAR:g}. "
              "`vs source` compares with the exporting framework's own model on the same input; `vs NumPy float64` "
              "with the reference on the float32-rounded inputs. A planted wrong `linear_before_reset` is the same "
              "exported graph with the attribute flipped."), "",
             table(frame(rows), escape_cells=True), "", "Produced by:", "", code_block(command)]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"


def main(args: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m reports porting", description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default="reports/PORTING.md")
    p.add_argument("--json", default=None, help="also write the measured rows as JSON")
    p.add_argument("--small", action="store_true", help="tiny models (seconds) instead of the seed's sizes")
    a = p.parse_args(args)
    rows = collect(small=a.small)
    command = "python -m reports porting" + "".join(f" {x}" for x in args)
    if a.json:
        atomic_write(Path(a.json), json.dumps(rows, indent=1))
    atomic_write(Path(a.output), render(rows, command))
    print(f"wrote {a.output}")
    bad = [r for r in rows if "unavailable" not in r and not (r["err_vs_source"] <= BAR and r["err_vs_reference"] <= BAR)]
    return 1 if bad else 0


__all__ = ["collect", "frame", "main", "render"]
