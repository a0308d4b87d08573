"""What the command was pointed at, as a checked model description and (when it has one) the user's own model.

    model, imported = load("net.keras", None)           # PATH.keras, PATH.onnx, PATH.py:NAME (impls.importers)
    model, None = load("seed_cnn.json", (3, 28, 28, 1))  # an nnparity description saved by impls/model/store.py

A description file has no framework model behind it, so a certificate of one has no source check. The input shape
given with --input-shape must be the one the model takes (a ShapeError naming both otherwise); every weight must be
finite (a ModelError naming the tensor otherwise).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

from impls import importers
from impls.contract.spec import ShapeError
from impls.importers import BadInput, Imported
from impls.model import store
from impls.model.description import INPUT, Model, ModelError

DEFAULT_BATCH = 3
"""The certificate's batch when --input-shape does not give one (the issue asks for batch >= 3)."""


def _description(path: Path) -> Model:
    npz = path.with_suffix(".npz")
    if not npz.is_file():
        raise BadInput(f"{path}: a model description needs its weights beside it, {npz.name}, which is missing")
    try:
        return store.load(path)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise BadInput(f"{npz}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ModelError):
            raise
        raise BadInput(f"{path}: not an nnparity model description ({type(e).__name__}: {e})") from None


def load(spec: str, input_shape: tuple[int, ...] | None) -> tuple[Model, Imported | None]:
    """The model at `spec`, checked at its batch. Raises BadInput, UnsupportedLayer, ModelError or ShapeError."""
    path = Path(str(spec))
    if path.suffix.lower() == ".json" and ":" not in path.name:
        if not path.is_file():
            raise BadInput(f"{path}: no such file")
        model, imported = _description(path), None
    else:
        imported = importers.load(str(spec), input_shape)
        model = imported.model
    takes = source_input_shape(model)
    if input_shape is not None and tuple(input_shape[1:]) != takes:
        raise ShapeError(f"{spec}: --input-shape {','.join(map(str, input_shape))} does not fit the model, which takes "
                         f"(batch, {', '.join(map(str, takes))}): given {tuple(input_shape)}, "
                         f"expected {(input_shape[0], *takes)}")
    try:
        model.check(certificate_batch(input_shape)[0])
    except (ModelError, ShapeError) as e:
        raise type(e)(f"{spec}: {e}") from None
    return model, imported


def source_input_shape(model: Model) -> tuple[int, ...]:
    """One sample as the source takes it, which --input-shape gives: an image (H, W, C) in the description is
    (C, H, W), and a 1-D feature map (L, C) (Model.is_map: the input a conv1d, BatchNorm or global pool reads) is
    (C, L), where the source is channels_first (a torch module, an NCHW / NCW ONNX graph)."""
    shape = tuple(model.input_shape)
    if model.boundary == "channels_first" and len(shape) == 3:
        return (shape[2], shape[0], shape[1])
    if model.boundary == "channels_first" and len(shape) == 2 and model.is_map(INPUT):
        return (shape[1], shape[0])
    return shape


def certificate_batch(input_shape: tuple[int, ...] | None) -> tuple[int, str]:
    """(the certificate's batch, why): --input-shape's own batch; DEFAULT_BATCH where none is given, or where it is
    1, which gives a BatchNorm's training step no batch statistics and a padded batch no two lengths."""
    if not input_shape:
        return DEFAULT_BATCH, f"no --input-shape: batch {DEFAULT_BATCH}, the certificate's default"
    if int(input_shape[0]) < 2:
        return DEFAULT_BATCH, (f"--input-shape gives batch {input_shape[0]}: certified at batch {DEFAULT_BATCH}, since one "
                               "row gives a BatchNorm's training step no batch statistics and a padded batch no two "
                               "lengths")  # fmt: skip
    return int(input_shape[0]), f"the batch --input-shape gives ({input_shape[0]})"


def stem(spec: str) -> str:
    """The model's short name for default output paths: file stem, plus :NAME for Python files."""
    text = str(spec)
    path_text, _, name = text.rpartition(":") if text.count(":") == 1 and not Path(text).exists() else (text, "", "")
    s = Path(path_text or text).stem
    return f"{s}-{name}" if name else s


def with_source(model: Model, source: str) -> Model:
    return dataclasses.replace(model, source=source)


__all__ = ["DEFAULT_BATCH", "certificate_batch", "load", "source_input_shape", "stem"]
