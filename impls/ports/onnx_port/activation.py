"""The ONNX port's activation and dropout: an Activation layer is its operator (Relu, Tanh, Sigmoid, Softmax on the
canonical last axis; issue 24's Clip for relu6 and clip, HardSigmoid(alpha, beta), HardSwish, Sigmoid then Mul for silu
as torch.onnx writes it, Gelu(approximate "none" or "tanh"), LeakyRelu(alpha); in float64 the exact decompositions
builder._Graph.activation writes (the tanh GELU's too: ONNX's Gelu function body casts float32 constants); a linear
one is left out), and Dropout is left out too (the identity at inference), noted.
"""

from __future__ import annotations

from typing import Any

from .builder import EMITTERS, _Graph


@EMITTERS.register("activation")
def activation(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    g.activation(opts["activation"], len(shape), opts)


@EMITTERS.register("dropout")
def dropout(g: _Graph, i: int, layer: Any, opts: dict, shape: tuple) -> None:
    """The identity at inference: no node."""
    g.notes.append(f"{layer.name}: dropout left out (the identity at inference)")


__all__ = ["activation", "dropout"]
