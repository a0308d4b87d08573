"""The user's own loaded model (the source) against the reference: whole, and per layer both ways where it exposes
them (impls.importers.Imported: layer_call isolated, layer_outputs accumulated)."""

from __future__ import annotations

from typing import Any

from impls.contract.tolerance import tolerance
from impls.importers import Imported
from impls.model.layers import spec_of

from .checks import attempt
from .inputs import Reference, cast
from .layers import first_diverging


def source_section(imported: Imported | None, ref: Reference, progress) -> dict[str, Any]:
    if imported is None:
        return {"none": "the model is an nnparity description: there is no framework model behind it to compare"}
    dtype = imported.dtype
    out: dict[str, Any] = {"source": imported.source, "path": imported.path, "dtype": dtype, "notes": list(imported.notes)}
    progress(f"the source model ({imported.source}) itself")
    y, problem = attempt(imported.forward, cast(ref.x, dtype))
    out["forward"] = problem or ref.compare(y, len(ref.outs) - 1, dtype, accumulated=True)
    model = ref.model
    rows = [{"index": i, "name": la.name, "kind": la.kind} for i, la in enumerate(model.layers)]
    if imported.layer_call is not None:
        sources = model.mask_sources()
        for i, r in enumerate(rows):
            if spec_of(model.layers[i].kind).ARITY != 1:
                r["isolated"] = {"not_computed": "a merge reads several tensors: checked accumulated"}
                continue
            if sources[i] is not None:  # one source layer alone would run without the mask
                r["isolated"] = {"not_computed": f"the layer reads the padding mask of layer {sources[i]} "
                                                 f"{model.layers[sources[i]].name!r}: checked accumulated"}
                continue
            y, problem = attempt(imported.layer_call, i, cast(ref.ins[i], dtype))
            r["isolated"] = problem or ref.compare(y, i, dtype)
    else:
        out["isolated"] = "the source does not expose its layers one by one"
    if imported.layer_outputs is not None:
        ys, problem = attempt(imported.layer_outputs, cast(ref.x, dtype))
        for i, r in enumerate(rows):
            if problem:
                r["accumulated"] = problem
            elif i < len(ys):
                r["accumulated"] = ref.compare(ys[i], i, dtype, accumulated=True)
            else:
                r["accumulated"] = {"error": float("inf"), "bar": tolerance(dtype), "pass": False,
                                    "problem": f"the source gave {len(ys)} layer outputs for {len(rows)} layers"}
    else:
        out["accumulated"] = "the source does not expose its layers' outputs"
    out["layers"] = rows
    out["first_diverging_layer"] = first_diverging(rows) if imported.layer_call is not None else None
    return out


__all__ = ["source_section"]
