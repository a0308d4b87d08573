"""A Keras 3 .keras file -> Imported: checked as a zip holding a config.json (BadInput where it is truncated, garbage
or has no config), then loaded with keras.saving.load_model(compile=False, safe_mode=True) and walked; where Keras
cannot load it, the first layer of its config that the importer does not read (a custom layer, a Lambda...) is named
with the supported list, else Keras' own reason is given on one line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ... import frameworks
from .. import BadInput, Imported, UnsupportedLayer
from .context import REGISTRY, supported
from .walker import from_model

keras = frameworks.load("keras")


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}{'...' if len(text) > 300 else ''}"


def _config(path: Path) -> dict:
    """config.json of a .keras zip; BadInput where the file is not one (truncated, garbage, no config)."""
    if not zipfile.is_zipfile(path):
        raise BadInput(f"{path}: not a Keras 3 .keras file: not a zip archive (truncated or corrupt?)")
    try:
        with zipfile.ZipFile(path) as z:
            if "config.json" not in z.namelist():
                raise BadInput(f"{path}: not a Keras 3 .keras file: the zip has no config.json (it holds {z.namelist()[:5]})")
            bad = z.testzip()
            if bad is not None:
                raise BadInput(f"{path}: corrupt .keras file: {bad} fails its CRC check")
            config = json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, BadInput):
            raise
        raise BadInput(f"{path}: corrupt .keras file ({_one_line(e)})") from None
    if not isinstance(config, dict):
        raise BadInput(f"{path}: not a Keras 3 .keras file: config.json is not a model config")
    return config


def _unsupported_in_config(config: dict, path: Path) -> UnsupportedLayer | None:
    """The first layer in the file's config whose class nnparity does not import (a custom layer, a Lambda...)."""
    names = {c.__name__ for c in REGISTRY.keys()}  # noqa: SIM118 (a Registry is not iterable)
    layers = (config.get("config") or {}).get("layers") or []
    position = 0
    for la in layers:
        cls = la.get("class_name") if isinstance(la, dict) else None
        if cls == "InputLayer":
            continue
        if cls not in names or la.get("module") not in ("keras.layers", "keras"):
            name = ((la.get("config") or {}) if isinstance(la, dict) else {}).get("name")
            registered = la.get("registered_name") if isinstance(la, dict) else None
            return UnsupportedLayer(f"{path}: layer {position} {name!r} (class {cls}, module {la.get('module')}"
                                    f"{', registered as ' + str(registered) if registered else ''}) is not supported; "
                                    f"supported: {supported()}")  # fmt: skip
        position += 1
    return None


def load_file(path: Path, input_shape: tuple[int, ...] | None) -> Imported:
    """A Keras 3 .keras file through keras.saving.load_model(path, compile=False, safe_mode=True)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    config = _config(path)
    try:
        net = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - Keras' own reasons: an unknown class, safe_mode refusing a Lambda, a bad weights file
        unsupported = _unsupported_in_config(config, path)
        if unsupported is not None:
            raise unsupported from None
        raise BadInput(f"{path}: keras.saving.load_model failed ({_one_line(e)})") from None
    return from_model(net, input_shape, str(path))


__all__ = ["load_file"]
