"""Every layer of the model, isolated and accumulated, in one voice and dtype; and the first diverging layer.

Isolated: the layer fed the reference's own input, through the voice's build of that layer alone (LayerBuilds: one
build per distinct layer configuration, rebound to each layer's weights, so nothing is compiled or written twice).
Accumulated: the voice's own output of the layer when it runs the whole model from the input. One forward of the
whole model gives every layer's (Built.outputs, Polygraphy's "every tensor an output"), so the cost grows with the
layers, not their square. A voice whose build does not offer its outputs, and the slow path kept to check the fast
one (one_pass=False), take today's way: in a chain the accumulated output feeds the next layer's isolated build; in
a graph, or where a padding mask reaches a layer, the voice builds every layer up to it (Model.sub(0, i + 1)).
A merge (add, concatenate) reads several tensors: it is checked accumulated only. A layer fed a padding mask is
checked isolated from the layer that makes the mask (one layer alone would run without it).
"""

from __future__ import annotations

from typing import Any

from impls.model import voices
from impls.model.description import Model
from impls.model.layers import spec_of

from .checks import attempt
from .inputs import Reference, cast


def layer_checks(voice: str, model: Model, dtype: str, ref: Reference, whole: voices.Built | None,
                 builds: voices.LayerBuilds, one_pass: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """One row per layer: {"index", "name", "kind", "isolated", "accumulated"} (each a comparison, or why not)."""
    sources = model.mask_sources()
    outs, every = None, None  # the whole build's output of every layer, or why it has none
    if one_pass and whole is not None and whole.outputs is not None:
        outs, every = attempt(whole.outputs, cast(ref.x, dtype))
        if outs is not None and len(outs) != len(model.layers):
            outs, every = None, {"error": f"the build gave {len(outs)} layer outputs for {len(model.layers)} layers"}
    slow = outs is None and every is None
    chained = model.is_chain()
    rows, prev = [], cast(ref.x, dtype)
    for i, layer in enumerate(model.layers):
        row: dict[str, Any] = {"index": i, "name": layer.name, "kind": layer.kind}
        start = i if sources[i] is None else sources[i]
        built = None
        if spec_of(layer.kind).ARITY != 1:
            row["isolated"] = {"not_computed": "a merge reads several tensors: checked accumulated, from the input"}
        elif start == i:
            built, problem = attempt(builds.get, model.sub(i).astype(dtype))
            y, problem = (None, problem) if problem else attempt(built.forward, cast(ref.ins[i], dtype))
            row["isolated"] = problem or ref.compare(y, i, dtype)
        else:  # fed a padding mask: from the layer that makes it, whose own check came first
            row["isolated_from"] = {"index": start, "name": model.layers[start].name,
                                    "why": "the layer reads the padding mask that layer makes"}
            masked, problem = attempt(builds.get, model.sub(start, i + 1).astype(dtype))
            y, problem = (None, problem) if problem else attempt(masked.forward, cast(ref.ins[start], dtype))
            row["isolated"] = problem or ref.compare(y, i, dtype)
        if not slow:
            row["accumulated"] = every or ref.compare(outs[i], i, dtype, accumulated=True)
        elif chained and start == i and built is not None:
            if prev is None:
                row["accumulated"] = {"not_computed": "an earlier layer of this voice's chain did not compute"}
            else:
                prev, problem = attempt(built.forward, prev)
                row["accumulated"] = problem or ref.compare(prev, i, dtype, accumulated=True)
        else:  # the voice's own build of layers 0..i
            prefix, problem = attempt(voices.build, voice, model.sub(0, i + 1).astype(dtype), dtype)
            prev, problem = (None, problem) if problem else attempt(prefix.forward, cast(ref.x, dtype))
            row["accumulated"] = problem or ref.compare(prev, i, dtype, accumulated=True)
        rows.append(row)
    return rows


def first_diverging(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first layer whose isolated check failed (over its bar, or raised)."""
    for r in rows:
        iso = r.get("isolated")
        if iso is not None and "not_computed" in iso:
            continue
        if iso is None or not iso.get("pass", False):
            return {"index": r["index"], "name": r["name"], "kind": r["kind"]}
    return None


__all__ = ["first_diverging", "layer_checks"]
