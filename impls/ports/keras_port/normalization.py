"""The Keras port's normalizations: batch_norm (keras.layers.BatchNormalization(axis=-1, momentum, epsilon, center,
scale) holding gamma, beta and the moving statistics, state: no gradient) and layer_norm (LayerNormalization(axis=-1)).

Keras' momentum is the description's (the old value's share); epsilon as is. BatchNormalization moves its
moving_variance by the biased batch variance, so a description whose variance_update is "unbiased" (a torch source)
ports forward-exact only (batch_norm_notes says so; trainref compares its step in Keras' convention). A channels_first
source holds batch_norm's 3-D input and output as (B, C, L) feature maps.
"""

from __future__ import annotations

from ...model.description import Model
from ...model.layers import spec_of
from .emitters import EMITTERS, Site, Weights, keras


def _names(opts: dict) -> list[str]:
    return [*(["gamma"] if opts["scale"] else []), *(["beta"] if opts["center"] else [])]


@EMITTERS.register("batch_norm", weights=Weights(lambda opts: [*_names(opts), "moving_mean", "moving_var"]),
                   reads_map=True, keeps_map=True)  # fmt: skip
def batch_norm(opts: dict, at: Site) -> list:
    return [keras.layers.BatchNormalization(axis=-1, momentum=opts["momentum"], epsilon=opts["epsilon"],
                                            center=opts["center"], scale=opts["scale"], dtype=at.dt, name=at.name)]  # fmt: skip


@EMITTERS.register("layer_norm", weights=Weights(_names))
def layer_norm(opts: dict, at: Site) -> list:
    return [keras.layers.LayerNormalization(axis=-1, epsilon=opts["epsilon"], center=opts["center"], scale=opts["scale"],
                                            dtype=at.dt, name=at.name)]  # fmt: skip


def batch_norm_notes(model: Model) -> list[str]:
    """keras.layers.BatchNormalization updates moving_variance with the biased batch variance (the one it normalises
    by): a description whose variance_update is torch's "unbiased" (n / (n - 1) times it) ports forward-exact (the
    inference forward reads the moving statistics as they are) but a training step moves moving_variance otherwise."""
    return [f"{la.label(i)}: variance_update 'unbiased' (torch's running_var) has no Keras form: "
            "keras.layers.BatchNormalization moves moving_variance by the biased batch variance; forward-exact, but a "
            "training step's moving_var differs from the source's by the factor n / (n - 1) on the batch variance's share"
            for i, la in enumerate(model.layers)
            if la.kind == "batch_norm" and spec_of(la.kind).options(la.options)["variance_update"] == "unbiased"]  # fmt: skip


__all__ = ["batch_norm", "batch_norm_notes", "layer_norm"]
