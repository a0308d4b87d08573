"""The tree's shape, as issue 23 states it, held by tests:

- the kinds matrix (impls/coverage.py): every layer kind computes in every voice from primitives, every importer whose
  source has it converts it, every port emits it or declares a refusal with its reason; a planted gap is named;
- each kind's LayerSpec.OPS is the whole truth: running the reference on a tiny model of each kind calls no op-contract
  function the kind does not declare;
- no import circles among the project's modules, function-level imports included;
- no module over 400 lines in impls/, nnparity/ and bench/.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import numpy as np
import pytest

from impls import coverage
from impls.model import compose, seeded
from impls.model.layers import KINDS
from impls.primitives import numpy_impl
from verify.test_model_voices import TINY

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("impls", "nnparity", "bench")
MAX_LINES = 400


@pytest.fixture(scope="module")
def rows():
    return coverage.matrix()


def test_every_kind_is_computed_converted_or_emitted_everywhere_or_declared(rows):
    unavailable = sorted({c for r in rows for c, (s, _) in r.cells.items() if s == "unavailable"})
    assert not coverage.missing(rows), "\n".join(coverage.missing(rows))
    if unavailable:
        pytest.skip(f"columns whose framework is not installed here: {unavailable}")


def test_refusals_and_absences_carry_their_reasons(rows):
    for r in rows:
        for column, (state, detail) in r.cells.items():
            if state in ("refused", "absent"):
                assert len(detail) > 20, f"{r.kind}: {column}: {state} without a reason a user can read: {detail!r}"


def test_a_planted_gap_is_named_with_its_kind_and_column(monkeypatch):
    """Remove one kind's Flax emitter (without declaring a refusal): the matrix names that kind and the flax port."""
    registry = pytest.importorskip("impls.ports.flax_port").EMITTERS
    entries = dict(registry._entries)
    entries.pop("dense")
    monkeypatch.setattr(registry, "_entries", entries)
    gaps = coverage.missing(coverage.matrix())
    assert any(g.startswith("dense: flax port:") for g in gaps), gaps


def test_a_planted_missing_op_is_named(monkeypatch):
    monkeypatch.setattr(KINDS["layer_norm"], "OPS", (*KINDS["layer_norm"].OPS, "no_such_op"))
    gaps = coverage.missing(coverage.matrix())
    assert any(g.startswith("layer_norm: numpy (primitives): ") and "no_such_op" in g for g in gaps), gaps


class _Recorder(types.ModuleType):
    """numpy_impl, recording the names every kind's forward looks up on it."""

    def __init__(self):
        super().__init__("recording_numpy_impl")
        self.called: set[str] = set()

    def __getattr__(self, name):
        value = getattr(numpy_impl, name)
        if callable(value) and not name.startswith("_"):
            self.called.add(name)
        return value


@pytest.mark.parametrize("case", list(TINY))
def test_each_kinds_declared_ops_are_the_ops_its_forward_calls(case):
    shape, specs = TINY[case]
    model = seeded.chain(case, shape, specs, seed=5, batch=3)
    x = np.random.default_rng(6).uniform(-1.0, 1.0, (3, *shape))
    for i, layer in enumerate(model.layers):
        sub = model.sub(i) if KINDS[layer.kind].ARITY == 1 else None
        if sub is None or model.mask_sources()[i] is not None:
            continue  # merges and masked layers: their ops are recorded where their sources are
        ops = _Recorder()
        ins = compose.reference_inputs(model, x)[i]
        compose.compose(ops, sub, "float64")(ins)
        undeclared = ops.called - set(KINDS[layer.kind].OPS) - {"asarray", "to_numpy"}
        assert not undeclared, f"{layer.kind}: its forward calls {sorted(undeclared)}, which its OPS does not declare"


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (f, is_pkg)
    return mods


def _imports(mods: dict, name: str, path: Path, is_pkg: bool) -> set[str]:
    """The project modules `name` imports anywhere in its file. `from p import m` names module p.m where m is one
    (not the package p), so a submodule's `from .. import sibling` is no edge to its package."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if is_pkg else name.split(".")[:-1]
            prefix = ".".join([*base[: len(base) - node.level + 1], *([node.module] if node.module else [])]) \
                if node.level else node.module  # fmt: skip
            subs = [f"{prefix}.{a.name}" for a in node.names if f"{prefix}.{a.name}" in mods]
            targets = subs + ([prefix] if len(subs) < len(node.names) else [])
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_no_import_circles():
    mods = _modules()
    graph = {m: _imports(mods, m, *mods[m]) for m in mods}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_module_over_400_lines():
    big = {str(f.relative_to(ROOT)): n for f, _ in _modules().values() if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines: {big}"
