"""The Flax port in memory (issue 27): `Program`, what one build generates, execs and compiles and every rebound build
shares, and `execute`, a generated text run as a fresh module.

A Program execs the very text write() writes (codegen.source) in a module namespace of its own, unique name: no
folder, no model.py or variables.npz written or read. It jits module.apply and its vjp as functions of (variables,
x). `variables(model)` are the arrays variables.npz would hold (weights.arrays, in the same order), read into the tree
as the file's own load() reads them (the same keys, the same cast to the dtype), so a build computes what the
written port loaded by its load() computes, number for number. `record` is the recording variant
(codegen.source(record=True), whose __call__ also returns every layer's value): generated, exec'd and jitted on its
first use, once per Program. A model of the same structure (voices.structure) runs through the same Program with its
own variables, held under the Program's Flax names (its first model's): jax.jit traces and compiles a function of
(variables, x) again only when a shape, a dtype or the tree's keys change, never for new values, so every distinct
layer configuration is compiled once (`traces` counts the traces).
"""

from __future__ import annotations

import itertools
import linecache
import sys
import types
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ... import frameworks
from ...model import voices
from ...model.description import Model
from .codegen import source
from .emit import flax_names
from .layout import Boundary
from .weights import arrays

_COUNTER = itertools.count()


def module_name() -> str:
    """A fresh module name for a generated model.py (exec'd here, or imported from a folder by voice._import)."""
    return f"nnparity_flax_port_{next(_COUNTER)}"


def execute(text: str) -> types.ModuleType:
    """`text` (a generated model.py) run as a fresh module of its own name, never written to a file: ports of
    different models never collide, and a traceback shows the generated line (linecache)."""
    name = module_name()
    filename = f"<{name}: the Flax port's model.py, in memory>"
    linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    module = types.ModuleType(name)
    sys.modules[name] = module  # flax's dataclass transform looks the module up while the class is made
    exec(compile(text, filename, "exec"), module.__dict__)  # noqa: S102 - the text codegen.source generated
    return module


def integer_input(model: Model) -> bool:
    """Whether the model takes token ids (an integer input, fed as it is and given no gradient)."""
    return bool(np.issubdtype(np.dtype(model.input_dtype), np.integer))


def canonical_outputs(layout: Boundary, taps: list, y: Any) -> list[np.ndarray]:
    """Every layer's output in the canonical layout from the recording variant's (output, taps): each tap as Flax
    holds it inside the module, channels last, which is the canonical layout (a channels_first source's boundary
    transposes and a returned Flatten's (c, h, w) reorder come after the last layer); the last layer's, the module's
    own output through the boundary's conversion (layout.dy), as forward returns it."""
    return [*(np.asarray(t) for t in taps), layout.dy(np.asarray(y))]


class Program:
    """One generated Model of `model`'s structure in `dtype`, exec'd in memory (`module`), with its jitted functions of
    (variables, x): `apply` (inference), `pull` (the vjp: (variables, x, dy) -> (params' grads, dx or None for ids)),
    `record` (every layer's value). `traces`: how many times JAX traced each (one each, whatever rebinds run)."""

    def __init__(self, model: Model, dtype: str):
        jax = frameworks.load("jax")
        frameworks.load("flax")  # JAX configured first (x64: float64 stays float64)
        self.model, self.dtype, self.structure = model, dtype, voices.structure(model)
        self.names, self.layout = flax_names(model), Boundary(model)
        self.ids = integer_input(model)
        self.in_dtype = model.input_dtype if self.ids else dtype
        self.traces: Counter[str] = Counter()
        self.module = module = execute(source(model)).Model()
        self.apply = self._jit("apply", module.apply)  # inference: a BatchNorm on its moving statistics (read only)
        with_params = lambda v, p: {**v, "params": p}  # gradients of the params only: batch_stats is state
        if self.ids:  # token ids: no gradient for them (the reference's dx is None)
            pull = lambda v, x, dy: (*jax.vjp(lambda p: module.apply(with_params(v, p), x), v["params"])[1](dy), None)
        else:
            pull = lambda v, x, dy: jax.vjp(lambda p, x: module.apply(with_params(v, p), x), v["params"], x)[1](dy)
        self.pull = self._jit("pull", pull)
        self._record: Callable | None = None

    def _jit(self, name: str, fn: Callable) -> Callable:
        jax = frameworks.load("jax")

        def traced(*args):
            self.traces[name] += 1  # runs only while JAX traces: a compiled call never gets here
            return fn(*args)

        return jax.jit(traced)

    @property
    def record(self) -> Callable:
        """The recording variant's jitted apply, (variables, x) -> (output, every layer's value but the last)."""
        if self._record is None:
            self._record = self._jit("record", execute(source(self.model, record=True)).Model().apply)
        return self._record

    def outputs(self, variables: dict, x: Any) -> list[np.ndarray]:
        """Every layer's output, canonical, from one call of the recording variant on native x."""
        y, taps = self.record(variables, x)
        return canonical_outputs(self.layout, taps, y)

    def check(self, model: Model) -> None:
        """Refuse a model this Program does not compute: another structure (its names and weights may differ)."""
        if voices.structure(model) != self.structure:
            raise ValueError(f"flax: {model.name!r} is not of the structure of {self.model.name!r}, which this "
                             "build runs (kinds, options, shapes, boundary and input dtype must be equal)")

    def variables(self, model: Model) -> dict:
        """`model`'s variables in this Program's dtype, under its Flax names: variables.npz's arrays (weights.arrays)
        read into the tree as its load() reads them, without the file."""
        jnp = frameworks.load("jax").numpy
        out: dict = {}
        for key, a in arrays(model, self.names).items():  # "layer/weight", "layer/gate/weight", "batch_stats:layer/mean"
            collection, _, key_path = key.rpartition(":")
            *parents, leaf = key_path.split("/")
            node = out.setdefault(collection or "params", {})
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = jnp.asarray(a, dtype=self.dtype)
        return out


__all__ = ["Program", "canonical_outputs", "execute", "integer_input", "module_name"]
