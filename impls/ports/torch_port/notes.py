"""What the torch port refuses and what it translates, in the certificate's words.

    why = refusal(model, "float32")   # None, or what torch.nn cannot express, naming the layer
    notes = notes_for(model)          # what the port translated (packed rows, torch's momentum ...), per layer

A layer's refusal is its emitter's `check` (impls/ports/torch_port/code.py's EMITTERS), or the declared reason of
a kind registered as refused; the notes are those of the families that write any (recurrent, normalization,
embedding), in that order.
"""

from __future__ import annotations

from ...model.description import Model
from .code import DTYPES, EMITTERS
from .embedding import notes as embedding_notes
from .normalization import notes as normalization_notes
from .recurrent import notes as recurrent_notes


def refusal(model: Model, dtype: str) -> str | None:
    """Why the torch port cannot express `model` in `dtype`, naming the layer; None when it can."""
    if str(dtype) not in DTYPES:
        return f"the torch port computes in {' or '.join(DTYPES)}, not {dtype}"
    for i, layer in enumerate(model.layers):
        entry = EMITTERS.get(layer.kind)
        check = entry.meta.get("check") if entry is not None else None
        why = EMITTERS.refusal(layer.kind) if entry is None else check(layer) if check is not None else None
        if why is not None:
            return f"{layer.label(i)}: {why}"
    return None


def notes_for(model: Model) -> list[str]:
    """What the port translates for the sequence kinds and the normalizations, for the certificate."""
    return [*recurrent_notes(model), *normalization_notes(model), *embedding_notes(model)]


__all__ = ["notes_for", "refusal"]
