"""The Keras port's activation kinds: activation (keras.layers.Activation of Keras' own name; issue 24's leaky_relu a
LeakyReLU(negative_slope) (in float64 ReLU(negative_slope, max_value=inf): x - slope relu(-x), exact, where TF's
LeakyRelu op rounds its alpha to float32), a clip from 0 a ReLU(max_value), a hard_sigmoid of other alpha and beta than Keras 3's
relu6(x + 3) / 6 a Rescaling(alpha, offset=beta) then ReLU(max_value=1): exactly max(0, min(1, alpha x + beta))) and
dropout (keras.layers.Dropout; rate 0 in the training step's copy, so that a model with state steps in training mode with dropout off). Both carry a
padding mask, and a channels_first source's 3-D feature map stays one through them."""

from __future__ import annotations

from .elementwise import constant
from .emitters import EMITTERS, GELU_TANH, Site, keras


def check_activation(opts: dict, in_shape: tuple = (), masked: bool = False) -> str | None:
    """Why Keras' layers cannot write this activation (a layer's or a layer's activation=); None where they can."""
    name = opts.get("activation", "linear")
    if name == "gelu_tanh":
        return GELU_TANH
    if name == "clip" and opts["min"] != 0.0:
        return (f"clip(min={opts['min']}, max={opts['max']}): Keras' ReLU(max_value) is a clip from 0 only and Keras "
                "has no clip layer; the port writes no keras.ops node, so it is not ported")
    return None


@EMITTERS.register("activation", keeps_map=True, check=check_activation, helper="affine")
def activation(opts: dict, at: Site) -> list:
    name, L = opts["activation"], keras.layers
    if name == "leaky_relu":
        if at.dt == "float64":  # TF's LeakyRelu holds its alpha as a float32 attribute: 0.1 comes out 1.5e-9 off
            return [L.ReLU(negative_slope=opts["negative_slope"], max_value=float("inf"), dtype=at.dt, name=at.name)]
        return [L.LeakyReLU(negative_slope=opts["negative_slope"], dtype=at.dt, name=at.name)]
    if name == "clip":
        return [L.ReLU(max_value=opts["max"], dtype=at.dt, name=at.name)]
    if name == "hard_sigmoid" and (opts["alpha"], opts["beta"]) != (1 / 6, 0.5):
        return [L.Rescaling(constant(opts["alpha"], at.dt), offset=constant(opts["beta"], at.dt), dtype=at.dt,
                            name=at.helper),
                L.ReLU(max_value=1.0, dtype=at.dt, name=at.name)]  # fmt: skip
    return [L.Activation(name, dtype=at.dt, name=at.name)]


@EMITTERS.register("dropout", keeps_map=True)
def dropout(opts: dict, at: Site) -> list:
    return [keras.layers.Dropout(opts["rate"] if at.dropout else 0.0, dtype=at.dt, name=at.name)]


__all__ = ["activation", "dropout"]
