"""Exported graphs: the seed models leave their framework through its ONNX exporter and run in ONNX Runtime.

- the torch ports of the seed models (impls/ports/torch_port.py: the nn.Modules nnparity writes) through
  torch.onnx.export, both exporters: "dynamo" (torch.export + onnxscript, the default since torch 2.9) and
  "torchscript" (dynamo=False, the legacy tracer);
- the Keras ports (impls/ports/keras_port.py: keras.Sequential of built-in layers) through
  keras.Model.export(format="onnx"), which on the TensorFlow backend is tf2onnx.

`facts(model)` reads what an exporter emitted (opset, operators, each GRU node's linear_before_reset, layout and
direction, whether its W/R/B initializers are the canonical weights in ONNX's (z, r, h) order, the Transposes) so
that verify/test_onnx_export.py and the porting report (python -m reports porting) can state it; `plant` writes a
wrong attribute into a copy, to show the suite catching it.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import backend, convert, frameworks
from ..contract.models import SeedCNNParams, SeedGRUParams
from ..model import seed as seed_models
from ..model import voices as model_voices

onnx = frameworks.load("onnx")
EXPORTERS = ("torch-dynamo", "torch-torchscript", "keras-tf2onnx")


def description(params: SeedGRUParams | SeedCNNParams, shape: tuple[int, ...]) -> Any:
    """The seed model holding `params`, for inputs of `shape`, as a model description."""
    if isinstance(params, SeedGRUParams):
        return seed_models.from_gru_params(params, "reset_after", int(shape[1]))
    return seed_models.from_cnn_params(params, tuple(int(d) for d in shape[1:]))


def export(exporter: str, params: SeedGRUParams | SeedCNNParams, shape: tuple[int, ...]) -> Any:
    """The seed model holding `params` (float32), exported by `exporter` for inputs of `shape` -> ModelProto."""
    if exporter not in EXPORTERS:
        raise ValueError(f"unknown exporter {exporter!r}; valid: {', '.join(EXPORTERS)}")
    from ..ports import keras_port, torch_port

    model = description(params, shape)
    x = np.zeros(shape, np.float32)
    if exporter.startswith("torch"):
        torch = frameworks.load("torch")
        net, _ = torch_port.load_port(model, "float32")
        with torch.no_grad():
            if exporter == "torch-dynamo":
                return torch.onnx.export(net, (torch.from_numpy(x),), dynamo=True, verbose=False).model_proto
            with tempfile.TemporaryDirectory() as d:
                torch.onnx.export(net, (torch.from_numpy(x),), str(Path(d) / "m.onnx"), dynamo=False)
                return onnx.load(str(Path(d) / "m.onnx"))
    net = keras_port.keras_model(model, "float32")
    net(x)  # Keras exports only a model that has been called
    with tempfile.TemporaryDirectory() as d:
        net.export(str(Path(d) / "m.onnx"), format="onnx", verbose=False)
        return onnx.load(str(Path(d) / "m.onnx"))


def run(model: Any, x: np.ndarray, device: str | None = None) -> np.ndarray:
    """The model's first output on x, in ONNX Runtime."""
    s = backend("onnxruntime").session(model, device)
    return s.run(None, {s.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]


def plant(model: Any, linear_before_reset: int) -> Any:
    """A copy of `model` whose every GRU node says linear_before_reset = the value given (a planted bug)."""
    out = copy.deepcopy(model)
    for node in _nodes(out.graph):
        if node.op_type == "GRU":
            for a in node.attribute:
                if a.name == "linear_before_reset":
                    a.i = linear_before_reset
                    break
            else:
                node.attribute.append(onnx.helper.make_attribute("linear_before_reset", linear_before_reset))
    return out


def _nodes(graph: Any):
    """Every node, subgraphs (Loop and If bodies) included."""
    for node in graph.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(a.g)


def _attrs(node: Any) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute if a.type != onnx.AttributeProto.GRAPH}


def _gate_order(model: Any, node: Any, w: Any) -> str:
    """'z, r, h (the canonical weights exactly)' where the node's W, R, B initializers are convert.gru_to_onnx of
    the canonical layer; else what was found."""
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    names = list(node.input[1:4])
    if w is None or any(n not in inits for n in names):
        return "computed in the graph (not initializers)"
    want = convert.gru_to_onnx(w)
    got = dict(zip(("W", "R", "B"), (inits[n] for n in names)))
    if all(got[k].shape == want[k].shape and np.allclose(got[k], want[k].astype(np.float32), rtol=0, atol=0) for k in want):
        return "z, r, h (the canonical weights exactly)"
    H = want["R"].shape[2]
    swapped = {k: np.concatenate([np.split(v, 3 if k != "B" else 6, axis=1)[i] for i in
                                  ((1, 0, 2) if k != "B" else (1, 0, 2, 4, 3, 5))], axis=1) for k, v in want.items()}  # fmt: skip
    if all(np.allclose(got[k], swapped[k].astype(np.float32), rtol=0, atol=0) for k in want):
        return "r, z, h (torch's order: wrong for ONNX)"
    return f"neither (hidden size {H})"


def facts(model: Any, params: SeedGRUParams | SeedCNNParams | None = None) -> dict[str, Any]:
    """What an exported ModelProto holds: opset, operators, GRU nodes (linear_before_reset, layout, direction,
    gate order against `params`' layers), Transposes, the input's declared shape."""
    nodes = list(_nodes(model.graph))
    layers = [params.gru1, params.gru2] if isinstance(params, SeedGRUParams) else []
    grus = []
    for i, n in enumerate(n for n in nodes if n.op_type == "GRU"):
        a = _attrs(n)
        grus.append({"linear_before_reset": int(a.get("linear_before_reset", 0)), "layout": int(a.get("layout", 0)),
                     "direction": (a.get("direction") or b"forward").decode(), "hidden_size": int(a["hidden_size"]),
                     "gate_order": _gate_order(model, n, layers[i] if i < len(layers) else None)})  # fmt: skip
    inp = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in inp.type.tensor_type.shape.dim]
    return {
        "opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "operators": sorted({n.op_type for n in nodes}),
        "gru_nodes": grus,
        "transposes": [list(_attrs(n).get("perm", [])) for n in nodes if n.op_type == "Transpose"],
        "loops": sum(n.op_type in ("Loop", "Scan") for n in nodes),
        "input": {"name": inp.name, "shape": dims},
    }


SOURCE = {"torch-dynamo": "torch_nn", "torch-torchscript": "torch_nn", "keras-tf2onnx": "keras"}
"""The voice whose model each exporter exports: its own forward is what the exported function must equal."""


def measure(exporter: str, params: SeedGRUParams | SeedCNNParams, x: np.ndarray) -> dict[str, Any]:
    """Export, read the facts, run in ONNX Runtime: the relative error (impls.contract.tolerance's measure) against the
    source model's own float32 forward and against the NumPy float64 reference on the float32-rounded inputs, and,
    where there are GRU nodes, that of the same graph with a planted wrong linear_before_reset. "onnx" holds the
    exported ModelProto."""
    from ..contract.tolerance import error_stats

    gru = isinstance(params, SeedGRUParams)
    x32 = np.asarray(x, np.float32)
    model = export(exporter, params, x32.shape)
    got = run(model, x32)
    source = model_voices.build(SOURCE[exporter], description(params, x32.shape), "float32").forward(x32)
    p64 = params.map(lambda a: np.asarray(a, np.float32).astype(np.float64))
    want = seed_models.reference_model(p64, "reset_after")(x32.astype(np.float64))
    out = {"exporter": exporter, "model": "seed_gru_model" if gru else "seed_cnn_model", "shape": list(x32.shape),
           "onnx": model, "facts": facts(model, params), "err_vs_source": error_stats(got, source).rel,
           "err_vs_reference": error_stats(got, want).rel}  # fmt: skip
    if out["facts"]["gru_nodes"]:
        wrong = 1 - out["facts"]["gru_nodes"][0]["linear_before_reset"]
        out["planted"] = {"linear_before_reset": wrong, "err_vs_reference": error_stats(run(plant(model, wrong), x32), want).rel}
    return out
