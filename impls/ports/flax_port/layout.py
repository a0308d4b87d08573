"""The Flax port's boundary layout: which tensors are feature maps, the transposes at the written module's boundary,
and the conversions between the canonical layout and that boundary (what the built voice and train_step feed it).

Flax is NHWC: a model whose `boundary` is channels_first gets its NCHW <-> NHWC transposes written at the port's
boundary, unless native_layout, which takes and returns NHWC and says so in the docstring. A channels_first
source's 1-D feature maps (feature_maps) are (B, C, L) at the boundary, as its images NCHW.
"""

from __future__ import annotations

import numpy as np

from ... import convert
from ...model.description import INPUT, Model

MAP_READERS = ("conv1d", "batch_norm", "global_avg_pool", "global_max_pool")
"""Kinds that read a 3-D tensor as a feature map (B, L, C): a channels_first source holds it (B, C, L)."""
MAP_KEEPERS = ("batch_norm", "activation", "dropout", "add", "concatenate")
"""Kinds whose 3-D output is a feature map where their (first) input is one."""
MAP_KEEPERS += ("multiply", "rescale", "layer_scale", "stochastic_depth")  # issue 24's element-wise kinds
MAP_KEEPERS += ("slice", "channel_shuffle")  # issue 24's shape kinds that keep a map
MAP_READERS += ("lrn",)  # issue 24's normalization family
MAP_KEEPERS += ("lrn",)  # issue 24's normalization family


def feature_maps(model: Model) -> list[bool]:
    """[the input, layer 0's output, ...]: whether the tensor is a feature map a channels_first source holds channels
    first (docs/DESIGN.md, "Layouts"): every 4-D image; a 3-D tensor that a conv1d makes, that a batch_norm /
    activation / dropout / merge passes on from a map, or the model's 3-D input where a conv1d, a batch_norm or a
    global pool reads it. A sequence read by a recurrent layer or a dense stays (B, T, F)."""
    shapes = model.shapes(1)
    maps = [len(shapes[0]) == 4 or (len(shapes[0]) == 3 and any(
        model.layers[i].kind in MAP_READERS for i in model.consumers(INPUT)))]
    for i, la in enumerate(model.layers):
        rank = len(shapes[i + 1])
        first = model.source_indices(i)[0] + 1
        maps.append(rank == 4 or (rank == 3 and (la.kind == "conv1d" or (la.kind in MAP_KEEPERS and maps[first]))))
    return maps


def transposes(model: Model, native_layout: bool) -> tuple[bool, bool]:
    """(transpose the input NC... -> N...C, transpose the output N...C -> NC...) at the port's boundary: a
    channels_first source's feature maps (feature_maps: images, 1-D maps)."""
    if native_layout or model.boundary != "channels_first":
        return False, False
    maps = feature_maps(model)
    return maps[0], maps[-1]


def boundary_shape(shape: tuple[int, ...], transposed: bool) -> tuple[int, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if transposed else tuple(shape)


def first_perm(rank: int) -> tuple[int, ...]:
    """N...C -> NC...: (0, 3, 1, 2) for an image, (0, 2, 1) for a 1-D map."""
    return (0, rank - 1, *range(1, rank - 1))


def last_perm(rank: int) -> tuple[int, ...]:
    """NC... -> N...C: (0, 2, 3, 1) for an image, (0, 2, 1) for a 1-D map."""
    return (0, *range(2, rank), 1)


class Boundary:
    """Canonical <-> the port's boundary layout (NCHW where the source is channels_first)."""

    def __init__(self, model: Model):
        self.t_in, self.t_out = transposes(model, native_layout=False)
        self.flat = model.flattened_output()  # the output's features in the source's (c, h, w) order

    @staticmethod
    def _first(a: np.ndarray) -> np.ndarray:  # N...C -> NC... (NHWC -> NCHW, NWC -> NCW)
        return np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1))

    @staticmethod
    def _last(a: np.ndarray) -> np.ndarray:  # NC... -> N...C
        return np.ascontiguousarray(np.moveaxis(np.asarray(a), 1, -1))

    def x(self, a: np.ndarray) -> np.ndarray:
        return self._first(a) if self.t_in else np.asarray(a)

    def dx(self, a: np.ndarray) -> np.ndarray:
        return self._last(a) if self.t_in else np.asarray(a)

    def y(self, a: np.ndarray) -> np.ndarray:
        if self.flat:
            return convert.features_nhwc_to_nchw(a, self.flat)
        return self._first(a) if self.t_out else np.asarray(a)

    def dy(self, a: np.ndarray) -> np.ndarray:
        if self.flat:
            return convert.features_nchw_to_nhwc(a, self.flat)
        return self._last(a) if self.t_out else np.asarray(a)


__all__ = ["MAP_KEEPERS", "MAP_READERS", "Boundary", "boundary_shape", "feature_maps", "first_perm", "last_perm",
           "transposes"]
