"""The Keras port's activation kinds: activation (keras.layers.Activation of Keras' own name; issue 24's leaky_relu a
LeakyReLU(negative_slope) (in float64 ReLU(negative_slope, max_value=inf): x - slope relu(-x), exact, where TF's
LeakyRelu op rounds its alpha to float32), a clip from 0 a ReLU(max_value), a hard_sigmoid of other alpha and beta than Keras 3's
relu6(x + 3) / 6 a Rescaling(alpha, offset=beta) then ReLU(max_value=1): exactly max(0, min(1, alpha x + beta)); the
tanh GELU and a clip not from 0, which no Keras layer computes, a keras.ops node (Gelu(approximate=True), Clip), which
the .keras file holds and loads in safe mode; the port is then a functional model) and
dropout (keras.layers.Dropout; rate 0 in the training step's copy, so that a model with state steps in training mode with dropout off). Both carry a
padding mask, and a channels_first source's 3-D feature map stays one through them."""

from __future__ import annotations

from .elementwise import constant
from .emitters import EMITTERS, Site, keras


def leaky_relu(slope: float, at: Site) -> object:
    """LeakyReLU(slope); in float64 ReLU(negative_slope=slope, max_value=inf), x - slope relu(-x): TF's LeakyRelu holds
    its alpha as a float32 attribute (0.1 comes out 1.5e-9 off)."""
    if at.dt == "float64":
        return keras.layers.ReLU(negative_slope=slope, max_value=float("inf"), dtype=at.dt, name=at.name)
    return keras.layers.LeakyReLU(negative_slope=slope, dtype=at.dt, name=at.name)


@EMITTERS.register("activation", keeps_map=True, helper="affine")
def activation(opts: dict, at: Site) -> list:
    name, L = opts["activation"], keras.layers
    if name == "gelu_tanh":  # no layer and no activation name: keras.ops.gelu's node (the .keras file loads it safely)
        return [keras.src.ops.nn.Gelu(approximate=True, name=at.name)]
    if name == "clip" and opts["min"] != 0.0:  # ReLU(max_value) clips from 0 only: keras.ops.clip's node
        lo, hi = (float("-inf") if opts["min"] is None else opts["min"]), (float("inf") if opts["max"] is None else opts["max"])
        return [keras.src.ops.numpy.Clip(lo, hi, name=at.name)]
    if name == "leaky_relu":
        return [leaky_relu(opts["negative_slope"], at)]
    if name == "clip":
        return [L.ReLU(max_value=opts["max"], dtype=at.dt, name=at.name)]
    if name == "hard_sigmoid" and (opts["alpha"], opts["beta"]) != (1 / 6, 0.5):
        return [L.Rescaling(constant(opts["alpha"], at.dt, at.in_shape[-1]),
                            offset=constant(opts["beta"], at.dt, at.in_shape[-1]), dtype=at.dt, name=at.helper),
                L.ReLU(max_value=1.0, dtype=at.dt, name=at.name)]  # fmt: skip
    return [L.Activation(name, dtype=at.dt, name=at.name)]


@EMITTERS.register("dropout", keeps_map=True)
def dropout(opts: dict, at: Site) -> list:
    return [keras.layers.Dropout(opts["rate"] if at.dropout else 0.0, dtype=at.dt, name=at.name)]


__all__ = ["activation", "dropout"]
