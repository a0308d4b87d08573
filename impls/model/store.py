"""A model description on disk without pickle: `NAME.json` (name, input shape and dtype, layers, their options and,
in a graph, the tensors each reads)
and `NAME.npz` (every weight as `<layer index>/<layer name>/<weight name>`), read back with allow_pickle=False."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .description import Layer, Model, ModelError

FORMAT = "nnparity.model/1"


def to_json(model: Model) -> dict:
    return {"format": FORMAT, "name": model.name, "input_shape": list(model.input_shape), "input_dtype": model.input_dtype,
            "source": model.source, "boundary": model.boundary,
            "layers": [{"kind": la.kind, "name": la.name, "options": dict(la.options),
                        **({"inputs": list(la.inputs)} if la.inputs else {})} for la in model.layers]}


def weights_dict(model: Model) -> dict[str, np.ndarray]:
    return {f"{i}/{la.name}/{w}": np.asarray(a) for i, la in enumerate(model.layers) for w, a in la.weights.items()}


def save(model: Model, path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    js, npz = path.with_suffix(".json"), path.with_suffix(".npz")
    js.write_text(json.dumps(to_json(model), indent=1) + "\n")
    np.savez(npz, **weights_dict(model))
    return js, npz


def load(path: str | Path) -> Model:
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path.with_suffix('.json')}: not an nnparity model description (format {meta.get('format')!r})")
    with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    layers = []
    for i, la in enumerate(meta["layers"]):
        prefix = f"{i}/{la['name']}/"
        layers.append(Layer(la["kind"], la["name"], la["options"],
                            {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)},
                            tuple(la.get("inputs", ()))))
    return Model(meta["name"], tuple(meta["input_shape"]), tuple(layers), meta["input_dtype"], meta.get("source", "nnparity"),
                 meta.get("boundary", "channels_last"))


__all__ = ["FORMAT", "load", "save", "to_json", "weights_dict"]
