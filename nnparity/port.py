"""`nnparity port`: write a model as its target framework's own, loadable without nnparity.

    written = port("net.keras", "torch", Path("net_torch"))          # a folder: model.py + weights
    port("net.py:model", "onnx", Path("net.onnx"), (3, 100, 64))      # one .onnx file

The port module of the target (impls/ports/*_port.py) writes it; this module checks what can be checked before
anything is written (the -o suffix, an existing OUT, the model, the target's declared refusal), then lets the port
write into a temporary sibling that is renamed to OUT only once complete (nnparity/output.py).
"""

from __future__ import annotations

from pathlib import Path

from impls.importers import BadInput
from impls.model import voices

from . import output, source

TARGETS = {"torch": "torch_nn", "keras": "keras", "onnx": "onnxruntime", "flax": "flax"}
"""--to -> the voice whose port module writes it."""
SUFFIXES = {"keras": ".keras", "onnx": ".onnx"}
"""Targets whose OUT is one file with this suffix; the others write a folder."""


class PortUnavailable(RuntimeError):
    """The target's port module cannot load here; the message says why."""


def check_out(to: str, out: Path, force: bool) -> None:
    """Bad input before any work: an unknown target, a wrong suffix, an existing OUT without --force."""
    if to not in TARGETS:
        raise BadInput(f"{out}: unknown target {to!r}; targets: {', '.join(TARGETS)}")
    want = SUFFIXES.get(to)
    if want and out.suffix.lower() != want:
        raise BadInput(f"{out}: a {to} port is one file named *{want}; give -o {out.with_suffix(want).name}")
    output.refuse_existing(out, force)
    if not out.parent.is_dir():
        raise BadInput(f"{out}: its folder {out.parent} does not exist")


def port(spec: str, to: str, out: Path, input_shape: tuple[int, ...] | None = None, native_layout: bool = False,
         force: bool = False) -> list[Path]:  # fmt: skip
    """Write `spec`'s model as a `to` port at exactly `out`; returns the paths written (under `out`)."""
    out = Path(out)
    check_out(to, out, force)
    model, _ = source.load(spec, input_shape)
    voice = TARGETS[to]
    try:
        module = voices.port_module(voice)
    except ImportError as e:
        raise PortUnavailable(f"the {to} port ({voices.PORTS[voice]}) cannot load here: {type(e).__name__}: {e}") from e
    why = module.refusal(model, module.port_dtype(model))  # asked for the dtype the port is written in
    if why:
        raise BadInput(f"{spec}: cannot be ported to {to}: {why}")
    with output.staged(out, force) as tmp:
        written = module.write(model, tmp, native_layout)
        rel = [Path(p).relative_to(tmp) if Path(p) != tmp else Path() for p in written]
    return [out / r if str(r) != "." else out for r in rel]


__all__ = ["SUFFIXES", "TARGETS", "PortUnavailable", "check_out", "port"]
