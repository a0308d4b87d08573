"""Converter registries: one small converter per key, registered in the file that writes it.

The importers key theirs by what the source holds (a Keras layer class, a torch module class, function or Tensor
method, an ONNX op type) and say which description kinds each can make; the ports key theirs by the description's
layer kind. This is nobuco's `@converter(nn.GRU)` and onnx2torch's `@add_converter(operation_type="Conv")`:

    REGISTRY = Registry("the Keras importer", "Keras layer class", name_of=lambda c: f"keras.layers.{c.__name__}")

    @REGISTRY.register(keras.layers.Conv2D, kinds=("conv2d",))      # in importers/keras_import/convolution.py
    def conv2d(ctx): ...

    EMITTERS = Registry("the torch port", "layer kind")
    EMITTERS.refuse("some_kind", "torch.nn has no such layer: ...")  # a declared refusal, never a silent gap

Adding a layer means adding one converter in the file of its family; the walkers and dispatchers never change. A
lookup miss is an error naming the key and listing what is registered (`missing`). `coverage(kind)` is what the
kinds matrix (impls/coverage.py) reads: whether a registry converts, emits, refuses or lacks a description kind.
Nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    key: Hashable
    fn: Callable
    kinds: tuple[str, ...]  # the description kinds it can make (importers) or emits (ports: its own key)
    meta: dict[str, Any] = field(default_factory=dict)  # anything else a registry's users attach (a port's check)


class Registry:
    """Keys -> converters; declared refusals (a key the framework cannot express, with the reason) and declared
    absences (a description kind the source has no layer for, with the reason) sit beside them."""

    def __init__(self, owner: str, what: str, name_of: Callable[[Any], str] = str):
        self.owner = owner  # "the Keras importer", "the ONNX port": how messages name it
        self.what = what  # "Keras layer class", "ONNX op type", "layer kind": what its keys are
        self.name_of = name_of
        self._entries: dict[Any, Entry] = {}
        self._refused: dict[Any, str] = {}
        self._absent: dict[str, str] = {}

    # ------------------------------------------------------------------ registering

    def register(self, *keys: Hashable, kinds: Iterable[str] | None = None, **meta: Any) -> Callable[[Callable], Callable]:
        """Register the decorated function for every key. `kinds`: the description kinds it makes (an importer's
        converter; default the keys themselves, as a port's emitter is keyed by its kind)."""
        if not keys:
            raise ValueError(f"{self.owner}: register() needs at least one {self.what}")

        def add(fn: Callable) -> Callable:
            for key in keys:
                self._check_new(key)
                made = tuple(kinds) if kinds is not None else (str(key),)
                self._entries[key] = Entry(key, fn, made, dict(meta))
            return fn

        return add

    def refuse(self, key: Hashable, reason: str) -> None:
        """A declared refusal: `key` is known and cannot be expressed, for `reason` (what the framework lacks)."""
        if not reason:
            raise ValueError(f"{self.owner}: a refusal of {self.name_of(key)} needs its reason")
        self._check_new(key)
        self._refused[key] = reason

    def absent(self, kind: str, reason: str) -> None:
        """An importer's declaration that its source has no layer the description kind `kind` comes from."""
        if not reason:
            raise ValueError(f"{self.owner}: an absent kind {kind!r} needs its reason")
        self._absent[kind] = reason

    def _check_new(self, key: Hashable) -> None:
        if key in self._entries or key in self._refused:
            raise ValueError(f"{self.owner}: {self.what} {self.name_of(key)} is registered twice")

    # ------------------------------------------------------------------ looking up

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable) -> Entry | None:
        return self._entries.get(key)

    def refusal(self, key: Hashable) -> str | None:
        """The declared reason `key` cannot be expressed, or None."""
        return self._refused.get(key)

    def keys(self) -> list[Any]:
        return list(self._entries)

    def supported(self) -> str:
        """Every registered key by name, in registration order: what a refusal's message lists."""
        return ", ".join(dict.fromkeys(self.name_of(k) for k in self._entries))

    def missing(self, key: Hashable) -> str:
        """The message of a lookup miss: the key, and what is registered."""
        return f"{self.what} {self.name_of(key)} is not supported by {self.owner}; supported: {self.supported()}"

    # ------------------------------------------------------------------ the kinds matrix

    def coverage(self, kind: str) -> tuple[str, str]:
        """How this registry meets description kind `kind`: ("converts", the keys that make it), ("refused", the
        reason), ("absent", the reason) or ("missing", "")."""
        keys = [self.name_of(e.key) for e in self._entries.values() if kind in e.kinds]
        if keys:
            return "converts", ", ".join(dict.fromkeys(keys))
        if kind in self._refused:
            return "refused", self._refused[kind]
        if kind in self._absent:
            return "absent", self._absent[kind]
        return "missing", ""


__all__ = ["Entry", "Registry"]
