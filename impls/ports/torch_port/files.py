"""The torch port's files and weight maps: model.py and weights.pt written, loaded back by the port's own load(),
and the state dict <-> canonical weights (no torch needed for the maps).

    files = write(model, Path("out"))        # [out/model.py, out/weights.pt]
    net, code = load_port(model, "float64")  # the nn.Module those files load, and generate's Code
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ... import frameworks
from ...model.description import Model
from .code import Code, generate

FILES = ("model.py", "weights.pt")
_COUNTER = itertools.count()


def takes_ids(model: Model) -> bool:
    """The model's input is integer token ids (an embedding's), not floats."""
    return bool(np.issubdtype(np.dtype(model.input_dtype), np.integer))


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Write the port at `out` (a folder): model.py and weights.pt, in the weights' own dtype (port_dtype)."""
    return _write(model, Path(out), native_layout, None)[0]


def _write(model: Model, out: Path, native_layout: bool, dtype: str | None) -> tuple[list[Path], Code]:
    torch = frameworks.load("torch")
    code = generate(model, dtype, native_layout)
    out.mkdir(parents=True, exist_ok=True)
    src, weights = out / FILES[0], out / FILES[1]
    src.write_text(code.source)
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in code.state.items()}, weights)
    return [src, weights], code


def _import(folder: Path) -> Any:
    """The written model.py as a module of its own (a unique name: several ports live side by side)."""
    name = f"nnparity_torch_port_{next(_COUNTER)}"
    spec = importlib.util.spec_from_file_location(name, folder / FILES[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_port(model: Model, dtype: str, native_layout: bool = False) -> tuple[Any, Code]:
    """(the nn.Module that `write` writes for `model` in `dtype`, loaded by the port's own load(), and its Code)."""
    with tempfile.TemporaryDirectory(prefix="nnparity-torch-port-") as tmp:
        _, code = _write(model, Path(tmp), native_layout, dtype)
        net = _import(Path(tmp)).load()
    return net, code


def state_dict(model: Model, dtype: str | None = None) -> dict[str, np.ndarray]:
    """The port's state dict of `model`'s canonical weights (NumPy, torch's layouts): no torch needed."""
    return generate(model, dtype).state


def canonical(model: Model, named: dict[str, np.ndarray], code: Code | None = None) -> dict[tuple[str, str], np.ndarray]:
    """{state key: torch-layout array} (weights or their gradients: the maps are permutations and transposes) ->
    {(layer, weight): canonical array} for every parameter of the model."""
    return grad_map(generate(model) if code is None else code, model, named)


def grad_map(code: Code, model: Model, named: dict[str, np.ndarray],
             with_state: bool = False) -> dict[tuple[str, str], np.ndarray]:  # fmt: skip
    """{state key: torch-layout array} -> {(layer, weight): canonical array} for every parameter of the model (and,
    with_state, every state weight: a BatchNorm's moving statistics)."""
    out = {}
    for layer in model.layers:
        if layer.weights:
            out |= {(layer.name, k): v for k, v in code.back(layer.name, named).items()}
    keys = [*model.parameters(), *(model.state() if with_state else ())]
    return {k: out[k] for k in keys}


__all__ = ["FILES", "canonical", "grad_map", "load_port", "state_dict", "takes_ids", "write"]
