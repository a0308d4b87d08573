"""The one place that imports PyTorch, TensorFlow, Keras and ONNX, lazily, with the environment they need.

Every other module gets a framework through `load(name)`. A framework that is not installed raises
`BackendUnavailable` naming the package and the import error, so callers (and pytest) can skip
with the reason instead of crashing.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


class BackendUnavailable(ImportError):
    """A framework or backend cannot be used here; the message says why."""


_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "onnx": "onnx"}


def _prepare(name: str) -> None:
    if name in ("tensorflow", "keras"):
        # Before the first TensorFlow import: silence oneDNN/absl start-up lines, keep Keras on TF.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def load(name: str) -> ModuleType:
    """Import and return the framework `name` ("torch", "tensorflow", "keras" or "onnx")."""
    if name not in _PACKAGES:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(_PACKAGES)}")
    _prepare(name)
    try:
        return importlib.import_module(_PACKAGES[name])
    except ImportError as e:  # not installed, or a broken install
        raise BackendUnavailable(f"{name} is not importable here ({type(e).__name__}: {e})") from e


def load_attr(module: str, attr: str):
    """An attribute of a framework's submodule (e.g. onnx.reference.ReferenceEvaluator)."""
    load(module.split(".")[0])
    return getattr(importlib.import_module(module), attr)


def version(name: str) -> str | None:
    """The framework's version, or None where it is not installed (never raises)."""
    try:
        return str(load(name).__version__)
    except BackendUnavailable:
        return None
