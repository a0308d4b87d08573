"""The Keras importer's pools: MaxPooling2D and AveragePooling2D (valid, same; channels_last; AveragePooling2D
divides by the input cells a window covers, count_include_pad False), GlobalAverage/MaxPooling1D/2D (keepdims=False; keepdims=True
of a map as adaptive_avg_pool2d to (1, 1) or a max_pool2d over the whole map, of a sequence refused),
AdaptiveAveragePooling2D (adaptive_avg_pool2d)."""

from __future__ import annotations

from collections.abc import Callable

from ... import frameworks
from .context import REGISTRY, Context, Converted, pair

L = frameworks.load("keras").layers


@REGISTRY.register(L.MaxPooling2D, kinds=("max_pool2d",))
def _max_pool(c: Context) -> Converted:
    c.channels_last()
    pool = pair(c.config["pool_size"])
    strides = pool if c.config["strides"] is None else pair(c.config["strides"])
    return "max_pool2d", {"pool_size": pool, "strides": strides, "padding": c.padding()}, {}


@REGISTRY.register(L.AveragePooling2D, kinds=("avg_pool2d",))
def _avg_pool(c: Context) -> Converted:
    _, opts, _ = _max_pool(c)
    # Keras divides by the input cells a window covers ('same' as TensorFlow): padded cells are not counted
    return "avg_pool2d", {**opts, "count_include_pad": False}, {}


@REGISTRY.register(L.AdaptiveAveragePooling2D, kinds=("adaptive_avg_pool2d",))
def _adaptive_avg_pool(c: Context) -> Converted:
    """Keras 3's AdaptiveAveragePooling2D: torch's windows (floor(i * n / out) .. ceil((i + 1) * n / out))."""
    c.channels_last()
    return "adaptive_avg_pool2d", {"output_size": pair(c.config["output_size"])}, {}


def _global_pool(kind: str, rank: int) -> Callable[[Context], Converted]:
    def convert_pool(c: Context) -> Converted:
        c.channels_last()
        if len(c.in_shape) != rank:
            raise c.refuse(f"its input {c.in_shape} is not of rank {rank}")
        if c.config.get("keepdims"):  # (B, 1, 1, C): the same mean / max over the whole map, its axes kept
            if rank != 4:
                raise c.refuse("keepdims=True of a sequence keeps its time axis as size 1: only GlobalAveragePooling2D "
                               "and GlobalMaxPooling2D with keepdims=True import (as one window over the whole map)")
            whole = [int(c.in_shape[1]), int(c.in_shape[2])]
            if kind == "global_avg_pool":
                return "adaptive_avg_pool2d", {"output_size": [1, 1]}, {}
            return "max_pool2d", {"pool_size": whole, "strides": whole, "padding": "valid"}, {}
        return kind, {}, {}

    return convert_pool


REGISTRY.register(L.GlobalAveragePooling1D, kinds=("global_avg_pool",))(_global_pool("global_avg_pool", 3))
REGISTRY.register(L.GlobalAveragePooling2D, kinds=("global_avg_pool", "adaptive_avg_pool2d"))(_global_pool("global_avg_pool", 4))
REGISTRY.register(L.GlobalMaxPooling1D, kinds=("global_max_pool",))(_global_pool("global_max_pool", 3))
REGISTRY.register(L.GlobalMaxPooling2D, kinds=("global_max_pool", "max_pool2d"))(_global_pool("global_max_pool", 4))
