"""Importers: what users hold -> a model description (impls/model/) plus the user's own loaded model.

    imported = load("model.keras")                    # a Keras 3 file, safe_mode on
    imported = load("net.py:make_model", (3, 100, 64)) # a torch.nn.Module or keras.Model, or a callable returning one
    imported = load("model.onnx")

One importer per source (keras_import.py, torch_import.py, onnx_import.py), each a registry of small converters
keyed by the source's layer class or op type; a miss is `UnsupportedLayer` naming the layer, its class or op type,
its position and the supported list. Nothing is unpickled: no torch.load without weights_only=True.
"""

from __future__ import annotations

import ast
import importlib
import runpy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import frameworks
from ..model.description import Model, ModelError


class BadInput(ValueError):
    """Input the command cannot use: a missing or corrupt file, a name the file lacks, a shape that does not fit.
    The message names the file and the problem, on one line."""


class UnsupportedLayer(ModelError):
    """A layer or node outside the supported set; the message names it, its class or op type, its position and
    the supported list."""


@dataclass
class Imported:
    """A model description and the user's own model, as its framework loaded it.

    forward: the source model itself, NumPy in and out in the canonical layout (the importer transposes at its
    boundary where the source's convention differs), computing in the source's own dtype.
    layer_outputs: the source's own output of every description layer for one input (its own chain, accumulated),
    canonical layout; None where the source cannot expose them.
    layer_call: the source's own layer i fed the given input (isolated), canonical layout; None where it cannot."""

    model: Model
    source: str  # "keras", "torch", "onnx"
    path: str
    forward: Callable[[np.ndarray], np.ndarray]
    layer_outputs: Callable[[np.ndarray], list[np.ndarray]] | None = None
    layer_call: Callable[[int, np.ndarray], np.ndarray] | None = None
    dtype: str = "float32"
    notes: list[str] = field(default_factory=list)  # what the import translated, for the certificate


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """'3,100,64' -> (3, 100, 64): the batch first. None stays None."""
    if text is None:
        return None
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise BadInput(f"--input-shape {text!r}: not comma-separated integers (for example 3,100,64)") from None
    if len(dims) < 2 or min(dims) < 1:
        raise BadInput(f"--input-shape {text!r}: needs the batch and at least one more dimension, all >= 1")
    return dims


def _frameworks_first(path: Path) -> None:
    """Start, through impls.frameworks, the Keras or TensorFlow that the user's file imports, before it runs: so
    they start configured (KERAS_BACKEND, thread counts) and quiet (TensorFlow's absl start-up lines on fd 2 went
    into a bad-input command's one-line stderr when the file imported Keras itself); and torchvision, whose own
    import fails beside this CPU torch ("operator torchvision::nms does not exist") unless frameworks loads it."""
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError, OSError):
        return  # running the file says what is wrong with it
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    for framework in ("keras", "tensorflow", "torchvision"):
        if framework in roots:
            try:
                frameworks.load(framework)
            except frameworks.BackendUnavailable:
                pass  # the file's own import fails as it runs, and says so


def _raised(e: BaseException) -> str:
    """What a user's file raised, on one line: SystemExit with its code (sys.exit() in a script is not a failed
    check but a file that cannot be imported as a model)."""
    if isinstance(e, SystemExit):
        return f"SystemExit (it called sys.exit({'' if e.code is None else repr(e.code)}) or raised SystemExit)"
    return f"{type(e).__name__}: {e}"


def _python_object(path: Path, name: str) -> Any:
    _frameworks_first(path)
    try:
        namespace = runpy.run_path(str(path), run_name="__nnparity_import__")
    except SyntaxError as e:
        raise BadInput(f"{path}: not valid Python (line {e.lineno}: {e.msg})") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 (the user's file failed or exited while it ran: bad input)
        raise BadInput(f"{path}: running it raised {_raised(e)}") from None
    if name not in namespace:
        names = sorted(k for k in namespace if not k.startswith("_"))
        raise BadInput(f"{path}: has no name {name!r}; it defines {names}")
    obj = namespace[name]
    return obj


def _is_torch_module(obj: Any) -> bool:
    return any(f"{c.__module__}.{c.__name__}" == "torch.nn.modules.module.Module" for c in type(obj).__mro__)


def _is_keras_model(obj: Any) -> bool:
    return any(c.__module__.startswith("keras") and c.__name__ in ("Model", "Layer") for c in type(obj).__mro__)


def locate(spec: str) -> tuple[Path, str]:
    """PATH or PATH.py:NAME -> (the file, NAME or ""), the file checked to exist: no framework is needed for that,
    so a command can say so before it starts one."""
    text = str(spec)
    path_text, _, name = text.partition(":") if text.count(":") == 1 and not Path(text).exists() else (text, "", "")
    path = Path(path_text)
    if not path.exists():
        raise BadInput(f"{path}: no such file")
    if not path.is_file():
        raise BadInput(f"{path}: not a file")
    return path, name


def load(spec: str, input_shape: tuple[int, ...] | None = None) -> Imported:
    """`spec` is PATH.keras, PATH.onnx or PATH.py:NAME. Raises BadInput, UnsupportedLayer, ModelError or ShapeError,
    each naming the file."""
    path, name = locate(spec)
    suffix = path.suffix.lower()
    if suffix == ".keras":
        return importlib.import_module(".keras_import", __name__).load_file(path, input_shape)
    if suffix == ".onnx":
        return importlib.import_module(".onnx_import", __name__).load_file(path, input_shape)
    if suffix == ".py":
        if not name:
            raise BadInput(f"{path}: a Python file needs :NAME, the module, model or zero-argument callable to import "
                           f"(for example {path}:model)")
        obj = _python_object(path, name)
        if callable(obj) and not (_is_torch_module(obj) or _is_keras_model(obj)):
            try:
                obj = obj()
            except TypeError as e:
                raise BadInput(f"{path}: {name} is a callable that needs arguments ({e}); give a zero-argument one") from None
            except (Exception, SystemExit) as e:  # noqa: BLE001 (the user's callable failed or exited: bad input)
                raise BadInput(f"{path}: calling {name}() raised {_raised(e)}") from None
        where = f"{path}:{name}"
        if _is_torch_module(obj):
            return importlib.import_module(".torch_import", __name__).from_module(obj, input_shape, where)
        if _is_keras_model(obj):
            return importlib.import_module(".keras_import", __name__).from_model(obj, input_shape, where)
        raise BadInput(f"{where}: is a {type(obj).__module__}.{type(obj).__name__}, not a torch.nn.Module or keras.Model")
    raise BadInput(f"{path}: unknown model file type {suffix!r}; nnparity reads .keras, .onnx and file.py:NAME")


__all__ = ["BadInput", "Imported", "UnsupportedLayer", "load", "locate", "parse_input_shape"]
