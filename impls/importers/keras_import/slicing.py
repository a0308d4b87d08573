"""The Keras importer's crops (issue 24): Cropping2D (crop2d, channels_last) and Cropping1D (a slice of the steps,
axis 1 of (B, T, F)). Keras has no channel-shuffle layer: Keras code writes ShuffleNet's shuffle as Reshape, Permute,
Reshape, which import as those kinds."""

from __future__ import annotations

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers


@REGISTRY.register(L.Cropping2D, kinds=("crop2d",))
def _crop2d(c: Context) -> Converted:
    c.channels_last()
    (t, b), (l, r) = c.config["cropping"]
    return "crop2d", {"cropping": [[int(t), int(b)], [int(l), int(r)]]}, {}


@REGISTRY.register(L.Cropping1D, kinds=("slice",))
def _crop1d(c: Context) -> Converted:
    a, b = (int(v) for v in c.config["cropping"])
    return "slice", {"axis": 1, "start": a, "stop": int(c.in_shape[1]) - b}, {}


REGISTRY.absent("channel_shuffle", "Keras has no channel-shuffle layer: Keras code writes it as Reshape, Permute, "
                "Reshape, which import as those kinds")
