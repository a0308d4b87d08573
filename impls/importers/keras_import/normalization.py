"""The Keras importer's normalizations, on the last axis only (the channels of a channels_last map or the features
of a sequence): BatchNormalization (momentum and epsilon as Keras keeps them, which is the description's convention;
moving_mean / moving_variance as the model's state; variance_update "biased", Keras' own; renorm refused) and
LayerNormalization (rms_scaling refused). Keras has no local response normalization layer: lrn is absent."""

from __future__ import annotations

from ... import frameworks
from .context import REGISTRY, Context, Converted

L = frameworks.load("keras").layers

REGISTRY.absent("lrn", "Keras has no local response normalization layer (tf.nn.local_response_normalization is a raw "
                       "TensorFlow op, not a keras.layers class)")  # fmt: skip


def _last_axis(c: Context, rank: int) -> None:
    axis = c.config.get("axis", -1)
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if [int(a) % rank for a in axes] != [rank - 1]:
        raise c.refuse(f"axis={axis!r} on an input of rank {rank} {c.in_shape}: only the last axis (-1) imports, the "
                       "channels of a channels_last map or the features of a sequence")  # fmt: skip


@REGISTRY.register(L.BatchNormalization, kinds=("batch_norm",))
def _batch_norm(c: Context) -> Converted:
    """Keras' momentum is the description's (the old value's share), its moving_variance moves by the biased batch
    variance (variance_update "biased"); synchronized only changes how a distributed batch's statistics are summed."""
    cfg = c.config
    _last_axis(c, len(c.in_shape))
    if cfg.get("renorm"):
        raise c.refuse("renorm=True (batch renormalization) is not the description's BatchNorm")
    opts = {"momentum": float(cfg["momentum"]), "epsilon": float(cfg["epsilon"]), "center": bool(cfg["center"]),
            "scale": bool(cfg["scale"]), "variance_update": "biased"}  # fmt: skip
    w = {**({"gamma": c.weight("gamma")} if opts["scale"] else {}), **({"beta": c.weight("beta")} if opts["center"] else {}),
         "moving_mean": c.weight("moving_mean"), "moving_var": c.weight("moving_variance")}  # fmt: skip
    c.notes.append(f"{c.label}: momentum={opts['momentum']} (the old value's share, as the description keeps it), "
                   f"epsilon={opts['epsilon']}; its moving statistics are the model's state; moving_variance moves by "
                   "the biased batch variance (variance_update 'biased')")  # fmt: skip
    return "batch_norm", opts, w


@REGISTRY.register(L.LayerNormalization, kinds=("layer_norm",))
def _layer_norm(c: Context) -> Converted:
    cfg = c.config
    _last_axis(c, len(c.in_shape))
    if cfg.get("rms_scaling"):
        raise c.refuse("rms_scaling=True divides by the root mean square without centring: not the description's "
                       "layer_norm")  # fmt: skip
    opts = {"epsilon": float(cfg["epsilon"]), "center": bool(cfg["center"]), "scale": bool(cfg["scale"])}
    w = {**({"gamma": c.weight("gamma")} if opts["scale"] else {}), **({"beta": c.weight("beta")} if opts["center"] else {})}
    return "layer_norm", opts, w
