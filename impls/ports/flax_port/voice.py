"""The Flax port written and built: `write` (model.py and variables.npz in a folder, what users get), `load_port`
(what write writes, written to a temporary folder and imported as a module of its own name, loaded by its own load())
and `build`, the "flax" voice of the general path: that very code in memory (program.Program: the text exec'd, the
variables from the arrays, no file written or read; numerically identical to the written port loaded by its own
load()) under jax.jit, canonical layout in and out (layout.Boundary), its gradients read back through the weight maps
(weights.canonical). The build offers Built.outputs (every layer's output from one forward of the recording variant)
and Built.rebind (another model of the same structure through the same Program: nothing generated, exec'd, written or
compiled again).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ... import frameworks
from ...contract import limits
from ...model.description import Model
from ...model.voices import Built
from .codegen import source
from .emit import VOICE, bidirectional, has_state, masked, port_dtype, refusal
from .layout import transposes
from .normalization import batch_norm_notes
from .program import Program, integer_input, module_name
from .weights import arrays, canonical


def write(model: Model, out: Path, native_layout: bool = False) -> list[Path]:
    """Write the port at `out` (a folder): model.py and variables.npz. Returns the files written."""
    model.check(1)
    why = refusal(model, port_dtype(model))
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    code, npz = out / "model.py", out / "variables.npz"
    code.write_text(source(model, native_layout))
    np.savez(npz, **arrays(model))
    return [code, npz]


def _import(folder: Path) -> Any:
    """The generated model.py as a fresh module of its own name (ports of different models never collide)."""
    name = module_name()
    spec = importlib.util.spec_from_file_location(name, folder / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # flax's dataclass transform looks the module up while the class is made
    spec.loader.exec_module(module)
    return module


def load_port(model: Model, dtype: str, native_layout: bool = False) -> tuple[Any, dict]:
    """(module, variables in `dtype`): what write() writes, written to a temporary folder and loaded by its own load()."""
    frameworks.load("flax")  # JAX configured first (x64: float64 stays float64)
    with tempfile.TemporaryDirectory(prefix="nnparity-flax-") as tmp:
        write(model, Path(tmp) / "port", native_layout)
        code = _import(Path(tmp) / "port")
        return code.load(Path(tmp) / "port", dtype=dtype)


def _notes(model: Model) -> list[str]:
    """The built voice's notes: what the port translates, one a layer family the model holds."""
    notes = []
    if any(la.kind == "gru" for la in model.layers):
        notes.append("GRU: flax.linen.GRUCell's four biases, the z and r gates' b_x + b_h folded "
                     "(convert.gru_to_flax): exact for the forward; gradients go to both b_x and b_h")
    if any(la.kind == "lstm" for la in model.layers):
        notes.append("LSTM: flax.linen.LSTMCell's one bias per gate, b_x + b_h folded (convert.lstm_to_flax): exact "
                     "for the forward, NOT training-exact against a two-bias source (torch, ONNX: Adam moves one "
                     "bias per gate where the source moves b_x and b_h); gradients go to both b_x and b_h")
    if any(bidirectional(la) for la in model.layers):
        notes.append("bidirectional: nn.Bidirectional, the backward nn.RNN reverse=True, keep_order=True")
    if masked(model):
        notes.append("padded sequences: seq_lengths from the mask source to nn.RNN / nn.Bidirectional; padded steps "
                     "zeroed or held and length-0 rows' final states zeroed in the generated code, as the contract "
                     "says (Flax leaves the cell's run over the padding there)")
    if any(la.kind == "embedding" for la in model.layers):
        notes.append("embedding: nn.Embed (jnp.take: an out-of-range id would give NaN or wrap; the voice refuses "
                     "it at the boundary, Model.check_input)")
    t_in, t_out = transposes(model, native_layout=False)
    if t_in or t_out:
        notes.append("the port takes / returns the source's channels-first maps (NCHW, NCW) and transposes to "
                     "channels last inside (timed with it)")
    if any(la.kind == "dropout" for la in model.layers):
        notes.append("dropout left out (identity at inference)")
    if has_state(model):
        notes.append("batch_norm: nn.BatchNorm (momentum = the old value's share, as the description's; its "
                      "batch_stats collection holds moving_mean / moving_var; inference on them)")
    notes += [f"forward-exact only: {n}" for n in batch_norm_notes(model)]
    if any(la.kind == "global_max_pool" for la in model.layers):
        notes.append("global_max_pool: argmax + take_along_axis, its gradient to the first maximum as the contract's")
    if not model.is_chain():
        notes.append("a graph: named intermediate values in __call__")
    return notes


def build(model: Model, dtype: str) -> Built:
    """The port itself (the code write() writes, exec'd in memory: program.Program), under jax.jit; canonical layout
    in and out."""
    why = refusal(model, dtype)
    if why is not None:
        raise limits.Refused(f"{VOICE}: {why}")
    return bind(Program(model, dtype), model)


def bind(program: Program, model: Model) -> Built:
    """`model` (the Program's own, or one of its structure) run by `program` with its own variables."""
    jax = frameworks.load("jax")
    jnp = jax.numpy
    layout, variables, names = program.layout, program.variables(model), program.names

    def to_native(x: np.ndarray) -> Any:
        return jnp.asarray(layout.x(np.asarray(x)), dtype=program.in_dtype)

    def call(x: Any) -> Any:
        return jax.block_until_ready(program.apply(variables, x))

    def to_numpy(y: Any) -> np.ndarray:
        return layout.dy(np.asarray(y))

    def dy_to_native(dy: np.ndarray) -> Any:
        return jnp.asarray(layout.y(np.asarray(dy)), dtype=program.dtype)

    def vjp(x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, dict[tuple[str, str], np.ndarray]]:
        gp, gx = program.pull(variables, to_native(x), dy_to_native(dy))
        grads = canonical(model, jax.tree_util.tree_map(np.asarray, gp), gradients=True, names=names)
        return (None if gx is None else layout.dx(np.asarray(gx))), {k: grads[k] for k in model.parameters()}

    def step(x: Any, dy: Any) -> Any:
        return jax.block_until_ready(program.pull(variables, x, dy))

    def outputs(x: np.ndarray) -> list[np.ndarray]:
        return program.outputs(variables, built.to_native(x))  # built.to_native: the input checked, as forward's

    def rebind(other: Model) -> Built:
        program.check(other)
        return bind(program, other)

    built = Built(VOICE, program.dtype, to_native, call, to_numpy, vjp, step, "jit", _notes(model),
                  dy_to_native=dy_to_native, outputs=outputs, rebind=rebind)
    return built


__all__ = ["bind", "build", "integer_input", "load_port", "write"]
